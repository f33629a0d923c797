//! The gate's stock scripts as the sharded-stock protocol (`stock/`) calls
//! them: one method per script of `lua/` (and per plain read around them),
//! each run on the keys of one shard of one SKU, each answered with one
//! enum per script. Redis runs them (`redis_stock.rs`); the in-memory gate
//! makes the same decisions in Rust (`memory::stock`), and a differential
//! test holds the two to each other. Every method is one round trip to the
//! master of its shard: the protocol above may be interleaved with others,
//! or die, between any two.

use std::{collections::BTreeMap, future::Future};

use super::shards::{self, Layouts};
use crate::ports::{Hold, PortResult};

/// One shard of a SKU: its place among the SKU's shards and the hash tag
/// its keys share (`{<id>}` for the first, `{<id>~<suffix>}` for others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub sku_id: String,
    pub index: u32,
    pub tag: String,
}

impl Shard {
    /// Shard `index` of `sku_id` split in `shards`.
    pub fn of(sku_id: &str, index: u32, shards: u32) -> Shard {
        Shard {
            sku_id: sku_id.to_owned(),
            index,
            tag: shards::tag(sku_id, index, shards),
        }
    }

    /// The first shard, whose keys are the unsharded SKU's.
    pub fn first(sku_id: &str) -> Shard {
        Shard::of(sku_id, 0, 1)
    }

    /// Every shard of `sku_id` split in `shards`, the first first.
    pub fn all(sku_id: &str, shards: u32) -> Vec<Shard> {
        (0..shards).map(|index| Shard::of(sku_id, index, shards)).collect()
    }
}

/// A live order as the scripts take it: username, order id, and its pay
/// deadline (ms), 0 once paid.
pub type LiveOrder<'a> = (&'a str, &'a str, i64);

/// `grab.lua`'s replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrabReply {
    Reserved {
        deadline_ms: i64,
        price: i64,
        name: String,
    },
    NotPublished,
    NotStarted,
    Ended,
    AlreadyPurchased,
    SoldOut,
    /// The caller routed by a stale layout: the SKU has this many shards.
    Resharded(u32),
}

/// `release.lua`'s and `confirm.lua`'s replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleReply {
    Released,
    Confirmed,
    NotHeld,
    Resharded(u32),
    /// The shard is not open yet (the SKU is being split).
    NotReady,
}

/// What `publish.lua` writes besides the orders of a load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub num: i64,
    pub begin_ms: i64,
    pub end_ms: i64,
    pub pay_timeout_ms: i64,
    pub price: i64,
    pub name: String,
}

/// `publish.lua`'s arguments on one shard.
#[derive(Debug, Clone, Copy)]
pub struct PublishArgs<'a> {
    pub terms: &'a Terms,
    /// The first shard keeps the SKU's unit count; the others take the
    /// terms only.
    pub first: bool,
    /// The stock to load the shard with and its live orders, or `None`
    /// to re-publish a shard that must be loaded already.
    pub load: Option<(i64, &'a [LiveOrder<'a>])>,
    pub shards: u32,
}

/// `publish.lua`'s replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishReply {
    Published { stock: i64, shards: u32 },
    Republished { stock: i64, shards: u32 },
    BelowSold { sold: i64 },
    NeedsLedger,
}

/// `restore.lua`'s replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreReply {
    NotLoaded,
    /// The orders it held again, and of those the ones for which this
    /// shard had no unit.
    Restored {
        orders: Vec<String>,
        oversold: Vec<String>,
    },
    Resharded(u32),
    NotReady,
}

/// `split.lua`'s replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitReply {
    NotPublished,
    /// Split already, into this many shards: nothing left to do.
    Sharded(u32),
    /// The shares of shards 1.. and the orders held on the first shard
    /// (username, order id, deadline ms or 0 once paid), to open the
    /// others with.
    Split {
        shards: u32,
        shares: Vec<i64>,
        orders: Vec<(String, String, i64)>,
    },
}

/// `lend.lua`'s replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LendReply {
    Lent(i64),
    Empty,
}

/// `receive.lua`'s replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiveReply {
    Received,
    /// Taken in before.
    Duplicate,
    /// No such shard: deliver the units back to the lender instead.
    Missing,
}

/// A shard's units as a sold-out check reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Census {
    /// Units on sale; `None` if the shard is not open.
    pub stock: Option<i64>,
    /// Whether it lent units not known to be taken in yet.
    pub lending: bool,
    /// How often units came on sale here (a release, a loan taken in, a
    /// publish): a unit that came and went between two reads shows.
    pub arrivals: i64,
}

/// The stock scripts and plain reads of one shard, as one master runs them.
pub trait StockScripts: Sync {
    /// How many shards each SKU has, as far as this instance knows.
    fn layouts(&self) -> &Layouts;

