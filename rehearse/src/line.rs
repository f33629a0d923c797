//! `--waiting-room-rate`: a sale or a rain behind a waiting room, as its
//! crowd meets it. `--early-share` of the shoppers take places before the
//! opening, all at once; the rest after it, one after another. Each waits on
//! the room's document as the page does, and once called fetches a ticket
//! and grabs (then pays, or walks away) or claims. `--blind-share` of them
//! also fire a grab or claim without a ticket at the opening, as a script
//! would. The room's own checks ([`audit`]) then hold it to its promises.

use std::{collections::BTreeSet, sync::Mutex, time::Duration};

use chrono::{DateTime, Utc};
use futures::{StreamExt, future::join_all, stream};
use rand::seq::SliceRandom;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::{
    api::{Api, Reply},
    audit::{Check, check},
    crowd::{Acknowledged, Shopper},
    tally::Tally,
};

/// What a line is for: a sale's units or a rain's packets.
#[derive(Debug, Clone)]
pub enum Prize {
    Sale(String),
    Rain(String),
}

impl Prize {
    /// The path its queue, challenge, ticket and grab or claim hang from.
    pub fn path(&self) -> String {
        match self {
            Prize::Sale(sku) => format!("/seckill/items/{sku}"),
            Prize::Rain(campaign) => format!("/red-packets/{campaign}"),
        }
    }

    /// The tap that wins it, as the path's last step and the tally's name.
    fn tap(&self) -> &'static str {
        match self {
            Prize::Sale(_) => "grab",
            Prize::Rain(_) => "claim",
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Prize::Sale(_) => "the sale's line",
            Prize::Rain(_) => "the rain's line",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LinePlan {
    pub prize: Prize,
    pub opening: DateTime<Utc>,
    pub early_share: f64,
    pub blind_share: f64,
    pub pay_share: f64,
    pub concurrency: usize,
    pub max: Duration,
}

/// What the rehearsal saw of the line.
#[derive(Debug, Default)]
pub struct LineLog {
    /// Early shoppers in the order their places were answered, with draws.
    pub early: Vec<(usize, u64)>,
    /// Early shoppers answered with anything but a draw.
    pub early_undrawn: usize,
    /// Later shoppers in the order they joined, with their numbers.
    pub late: Vec<(usize, u64)>,
    /// Shoppers let in (their challenge answered), in that order.
    pub admitted: Vec<usize>,
    /// The blind grabs' or claims' answers.
    pub blind: Vec<Reply>,
    /// Every room document read: (server time, opening, rate, admitted).
    pub samples: Vec<(DateTime<Utc>, DateTime<Utc>, u64, u64)>,
}

/// A place, as `POST …/queue` answers it.
#[derive(Debug, Clone, Copy)]
enum Place {
    Drawn(u64),
    Arrived(u64),
}

fn place_of(reply: &Reply) -> Option<Place> {
    match reply.body["place"].as_str()? {
        "drawn" => reply.body["draw"].as_u64().map(Place::Drawn),
        "arrived" => reply.body["number"].as_u64().map(Place::Arrived),
        _ => None,
    }
}

/// Whether the room's document says `place` has been called.
fn called(place: Place, room: &Value) -> bool {
    match place {
        Place::Drawn(draw) => room["last_called_draw"].as_u64().is_some_and(|last| draw <= last),
        Place::Arrived(number) => room["arrivals_called"].as_u64().is_some_and(|called| number <= called),
    }
}

fn instant(at: &Value) -> Option<DateTime<Utc>> {
    at.as_str()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map(|at| at.with_timezone(&Utc))
}

struct Line<'a> {
    api: &'a Api,
    shoppers: &'a [Shopper],
    plan: &'a LinePlan,
    /// The prize's path.
    path: String,
    queue: String,
    tally: Mutex<Tally>,
    acknowledged: Mutex<Acknowledged>,
    log: Mutex<LineLog>,
}

impl Line<'_> {
    async fn send(
        &self,
        endpoint: &'static str,
        method: Method,
        path: &str,
        shopper: Option<usize>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let token = shopper.map(|shopper| self.shoppers[shopper].token.as_str());
        let reply = self.api.call_with(method, path, token, body, headers).await;
        self.tally.lock().expect("tally lock").record(endpoint, &reply);
        reply
    }

