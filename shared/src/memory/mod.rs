//! Every port in memory, for tests (feature `memory`; always on for this
//! crate's own unit tests): [`MemoryGate`] makes the Lua scripts'
//! decisions over the same keys, shard by shard, and runs the gate's own
//! protocol over them (`gate::stock`) as the Redis gate does,
//! [`MemoryLedger`] as the DynamoDB tables with their conditional writes,
//! [`MemoryPayments`] as the sandbox provider that also remembers what it
//! did. One file per port, as in the other adapters. Each adapter carries a
//! [`Faults`] script: fail the Nth call of an operation, apply a write but
//! lose its reply, or fail a condition as a concurrent writer would.

mod accounts;
mod campaigns;
mod faults;
mod hot;
mod limits;
mod orders;
mod packets;
mod pages;
mod payments;
mod records;
mod room;
mod skus;
mod stock;
mod ticket_list;
mod warm;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
};

pub use faults::{Director, Fault, Faults, Op, Port};

use crate::{
    gate::{
        scripts::ShardKeys,
        shards::{self, Layouts},
    },
    model::{Address, Admin, Campaign, Claimant, Credit, Order, Packet, RecordKind, Sku, User},
    ports::{Page, PortError, PortResult, Ports},
};

/// One campaign as the gate holds it (the keys of `claim.lua`'s header).
#[derive(Debug, Clone, Default)]
struct CampaignGate {
    begin_ms: i64,
    end_ms: i64,
    pool: VecDeque<String>,
    claimed: BTreeMap<String, String>,
    /// When a packet was last popped (ms), as `claim.lua` keeps it.
    last_pop_ms: i64,
}

impl GateState {
    /// The keys of every shard of a SKU.
    fn shards_of<'a>(&'a mut self, sku_id: &'a str) -> impl Iterator<Item = &'a mut ShardKeys> + 'a {
        self.shards
            .iter_mut()
            .filter(move |(tag, _)| shards::of_sku(tag, sku_id))
            .map(|(_, keys)| keys)
    }
}

#[derive(Debug, Clone, Default)]
struct GateState {
    /// Each shard of each SKU by its hash tag (see `gate::shards`).
    shards: BTreeMap<String, ShardKeys>,
    live_skus: BTreeSet<String>,
    campaigns: BTreeMap<String, CampaignGate>,
    live_campaigns: BTreeSet<String>,
    /// Each rate limit's theoretical arrival time.
    limits: BTreeMap<String, std::time::Instant>,
    /// Each sale's waiting room.
    rooms: BTreeMap<String, room::Room>,
    /// second → item → count
    hits: BTreeMap<i64, HashMap<String, u64>>,
    hot_marks: BTreeMap<String, crate::ports::HotMark>,
}

/// The stock gate and packet pool: one cache, seen by one instance (each
/// instance remembers SKUs' layouts on its own; see [`instance`]).
///
/// [`instance`]: MemoryGate::instance
#[derive(Debug)]
pub struct MemoryGate {
    state: Arc<Mutex<GateState>>,
    layouts: Layouts,
    /// How many masters the cache has: what a hot SKU is split over.
    masters: u32,
    pub faults: Arc<Faults>,
}

impl Default for MemoryGate {
    fn default() -> Self {
        MemoryGate::with_masters(1)
    }
}

impl MemoryGate {
    /// A cache of `masters` masters.
    pub fn with_masters(masters: u32) -> Self {
        MemoryGate {
            state: Arc::default(),
            layouts: Layouts::default(),
            masters,
            faults: Arc::default(),
        }
    }

    /// Another instance of the same cache: the same keys and faults, its
    /// own memory of layouts.
    pub fn instance(&self) -> Self {
        MemoryGate {
            state: self.state.clone(),
            layouts: Layouts::default(),
            masters: self.masters,
            faults: self.faults.clone(),
        }
    }

    fn state(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().expect("a test thread panicked holding the gate")
    }

    /// Forgets a SKU, every shard of it, as a Redis that lost its data would.
    pub fn lose_sku(&self, sku_id: &str) {
        self.state().shards.retain(|tag, _| !shards::of_sku(tag, sku_id));
    }

    /// Whether a shard of the SKU holds the order (unpaid or paid).
    pub fn holds(&self, sku_id: &str, order_id: &str) -> bool {
        self.state()
            .shards_of(sku_id)
            .any(|keys| keys.holders.contains_key(order_id) || keys.paid.contains_key(order_id))
    }

    /// Forgets one order's unit, buyer and hold, as a failover to a replica
    /// that missed its grab would.
    pub fn forget(&self, sku_id: &str, order_id: &str, username: &str) {
        let mut state = self.state();
        let keys = state
            .shards_of(sku_id)
            .find(|keys| keys.holders.contains_key(order_id) || keys.paid.contains_key(order_id))
            .expect("the order is held");
        keys.buyers.remove(username);
        keys.pending.remove(order_id);
        keys.holders.remove(order_id);
        keys.paid.remove(order_id);
        keys.stock = Some(keys.stock.unwrap_or(0) + 1);
    }