    /// `grab.lua`; with `loan` (a transfer lent to this shard for this
    /// grab, and its units), the loan is taken in first.
    fn grab(
        &self,
        shard: &Shard,
        username: &str,
        order_id: &str,
        now_ms: i64,
        routed_by: u32,
        loan: Option<(&str, i64)>,
    ) -> impl Future<Output = PortResult<GrabReply>> + Send;
    fn release(
        &self,
        shard: &Shard,
        order_id: &str,
        routed_by: u32,
    ) -> impl Future<Output = PortResult<SettleReply>> + Send;
    fn confirm(
        &self,
        shard: &Shard,
        order_id: &str,
        routed_by: u32,
    ) -> impl Future<Output = PortResult<SettleReply>> + Send;
    fn publish(&self, shard: &Shard, args: PublishArgs<'_>) -> impl Future<Output = PortResult<PublishReply>> + Send;
    fn restore(
        &self,
        shard: &Shard,
        orders: &[LiveOrder<'_>],
        routed_by: u32,
    ) -> impl Future<Output = PortResult<RestoreReply>> + Send;
    /// `split.lua`, on the first shard.
    fn split(&self, sku_id: &str, wanted: u32) -> impl Future<Output = PortResult<SplitReply>> + Send;
    /// `join.lua`, on the first shard: drops the orders that moved.
    fn join(&self, sku_id: &str, shards: u32, moved: &[(&str, &str)]) -> impl Future<Output = PortResult<()>> + Send;
    fn lend(
        &self,
        from: &Shard,
        transfer: &str,
        to: u32,
        now_ms: i64,
    ) -> impl Future<Output = PortResult<LendReply>> + Send;
    fn receive(
        &self,
        shard: &Shard,
        transfer: &str,
        units: i64,
    ) -> impl Future<Output = PortResult<ReceiveReply>> + Send;
    /// Drops the lender's record of a delivered transfer.
    fn forget_transfer(&self, from: &Shard, transfer: &str) -> impl Future<Output = PortResult<()>> + Send;
    /// A shard's undelivered transfers: transfer id → `units:to:ms`.
    fn lent(&self, shard: &Shard) -> impl Future<Output = PortResult<BTreeMap<String, String>>> + Send;
    /// `retire.lua` on a shard; the first one also takes the SKU off the
    /// live set. Whether it retired.
    fn retire(&self, shard: &Shard, now_ms: i64) -> impl Future<Output = PortResult<bool>> + Send;
    /// The meta hash of a shard (terms, layout, a split under way).
    fn meta(&self, shard: &Shard) -> impl Future<Output = PortResult<BTreeMap<String, String>>> + Send;
    /// Each SKU's number of shards, as its first shard says.
    fn layouts_of(&self, sku_ids: &[&str]) -> impl Future<Output = PortResult<Vec<Option<u32>>>> + Send;
    /// Each shard's units on sale, `None` where it is not loaded.
    fn stocks(&self, shards: &[Shard]) -> impl Future<Output = PortResult<Vec<Option<i64>>>> + Send;
    /// Each shard's [`Census`], one round trip per shard, all at once.
    fn census(&self, shards: &[Shard]) -> impl Future<Output = PortResult<Vec<Census>>> + Send;
    /// Holds of the shard whose deadline is at or before `due_ms`, the
    /// earliest first.
    fn overdue(&self, shard: &Shard, due_ms: i64, limit: usize) -> impl Future<Output = PortResult<Vec<Hold>>> + Send;
    /// Of `orders` (id, paid), whether the shard knows each: held, or paid
    /// and among the paid; `None` if the shard is not loaded.
    fn known(
        &self,
        shard: &Shard,
        orders: &[(&str, bool)],
    ) -> impl Future<Output = PortResult<Option<Vec<bool>>>> + Send;
    fn live_skus(&self) -> impl Future<Output = PortResult<Vec<String>>> + Send;
    /// Puts the SKU among those the sweeps visit.
    fn mark_live(&self, sku_id: &str) -> impl Future<Output = PortResult<()>> + Send;
    fn masters(&self) -> impl Future<Output = PortResult<u32>> + Send;
}

/// One shard's keys as data: what a differential test compares between
/// Redis and the in-memory gate, and what the in-memory gate keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardKeys {
    pub meta: BTreeMap<String, String>,
    pub stock: Option<i64>,
    pub buyers: std::collections::BTreeSet<String>,
    /// order id → pay deadline (ms)
    pub pending: BTreeMap<String, i64>,
    /// order id → username
    pub holders: BTreeMap<String, String>,
    /// order id → username
    pub paid: BTreeMap<String, String>,
    /// transfer id → `units:to:ms`
    pub lent: BTreeMap<String, String>,
    pub received: std::collections::BTreeSet<String>,
    /// The keys given a time to live by `retire.lua`, by name (`meta`,
    /// `stock`, …): they expire two days later unless made persistent.
    pub expiring: std::collections::BTreeSet<String>,
}

impl ShardKeys {
    /// Whether any key of the shard exists.
    pub fn exists(&self) -> bool {
        !self.meta.is_empty()
            || self.stock.is_some()
            || !self.buyers.is_empty()
            || !self.pending.is_empty()
            || !self.holders.is_empty()
            || !self.paid.is_empty()
            || !self.lent.is_empty()
            || !self.received.is_empty()
    }
}