    async fn join(&self, shopper: usize) -> Option<Place> {
        let reply = self
            .send("queue", Method::POST, &self.queue, Some(shopper), None, &[])
            .await;
        place_of(&reply)
    }

    /// Reads the room's document every 200 ms until `stop`, for every
    /// waiting shopper to look at.
    async fn watch_room(&self, room: watch::Sender<Value>, mut stop: watch::Receiver<bool>) {
        loop {
            let reply = self.send("room", Method::GET, &self.queue, None, None, &[]).await;
            if reply.status == 200 {
                let body = &reply.body;
                if let (Some(now), Some(opening), Some(rate), Some(admitted)) = (
                    instant(&body["server_time"]),
                    instant(&body["opens_at"]),
                    body["rate"].as_u64(),
                    body["admitted"].as_u64(),
                ) {
                    self.log
                        .lock()
                        .expect("log lock")
                        .samples
                        .push((now, opening, rate, admitted));
                }
                room.send_replace(reply.body);
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Waits for `place` to be called, then fetches a ticket and grabs and
    /// pays (or walks away), or claims.
    async fn wait_then_take(&self, shopper: usize, place: Place, mut room: watch::Receiver<Value>) {
        loop {
            if called(place, &room.borrow_and_update()) {
                break;
            }
            if room.changed().await.is_err() {
                return;
            }
        }
        let path = &self.path;
        let challenge = self
            .send(
                "challenge",
                Method::GET,
                &format!("{path}/challenge"),
                Some(shopper),
                None,
                &[],
            )
            .await;
        let Ok(text) = challenge.str("challenge") else {
            return;
        };
        self.log.lock().expect("log lock").admitted.push(shopper);
        // The rehearsal's sale and rain ask no work: any nonce solves
        // their challenges.
        let solution = json!({"challenge": text, "nonce": "0"});
        let ticket = self
            .send(
                "ticket",
                Method::POST,
                &format!("{path}/ticket"),
                Some(shopper),
                Some(&solution),
                &[],
            )
            .await;
        let Ok(ticket) = ticket.str("ticket") else {
            return;
        };
        let tap = self.plan.prize.tap();
        let taken = self
            .send(
                tap,
                Method::POST,
                &format!("{path}/{tap}"),
                Some(shopper),
                None,
                &[("Sale-Ticket", &ticket)],
            )
            .await;
        if let Prize::Rain(_) = self.plan.prize {
            self.acknowledged
                .lock()
                .expect("acknowledged lock")
                .claim(shopper, &taken);
            return;
        }
        let Ok(order) = taken.str("order_id") else {
            return;
        };
        self.acknowledged
            .lock()
            .expect("acknowledged lock")
            .orders
            .push((shopper, order.clone()));
        if rand::random::<f64>() >= self.plan.pay_share {
            self.acknowledged
                .lock()
                .expect("acknowledged lock")
                .abandoned
                .push(order);
            return;
        }
        let paid = self
            .send(
                "pay",
                Method::POST,
                &format!("/orders/{order}/pay"),
                Some(shopper),
                None,
                &[],
            )
            .await;
        let mut acknowledged = self.acknowledged.lock().expect("acknowledged lock");
        match paid.status {
            200 => acknowledged.paid.push(order),
            _ => acknowledged.abandoned.push(order),
        }
    }
}

/// Runs the line: places, the opening's blind grabs, the wait, the grabs.
pub async fn run(api: &Api, shoppers: &[Shopper], plan: &LinePlan) -> (Tally, Acknowledged, LineLog) {
    let line = Line {
        api,
        shoppers,
        plan,
        path: plan.prize.path(),
        queue: format!("{}/queue", plan.prize.path()),
        tally: Mutex::new(Tally::new()),
        acknowledged: Mutex::default(),
        log: Mutex::default(),
    };
    let mut order: Vec<usize> = (0..shoppers.len()).collect();
    order.shuffle(&mut rand::rng());
    let early_count = (order.len() as f64 * plan.early_share).round() as usize;
    let (early, late) = order.split_at(early_count.min(order.len()));

    // Before the opening, all at once: places as they are answered.
    stream::iter(early)
        .map(|&shopper| {
            let line = &line;
            async move {
                let place = line.join(shopper).await;
                let mut log = line.log.lock().expect("log lock");
                match place {
                    Some(Place::Drawn(draw)) => log.early.push((shopper, draw)),
                    _ => log.early_undrawn += 1,
                }
            }
        })
        .buffer_unordered(plan.concurrency.max(1))
        .collect::<Vec<()>>()
        .await;
    let until_opening = (plan.opening - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(until_opening + Duration::from_millis(50)).await;

    let (room_tx, room_rx) = watch::channel(Value::Null);
    let (stop_tx, stop_rx) = watch::channel(false);
    let waiting = async {
        // Scripts fire without a ticket at the opening.
        let blind: Vec<usize> = early
            .iter()
            .copied()
            .filter(|_| rand::random::<f64>() < plan.blind_share)
            .collect();
        let tap = format!("{}/{}", line.path, plan.prize.tap());
        let blind = join_all(
            blind
                .iter()
                .map(|&shopper| line.send("blind", Method::POST, &tap, Some(shopper), None, &[])),
        )
        .await;
        line.log.lock().expect("log lock").blind = blind;
        // After the opening, one after another.
        for &shopper in late {
            if let Some(Place::Arrived(number)) = line.join(shopper).await {
                line.log.lock().expect("log lock").late.push((shopper, number));
            }
        }
        let places: Vec<(usize, Place)> = {
            let log = line.log.lock().expect("log lock");
            log.early
                .iter()
                .map(|&(shopper, draw)| (shopper, Place::Drawn(draw)))
                .chain(
                    log.late
                        .iter()
                        .map(|&(shopper, number)| (shopper, Place::Arrived(number))),
                )
                .collect()
        };
        join_all(
            places
                .into_iter()
                .map(|(shopper, place)| line.wait_then_take(shopper, place, room_rx.clone())),
        )
        .await;
    };
    tokio::select! {
        () = async { waiting.await; stop_tx.send_replace(true); } => {}
        () = tokio::time::sleep(plan.max) => {}
        () = line.watch_room(room_tx, stop_rx) => {}
    }
    let Line {
        tally,
        acknowledged,
        log,
        ..
    } = line;
    (
        tally.into_inner().expect("tally lock"),
        acknowledged.into_inner().expect("acknowledged lock"),
        log.into_inner().expect("log lock"),
    )
}

/// Kendall's tau between two orders of the same items: 1 the same order,
/// -1 reversed, near 0 unrelated.
fn kendall_tau(ranks: &[u64]) -> f64 {
    let n = ranks.len();
    let mut score = 0i64;
    for i in 0..n {
        for j in i + 1..n {
            score += (ranks[j] > ranks[i]) as i64 - (ranks[j] < ranks[i]) as i64;
        }
    }
    score as f64 / ((n * n.saturating_sub(1)) / 2).max(1) as f64
}

/// The fewest early places the randomness check judges: fewer could look
/// ordered by chance.
const ENOUGH_TO_JUDGE: usize = 30;

/// The room's promises, from what the rehearsal saw of `prize`'s line and
/// the room's last document (`admitted` as the server counts them).
pub fn audit(prize: &Prize, log: &LineLog, final_admitted: Option<u64>) -> Vec<Check> {
    let line = prize.name();
    let mut checks = Vec::new();
    let admitted: BTreeSet<usize> = log.admitted.iter().copied().collect();
    checks.push(check(
        "nobody was let in twice",
        admitted.len() == log.admitted.len() && final_admitted == Some(admitted.len() as u64),
        format!(
            "{line}: {} shoppers let in, the room counts {}",
            admitted.len(),
            final_admitted.map_or("nothing".into(), |n| n.to_string())
        ),
    ));
    let draws: Vec<u64> = log.early.iter().map(|&(_, draw)| draw).collect();
    let tau = kendall_tau(&draws);
    // Unrelated orders of n places give a tau within about 0.07 at n = 100;
    // one in place of arrival would be near 1.
    checks.push(check(
        "early places are drawn, not given in order of arrival",
        draws.len() < ENOUGH_TO_JUDGE || tau.abs() < 0.35,
        format!(
            "{line}: Kendall's tau between arrival and draw {tau:.3} over {} early places",
            draws.len()
        ),
    ));
    let numbers: Vec<u64> = log.late.iter().map(|&(_, number)| number).collect();
    checks.push(check(
        "later arrivals are numbered first come, first served",
        numbers.iter().copied().eq(1..=numbers.len() as u64),
        format!(
            "{line}: {} later arrivals numbered {:?}…",
            numbers.len(),
            &numbers[..numbers.len().min(5)]
        ),
    ));
    let blind_won = log
        .blind
        .iter()
        .filter(|reply| (200..300).contains(&reply.status))
        .count();
    let answers: BTreeSet<String> = log.blind.iter().map(Reply::outcome).collect();
    checks.push(check(
        "no grab or claim without a ticket won",
        blind_won == 0,
        format!(
            "{line}: {} blind {}s at the opening, {blind_won} won ({answers:?})",
            log.blind.len(),
            prize.tap()
        ),
    ));
    let outran = log
        .samples
        .iter()
        .filter(|(now, opening, rate, admitted)| {
            let elapsed = u64::try_from((*now - *opening).num_milliseconds()).unwrap_or(0);
            *admitted > rate * elapsed / 1000
        })
        .count();
    checks.push(check(
        "admissions never outran the room's rate",
        outran == 0,
        format!(
            "{line}: {} looks at the room, {outran} with more let in than the rate allows",
            log.samples.len()
        ),
    ));
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blind(status: u16) -> Reply {
        Reply {
            status,
            code: String::new(),
            body: Value::Null,
            took: Duration::ZERO,
        }
    }

    fn verdict_on_blind_taps(prize: &Prize, status: u16) -> crate::audit::Verdict {
        let log = LineLog {
            blind: vec![blind(status)],
            ..LineLog::default()
        };
        let checks = audit(prize, &log, Some(0));
        let check = checks
            .iter()
            .find(|check| check.name == "no grab or claim without a ticket won")
            .expect("the blind taps are checked");
        check.verdict
    }

    /// A claim wins with `200`, a grab with `201`: either, without a
    /// ticket, fails the room.
    #[test]
    fn a_blind_tap_that_won_fails_the_room() {
        use crate::audit::Verdict;
        let (sale, rain) = (Prize::Sale("s".into()), Prize::Rain("r".into()));
        assert_eq!(verdict_on_blind_taps(&sale, 201), Verdict::Fails);
        assert_eq!(verdict_on_blind_taps(&rain, 200), Verdict::Fails);
        assert_eq!(verdict_on_blind_taps(&rain, 403), Verdict::Holds);
    }

    #[test]
    fn tau_tells_an_order_kept_from_one_reversed() {
        assert_eq!(kendall_tau(&[1, 2, 3, 4]), 1.0);
        assert_eq!(kendall_tau(&[4, 3, 2, 1]), -1.0);
        assert_eq!(kendall_tau(&[2, 1, 4, 3]), (4.0 - 2.0) / 6.0);
    }
}
