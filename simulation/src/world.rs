//! The system under simulation: one cache (the in-memory gate, seen by a
//! few Lambda instances that each remember layouts on their own), one
//! ledger and one payment provider, a clock the scheduler moves, and what
//! every shopper was told.

use std::{
    cell::RefCell,
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use chrono::{DateTime, Duration, Utc};
use shared::{
    error::Error,
    memory::{MemoryGate, MemoryLedger, MemoryPayments},
    model::{Order, Packet},
    ports::Ports,
};

use crate::scheduler::Turnstile;

/// Lambda instances sharing the cache.
pub const INSTANCES: usize = 2;

pub type SimPorts<'a> = Ports<'a, MemoryGate, MemoryLedger, MemoryPayments>;

/// One grab as its shopper saw it, and what the gate held meanwhile.
#[derive(Debug, Clone)]
pub struct GrabSeen {
    pub sku_id: String,
    pub username: String,
    /// Whether, after some step while it ran (its last included), the SKU
    /// had no unit on sale anywhere (no shard, no loan in flight, no share
    /// of a split).
    pub saw_none_left: bool,
    pub answer: Option<Result<String, String>>,
    /// Whether its answer was held against what it saw.
    pub checked: bool,
}

/// What shoppers were told: the facts the books must keep.
#[derive(Debug, Default)]
pub struct Told {
    pub grabs: Vec<GrabSeen>,
    /// Orders a shopper was told are theirs.
    pub orders: BTreeSet<String>,
    /// Orders a shopper was told are paid.
    pub paid: BTreeSet<String>,
    /// (campaign, shopper) → the packet they were told they have.
    pub packets: BTreeMap<(String, String), Packet>,
    /// What an actor found broken as it was told it.
    pub broken: Vec<String>,
}

pub struct World {
    pub gate: MemoryGate,
    pub instances: Vec<MemoryGate>,
    pub ledger: MemoryLedger,
    pub payments: MemoryPayments,
    start: DateTime<Utc>,
    started: tokio::time::Instant,
    pub told: RefCell<Told>,
}

impl World {
    /// A system whose every port call waits at `turnstile`.
    pub fn new(masters: u32, turnstile: &Turnstile) -> Self {
        let gate = MemoryGate::with_masters(masters);
        let director = Arc::new(turnstile.clone());
        gate.faults.direct(director.clone());
        // As DynamoDB's: a write's client gives up after 5 s (the
        // scheduler fails calls left waiting that long), and an index
        // shows it within 2 s more.
        let ledger = MemoryLedger::with_listing_lag(std::time::Duration::from_secs(7));
        ledger.faults.direct(director.clone());
        let payments = MemoryPayments::default();
        payments.faults.direct(director);
        World {
            instances: (0..INSTANCES).map(|_| gate.instance()).collect(),
            gate,
            ledger,
            payments,
            start: DateTime::parse_from_rfc3339("2026-11-11T12:00:00Z")
                .expect("a valid instant")
                .to_utc(),
            started: tokio::time::Instant::now(),
            told: RefCell::default(),
        }
    }

    /// The simulated time: the start plus what the scheduler let pass.
    pub fn now(&self) -> DateTime<Utc> {
        let passed = tokio::time::Instant::now() - self.started;
        self.start + Duration::from_std(passed).unwrap_or_default()
    }

    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// The ports as one instance sees them.
    pub fn ports(&self, instance: usize) -> SimPorts<'_> {
        Ports {
            gate: &self.instances[instance % INSTANCES],
            ledger: &self.ledger,
            payments: &self.payments,
        }
    }

    /// A grab begins; its index in [`Told::grabs`].
    pub fn grab_begins(&self, sku_id: &str, username: &str) -> usize {
        let mut told = self.told.borrow_mut();
        told.grabs.push(GrabSeen {
            sku_id: sku_id.to_owned(),
            username: username.to_owned(),
            saw_none_left: false,
            answer: None,
            checked: false,
        });
        told.grabs.len() - 1
    }

    pub fn grab_answered(&self, grab: usize, answer: &Result<Order, Error>) {
        let mut told = self.told.borrow_mut();
        if let Ok(order) = answer {
            told.orders.insert(order.id.clone());
        }
        told.grabs[grab].answer = Some(match answer {
            Ok(order) => Ok(order.id.clone()),
            Err(error) => Err(shared::http::problem::of(error).code.to_owned()),
        });
    }

    /// Marks the grabs of a SKU that has no unit on sale now: those under
    /// way, and those answered in the step just taken.
    pub fn none_left(&self, sku_id: &str) {
        for grab in self.told.borrow_mut().grabs.iter_mut() {
            if !grab.checked && grab.sku_id == sku_id {
                grab.saw_none_left = true;
            }
        }
    }
}