    /// Forgets a shopper's claim, as a failover to a replica that missed it
    /// would: the packet back on the pool, the shopper unknown.
    pub fn forget_claim(&self, campaign_id: &str, username: &str) {
        let mut state = self.state();
        let gate = state.campaigns.get_mut(campaign_id).expect("the campaign is loaded");
        let packet = gate.claimed.remove(username).expect("the shopper claimed");
        gate.pool.push_front(packet);
    }

    /// Forgets everything, as a cache that lost its data does.
    pub fn wipe(&self) {
        *self.state() = GateState::default();
    }

    /// Forgets a campaign, as a Redis that lost its data would.
    pub fn lose_campaign(&self, campaign_id: &str) {
        self.state().campaigns.remove(campaign_id);
    }
}

#[derive(Debug, Default)]
struct LedgerState {
    orders: BTreeMap<String, Order>,
    skus: BTreeMap<String, Sku>,
    /// SKUs taken out of the on-sale listing (`take_off_sale`).
    off_sale: BTreeSet<String>,
    records: BTreeMap<(RecordKind, String), serde_json::Value>,
    /// (activity id, SKU id)
    links: BTreeSet<(String, String)>,
    users: BTreeMap<String, (User, String)>,
    admins: BTreeMap<String, (Admin, String)>,
    /// (username, address id)
    addresses: BTreeMap<(String, String), Address>,
    /// Each address book's version, by username.
    address_books: BTreeMap<String, u64>,
    campaigns: BTreeMap<String, Campaign>,
    splits: BTreeMap<String, Vec<Packet>>,
    credits: BTreeMap<String, Credit>,
    /// (username, campaign id) → the packet the shopper has.
    claimants: BTreeMap<(String, String), Claimant>,
    balances: BTreeMap<String, i64>,
}

/// Every store of the ledger.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    state: Arc<Mutex<LedgerState>>,
    /// How long after a write began the listings surely show it: nothing
    /// lags in memory, unless a simulation models the DynamoDB client's
    /// timeout and an index's propagation.
    listing_lag: std::time::Duration,
    pub faults: Faults,
}

fn lock(state: &Mutex<LedgerState>) -> MutexGuard<'_, LedgerState> {
    state.lock().expect("a test thread panicked holding the ledger")
}

impl MemoryLedger {
    fn state(&self) -> MutexGuard<'_, LedgerState> {
        lock(&self.state)
    }

    /// A ledger whose listings are trusted only `lag` after a write began
    /// (see [`OrderStore::listing_lag`](crate::ports::OrderStore::listing_lag)).
    pub fn with_listing_lag(lag: std::time::Duration) -> Self {
        MemoryLedger {
            listing_lag: lag,
            ..MemoryLedger::default()
        }
    }

    /// Another writer of the same ledger, for [`Faults::before`].
    pub fn other_writer(&self) -> OtherWriter {
        OtherWriter(self.state.clone())
    }

    /// Every order, cancelled ones and tombstones too, by id.
    pub fn all_orders(&self) -> Vec<Order> {
        self.state().orders.values().cloned().collect()
    }

    /// Every credit, by packet id.
    pub fn all_credits(&self) -> Vec<Credit> {
        self.state().credits.values().cloned().collect()
    }

    /// Every shopper's balance.
    pub fn all_balances(&self) -> BTreeMap<String, i64> {
        self.state().balances.clone()
    }
}

/// Writes to the ledger from outside the flow under test, as a concurrent
/// Lambda would.
#[derive(Debug, Clone)]
pub struct OtherWriter(Arc<Mutex<LedgerState>>);

impl OtherWriter {
    /// Changes a stored order as a conditional write would: its version moves.
    pub fn change_order(&self, id: &str, change: impl FnOnce(&mut Order)) {
        let mut state = lock(&self.0);
        let order = state.orders.get_mut(id).expect("the order exists");
        change(order);
        order.version += 1;
    }

    /// Changes a stored SKU.
    pub fn change_sku(&self, id: &str, change: impl FnOnce(&mut Sku)) {
        let mut state = lock(&self.0);
        change(state.skus.get_mut(id).expect("the SKU exists"));
    }
}

pub use pages::{MemoryPages, published_sku};
pub use payments::MemoryPayments;
pub use ticket_list::MemoryTicketList;
pub use warm::MemoryWarmCapacity;

/// One of each adapter: a whole system in memory.
#[derive(Debug, Default)]
pub struct Memory {
    pub gate: MemoryGate,
    pub ledger: MemoryLedger,
    pub payments: MemoryPayments,
}

impl Memory {
    pub fn ports(&self) -> Ports<'_, MemoryGate, MemoryLedger, MemoryPayments> {
        Ports {
            gate: &self.gate,
            ledger: &self.ledger,
            payments: &self.payments,
        }
    }
}

/// A page of `items` (already in listing order): the cursor is the offset
/// of the next page.
fn page<T>(items: Vec<T>, limit: usize, cursor: Option<&str>) -> PortResult<Page<T>> {
    let start: usize = match cursor {
        Some(cursor) => cursor.parse().map_err(|_| PortError::InvalidCursor)?,
        None => 0,
    };
    let total = items.len();
    let items: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    let end = start + items.len();
    Ok(Page {
        items,
        next_cursor: (end < total).then(|| end.to_string()),
    })
}
