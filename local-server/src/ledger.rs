//! What every provider's stand-in keeps beside its keys: its trades by the
//! merchant's trade number, the numbers it hands out, whether its
//! notifications still get through, and the client that sends them.

use std::{
    collections::BTreeMap,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

/// A trade that keeps its refunds by the merchant's refund number.
pub trait Refunded {
    fn refunds(&self) -> &BTreeMap<String, i64>;
}

pub struct Ledger<T> {
    trades: Mutex<BTreeMap<String, T>>,
    numbers: AtomicU64,
    notifying: AtomicBool,
    pub http: reqwest::Client,
}

impl<T> Default for Ledger<T> {
    fn default() -> Self {
        Ledger {
            trades: Mutex::default(),
            numbers: AtomicU64::new(1),
            notifying: AtomicBool::new(true),
            http: reqwest::Client::new(),
        }
    }
}

impl<T: Refunded> Ledger<T> {
    pub fn trades(&self) -> MutexGuard<'_, BTreeMap<String, T>> {
        self.trades.lock().expect("the stand-in's books")
    }

    /// A fresh number for a transaction.
    pub fn next_number(&self) -> u64 {
        self.numbers.fetch_add(1, Ordering::SeqCst)
    }

    pub fn notifying(&self) -> bool {
        self.notifying.load(Ordering::SeqCst)
    }

    /// From now on every notification is lost for good.
    pub fn lose_notifications(&self) {
        self.notifying.store(false, Ordering::SeqCst);
    }

    /// The refunds of a trade, by the merchant's refund number.
    pub fn refunds(&self, out_trade_no: &str) -> BTreeMap<String, i64> {
        self.trades()
            .get(out_trade_no)
            .map(|trade| trade.refunds().clone())
            .unwrap_or_default()
    }
}
