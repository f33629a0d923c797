//! The crowd: `--taps` requests from `--concurrency` workers (or at a
//! `--rate`), spread over the shoppers, at grab and claim together. A
//! winner pays, cancels or walks away (left to the timeout job), and a
//! refused shopper sometimes taps again. Every follow-up counts against
//! the same budget, so the crowd never sends more than `--taps` requests
//! nor runs past `--max-seconds`.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use indicatif::ProgressBar;
use reqwest::Method;
use tokio::time::Instant;

use crate::{
    api::{Api, Reply},
    tally::Tally,
};

/// A signed-in shopper.
#[derive(Debug, Clone)]
pub struct Shopper {
    pub token: String,
}

/// What winners and losers do next, as shares of them.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    /// Winners who pay.
    pub pay: f64,
    /// Winners who cancel (the rest walk away).
    pub cancel: f64,
    /// Refused shoppers who tap once more.
    pub retry: f64,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub sku: Option<String>,
    pub campaign: Option<String>,
    pub taps: u64,
    pub concurrency: usize,
    pub rate: Option<f64>,
    pub max: Duration,
    pub behaviour: Behaviour,
}

/// What the API acknowledged, to hold the books to afterwards.
#[derive(Debug, Default)]
pub struct Acknowledged {
    /// (shopper, order id) of every 201 grab.
    pub orders: Vec<(usize, String)>,
    pub paid: Vec<String>,
    pub cancelled: Vec<String>,
    /// Orders whose winner walked away, for the timeout job.
    pub abandoned: Vec<String>,
    /// (shopper, packet id, amount) of every 200 claim.
    pub packets: Vec<(usize, String, i64)>,
}

impl Acknowledged {
    /// Keeps `shopper`'s packet if `reply` is a claim that won one.
    pub fn claim(&mut self, shopper: usize, reply: &Reply) {
        if reply.status != 200 {
            return;
        }
        if let (Ok(packet), Some(amount)) = (reply.str("red_packet_id"), reply.body["amount"].as_i64()) {
            self.packets.push((shopper, packet, amount));
        }
    }
}

/// The request budget and pace every worker draws from.
struct Budget {
    issued: AtomicU64,
    taps: u64,
    started: Instant,
    deadline: Instant,
    rate: Option<f64>,
}

impl Budget {
    /// The number of the next request, once its turn comes; `None` when the
    /// budget or the time is spent.
    async fn take(&self) -> Option<u64> {
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        if n >= self.taps || Instant::now() >= self.deadline {
            return None;
        }
        if let Some(rate) = self.rate {
            let due = self.started + Duration::from_secs_f64(n as f64 / rate);
            if due >= self.deadline {
                return None;
            }
            tokio::time::sleep_until(due).await;
        }
        Some(n)
    }
}

struct Crowd<'a> {
    api: &'a Api,
    shoppers: &'a [Shopper],
    plan: &'a Plan,
    budget: Budget,
    tally: Mutex<Tally>,
    acknowledged: Mutex<Acknowledged>,
    progress: &'a ProgressBar,
}

pub async fn run(api: &Api, shoppers: &[Shopper], plan: &Plan, progress: &ProgressBar) -> (Tally, Acknowledged) {
    let started = Instant::now();
    let crowd = Crowd {
        api,
        shoppers,
        plan,
        budget: Budget {
            issued: AtomicU64::new(0),
            taps: plan.taps,
            started,
            deadline: started + plan.max,
            rate: plan.rate,
        },
        tally: Mutex::new(Tally::new()),
        acknowledged: Mutex::default(),
        progress,
    };
    let workers = (0..plan.concurrency.max(1)).map(|_| crowd.work());
    tokio::select! {
        _ = futures::future::join_all(workers) => {}
        () = crowd.show_progress() => {}
    }
    let Crowd {
        tally, acknowledged, ..
    } = crowd;
    (
        tally.into_inner().expect("tally lock"),
        acknowledged.into_inner().expect("acknowledged lock"),
    )
}

impl Crowd<'_> {
    async fn work(&self) {
        while let Some(n) = self.budget.take().await {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            // With both on, each shopper's taps alternate: grab, claim, grab…
            let (grab, turn) = match (&self.plan.sku, &self.plan.campaign) {
                (Some(_), Some(_)) => (n % 2 == 0, n / 2),
                (sku, _) => (sku.is_some(), n),
            };
            let index = turn % self.shoppers.len();
            if grab {
                self.grab(index).await;
            } else {
                self.claim(index).await;
            }
        }
    }

    fn send_tally(&self, endpoint: &'static str, reply: &Reply) {
        self.tally.lock().expect("tally lock").record(endpoint, reply);
        self.progress.inc(1);
    }

    async fn post(&self, endpoint: &'static str, path: &str, shopper: usize) -> Reply {
        let token = &self.shoppers[shopper].token;
        let reply = self.api.call(Method::POST, path, Some(token), None).await;
        self.send_tally(endpoint, &reply);
        reply
    }

    /// Taps, and once more after a refusal for `retry` of the shoppers.
    async fn tap(&self, endpoint: &'static str, path: &str, shopper: usize) -> Reply {
        let reply = self.post(endpoint, path, shopper).await;
        let refused = matches!(reply.status, 409 | 429 | 503);
        if refused && rand::random::<f64>() < self.plan.behaviour.retry && self.budget.take().await.is_some() {
            return self.post(endpoint, path, shopper).await;
        }
        reply
    }

    async fn grab(&self, shopper: usize) {
        let Some(sku) = &self.plan.sku else { return };
        let reply = self.tap("grab", &format!("/seckill/items/{sku}/grab"), shopper).await;
        if reply.status != 201 {
            return;
        }
        let Ok(order_id) = reply.str("order_id") else {
            return;
        };
        self.acknowledged
            .lock()
            .expect("acknowledged lock")
            .orders
            .push((shopper, order_id.clone()));
        let roll = rand::random::<f64>();
        let behaviour = self.plan.behaviour;
        let step = if roll < behaviour.pay {
            Some("pay")
        } else if roll < behaviour.pay + behaviour.cancel {
            Some("cancel")
        } else {
            None
        };
        let granted = match step {
            Some(_) => self.budget.take().await.is_some(),
            None => false,
        };
        // Walking away, or out of budget: the timeout job settles the order.
        let (Some(step), true) = (step, granted) else {
            self.acknowledged
                .lock()
                .expect("acknowledged lock")
                .abandoned
                .push(order_id);
            return;
        };
        let endpoint = if step == "pay" { "pay" } else { "cancel" };
        let reply = self
            .post(endpoint, &format!("/orders/{order_id}/{step}"), shopper)
            .await;
        let mut acknowledged = self.acknowledged.lock().expect("acknowledged lock");
        match (reply.status, step) {
            (200, "pay") => acknowledged.paid.push(order_id),
            (200, _) => acknowledged.cancelled.push(order_id),
            // Unanswered or refused: the order is as the timeout job leaves it.
            _ => acknowledged.abandoned.push(order_id),
        }
    }

    async fn claim(&self, shopper: usize) {
        let Some(campaign) = &self.plan.campaign else { return };
        let reply = self
            .tap("claim", &format!("/red-packets/{campaign}/claim"), shopper)
            .await;
        self.acknowledged
            .lock()
            .expect("acknowledged lock")
            .claim(shopper, &reply);
    }

    /// The progress bar's line: the rate and the commonest outcomes.
    async fn show_progress(&self) {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let (requests, elapsed, commonest) = {
                let tally = self.tally.lock().expect("tally lock");
                (tally.requests(), tally.elapsed(), tally.commonest(4))
            };
            let rate = requests as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
            let outcomes: Vec<String> = commonest.iter().map(|(n, o)| format!("{n}× {o}")).collect();
            self.progress
                .set_message(format!("{rate:.0} req/s · {}", outcomes.join(" · ")));
        }
    }
}
