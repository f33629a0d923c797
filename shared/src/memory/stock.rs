//! [`StockScripts`] in memory: each script of `lua/` decision for decision,
//! over the same keys kept as data ([`ShardKeys`], one per hash tag), so
//! the in-memory gate runs the sharded-stock protocol exactly as Redis
//! does. `tests/tests/differential.rs` holds the two to each other.

use std::collections::BTreeMap;

use super::{GateState, MemoryGate, Op};
use crate::{
    gate::{
        scripts::{
            Census, GrabReply, LendReply, LiveOrder, PublishArgs, PublishReply, ReceiveReply, RestoreReply,
            SettleReply, Shard, ShardKeys, SplitReply, StockScripts,
        },
        shards::Layouts,
    },
    ports::{Hold, PortResult, RETIRE_AFTER_END_MS},
    ts,
};

/// Every key of a shard, by the names `retire.lua` and `publish.lua` use.
const PARTS: [&str; 8] = [
    "meta", "stock", "buyers", "pending", "holders", "paid", "lent", "received",
];

/// The refusals of `misrouted.lua`.
enum Misrouted {
    Resharded(u32),
    NotReady,
}

impl From<Misrouted> for SettleReply {
    fn from(refusal: Misrouted) -> Self {
        match refusal {
            Misrouted::Resharded(shards) => SettleReply::Resharded(shards),
            Misrouted::NotReady => SettleReply::NotReady,
        }
    }
}

impl From<Misrouted> for RestoreReply {
    fn from(refusal: Misrouted) -> Self {
        match refusal {
            Misrouted::Resharded(shards) => RestoreReply::Resharded(shards),
            Misrouted::NotReady => RestoreReply::NotReady,
        }
    }
}

impl ShardKeys {
    fn number<T: std::str::FromStr>(&self, field: &str) -> Option<T> {
        self.meta.get(field).and_then(|value| value.parse().ok())
    }

    /// `misrouted.lua`: the refusal owed to a caller that routed by
    /// `routed_by` shards, if any.
    fn misrouted(&self, routed_by: u32) -> Option<Misrouted> {
        if self.meta.is_empty() {
            return (routed_by > 1).then_some(Misrouted::NotReady);
        }
        let shards = self.number("shards").unwrap_or(1);
        (shards != routed_by).then_some(Misrouted::Resharded(shards))
    }

    fn has(&self, part: &str) -> bool {
        match part {
            "meta" => !self.meta.is_empty(),
            "stock" => self.stock.is_some(),
            "buyers" => !self.buyers.is_empty(),
            "pending" => !self.pending.is_empty(),
            "holders" => !self.holders.is_empty(),
            "paid" => !self.paid.is_empty(),
            "lent" => !self.lent.is_empty(),
            "received" => !self.received.is_empty(),
            _ => false,
        }
    }

    /// `HINCRBY meta arrivals 1`: units came on sale here.
    fn arrived(&mut self) {
        let arrivals = self.number::<i64>("arrivals").unwrap_or(0) + 1;
        self.meta.insert("arrivals".to_owned(), arrivals.to_string());
    }

    /// `PERSIST` of these keys.
    fn persist(&mut self, parts: &[&str]) {
        for part in parts {
            self.expiring.remove(*part);
        }
    }

    /// What Redis does to a key that becomes empty: it is gone, with its
    /// time to live.
    fn drop_empty(&mut self) {
        let gone: Vec<String> = self.expiring.iter().filter(|part| !self.has(part)).cloned().collect();
        for part in gone {
            self.expiring.remove(&part);
        }
    }
}

impl GateState {
    fn shard(&mut self, shard: &Shard) -> &mut ShardKeys {
        self.shards.entry(shard.tag.clone()).or_default()
    }

    /// Runs one script on a shard's keys, as Redis would: atomically, and
    /// leaving no empty key behind.
    fn on<T>(&mut self, shard: &Shard, script: impl FnOnce(&mut ShardKeys) -> T) -> T {
        let keys = self.shard(shard);
        let answer = script(keys);
        keys.drop_empty();
        if !keys.exists() {
            self.shards.remove(&shard.tag);
        }
        answer
    }

    fn read(&self, shard: &Shard) -> ShardKeys {
        self.shards.get(&shard.tag).cloned().unwrap_or_default()
    }
}

impl StockScripts for MemoryGate {
    fn layouts(&self) -> &Layouts {
        &self.layouts
    }

    async fn grab(
        &self,
        shard: &Shard,
        username: &str,
        order_id: &str,
        now_ms: i64,
        routed_by: u32,
        loan: Option<(&str, i64)>,
    ) -> PortResult<GrabReply> {
        self.faults
            .run(Op::Grab, || {
                Ok(self.state().on(shard, |keys| {
                    let (Some(begin), Some(end)) = (keys.number::<i64>("begin_ms"), keys.number::<i64>("end_ms"))
                    else {
                        return GrabReply::NotPublished;
                    };
                    let shards = keys.number("shards").unwrap_or(1);
                    if shards != routed_by {
                        return GrabReply::Resharded(shards);
                    }
                    if let Some((transfer, units)) = loan
                        && keys.received.insert(transfer.to_owned())
                    {
                        keys.stock = Some(keys.stock.unwrap_or(0) + units);
                        keys.arrived();
                    }
                    if now_ms < begin {
                        return GrabReply::NotStarted;
                    }
                    if now_ms >= end {
                        return GrabReply::Ended;
                    }
                    let price = keys.number("price").unwrap_or_default();
                    let name = keys.meta.get("name").cloned().unwrap_or_default();
                    if keys.buyers.contains(username) {
                        if keys.holders.get(order_id).map(String::as_str) == Some(username) {
                            let deadline_ms = keys.pending.get(order_id).copied().unwrap_or_default();
                            return GrabReply::Reserved {
                                deadline_ms,
                                price,
                                name,
                            };
                        }
                        return GrabReply::AlreadyPurchased;
                    }
                    if keys.stock.unwrap_or(0) <= 0 {
                        return GrabReply::SoldOut;
                    }
                    let deadline_ms = now_ms + keys.number::<i64>("pay_timeout_ms").unwrap_or_default();
                    keys.stock = Some(keys.stock.unwrap_or(0) - 1);
                    keys.buyers.insert(username.to_owned());
                    keys.pending.insert(order_id.to_owned(), deadline_ms);
                    keys.holders.insert(order_id.to_owned(), username.to_owned());
                    GrabReply::Reserved {
                        deadline_ms,
                        price,
                        name,
                    }
                }))
            })
            .await
    }

    async fn release(&self, shard: &Shard, order_id: &str, routed_by: u32) -> PortResult<SettleReply> {
        self.settle(Op::Release, shard, order_id, routed_by, |keys, username| {
            keys.buyers.remove(&username);
            keys.stock = Some(keys.stock.unwrap_or(0) + 1);
            keys.arrived();
            SettleReply::Released
        })
        .await
    }

    async fn confirm(&self, shard: &Shard, order_id: &str, routed_by: u32) -> PortResult<SettleReply> {
        self.settle(Op::Confirm, shard, order_id, routed_by, |keys, username| {
            keys.paid.insert(order_id.to_owned(), username);
            SettleReply::Confirmed
        })
        .await
    }

    async fn publish(&self, shard: &Shard, args: PublishArgs<'_>) -> PortResult<PublishReply> {
        self.faults
            .run(Op::Publish, || Ok(self.state().on(shard, |keys| publish(keys, args))))
            .await
    }

    async fn restore(&self, shard: &Shard, orders: &[LiveOrder<'_>], routed_by: u32) -> PortResult<RestoreReply> {
        self.faults
            .run(Op::Restore, || {
                Ok(self.state().on(shard, |keys| {
                    if let Some(refusal) = keys.misrouted(routed_by) {
                        return refusal.into();
                    }
                    let Some(mut stock) = keys.stock else {
                        return RestoreReply::NotLoaded;
                    };
                    let (mut restored, mut oversold) = (Vec::new(), Vec::new());
                    for &(username, order_id, deadline) in orders {
                        let known =
                            keys.holders.contains_key(order_id) || (deadline == 0 && keys.paid.contains_key(order_id));
                        if known {
                            continue;
                        }
                        keys.buyers.insert(username.to_owned());
                        if deadline == 0 {
                            keys.paid.insert(order_id.to_owned(), username.to_owned());
                        } else {
                            keys.pending.insert(order_id.to_owned(), deadline);
                            keys.holders.insert(order_id.to_owned(), username.to_owned());
                        }
                        restored.push(order_id.to_owned());
                        stock -= 1;
                        if stock < 0 {
                            oversold.push(order_id.to_owned());
                        }
                    }
                    keys.stock = Some(stock);
                    if !restored.is_empty() {
                        keys.persist(&PARTS[..6]);
                    }
                    RestoreReply::Restored {
                        orders: restored,
                        oversold,
                    }
                }))
            })
            .await
    }

    async fn split(&self, sku_id: &str, wanted: u32) -> PortResult<SplitReply> {
        self.faults
            .run(Op::Split, || {
                Ok(self.state().on(&Shard::first(sku_id), |keys| split(keys, wanted)))
            })
            .await
    }

    async fn join(&self, sku_id: &str, shards: u32, moved: &[(&str, &str)]) -> PortResult<()> {
        self.faults
            .run(Op::Join, || {
                self.state().on(&Shard::first(sku_id), |keys| {
                    for &(username, order_id) in moved {
                        keys.buyers.remove(username);
                        keys.pending.remove(order_id);
                        keys.holders.remove(order_id);
                        keys.paid.remove(order_id);
                    }
                    keys.meta.remove("splitting");
                    for k in 1..shards {
                        keys.meta.remove(&format!("share:{k}"));
                    }
                });
                Ok(())
            })
            .await
    }

    async fn lend(&self, from: &Shard, transfer: &str, to: u32, now_ms: i64) -> PortResult<LendReply> {
        self.faults
            .run(Op::Lend, || {
                Ok(self.state().on(from, |keys| {
                    let stock = keys.stock.unwrap_or(0);
                    if stock <= 0 {
                        return LendReply::Empty;
                    }
                    let units = (stock / 2).max(1);
                    keys.stock = Some(stock - units);
                    keys.lent.insert(transfer.to_owned(), format!("{units}:{to}:{now_ms}"));
                    LendReply::Lent(units)
                }))
            })
            .await
    }

    async fn receive(&self, shard: &Shard, transfer: &str, units: i64) -> PortResult<ReceiveReply> {
        self.faults
            .run(Op::Receive, || {
                Ok(self.state().on(shard, |keys| {
                    if keys.meta.is_empty() {
                        return ReceiveReply::Missing;
                    }
                    if !keys.received.insert(transfer.to_owned()) {
                        return ReceiveReply::Duplicate;
                    }
                    keys.stock = Some(keys.stock.unwrap_or(0) + units);
                    keys.arrived();
                    ReceiveReply::Received
                }))
            })
            .await
    }

    async fn forget_transfer(&self, from: &Shard, transfer: &str) -> PortResult<()> {
        self.faults
            .run(Op::ForgetTransfer, || {
                self.state().on(from, |keys| keys.lent.remove(transfer));
                Ok(())
            })
            .await
    }

    async fn lent(&self, shard: &Shard) -> PortResult<BTreeMap<String, String>> {
        self.faults.run(Op::Lent, || Ok(self.state().read(shard).lent)).await
    }

    async fn retire(&self, shard: &Shard, now_ms: i64) -> PortResult<bool> {
        self.faults
            .run(Op::RetireIfFinished, || {
                let mut state = self.state();
                let retired = state.on(shard, |keys| {
                    let Some(end) = keys.number::<i64>("end_ms") else {
                        return true;
                    };
                    if now_ms < end + RETIRE_AFTER_END_MS || keys.has("pending") || keys.has("lent") {
                        return false;
                    }
                    let existing: Vec<&str> = PARTS.into_iter().filter(|part| keys.has(part)).collect();
                    keys.expiring.extend(existing.into_iter().map(str::to_owned));
                    true
                });
                if !retired || shard.index > 0 {
                    return Ok(retired);
                }
                state.live_skus.remove(&shard.sku_id);
                // A publish that reopened the SKU made its keys persistent
                // again: it stays live.
                let reopened = state
                    .shards
                    .get(&shard.tag)
                    .is_some_and(|keys| keys.has("meta") && !keys.expiring.contains("meta"));
                if reopened {
                    state.live_skus.insert(shard.sku_id.clone());
                }
                Ok(!reopened)
            })
            .await
    }

    async fn meta(&self, shard: &Shard) -> PortResult<BTreeMap<String, String>> {
        self.faults.run(Op::Meta, || Ok(self.state().read(shard).meta)).await
    }

    async fn layouts_of(&self, sku_ids: &[&str]) -> PortResult<Vec<Option<u32>>> {
        self.faults
            .run(Op::LayoutsOf, || {
                let state = self.state();
                Ok(sku_ids
                    .iter()
                    .map(|sku_id| state.read(&Shard::first(sku_id)).number("shards"))
                    .collect())
            })
            .await
    }

    async fn stocks(&self, shards: &[Shard]) -> PortResult<Vec<Option<i64>>> {
        self.faults
            .run(Op::Stocks, || {
                let state = self.state();
                Ok(shards.iter().map(|shard| state.read(shard).stock).collect())
            })
            .await
    }

    async fn census(&self, shards: &[Shard]) -> PortResult<Vec<Census>> {
        self.faults
            .run(Op::Census, || {
                let state = self.state();
                Ok(shards
                    .iter()
                    .map(|shard| {
                        let keys = state.read(shard);
                        Census {
                            stock: keys.stock,
                            lending: keys.has("lent"),
                            arrivals: keys.number("arrivals").unwrap_or(0),
                        }
                    })
                    .collect())
            })
            .await
    }

    async fn overdue(&self, shard: &Shard, due_ms: i64, limit: usize) -> PortResult<Vec<Hold>> {
        self.faults
            .run(Op::Overdue, || {
                let keys = self.state().read(shard);
                let mut due: Vec<(&String, i64)> = keys
                    .pending
                    .iter()
                    .filter(|(_, deadline)| **deadline <= due_ms)
                    .map(|(id, deadline)| (id, *deadline))
                    .collect();
                due.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
                Ok(due
                    .into_iter()
                    .take(limit)
                    .filter_map(|(order_id, deadline)| {
                        Some(Hold {
                            sku_id: shard.sku_id.clone(),
                            order_id: order_id.clone(),
                            username: keys.holders.get(order_id)?.clone(),
                            pay_deadline: ts::from_millis(deadline),
                            price: keys.number("price").unwrap_or_default(),
                            name: keys.meta.get("name").cloned().unwrap_or_default(),
                        })
                    })
                    .collect())
            })
            .await
    }

    async fn known(&self, shard: &Shard, orders: &[(&str, bool)]) -> PortResult<Option<Vec<bool>>> {
        self.faults
            .run(Op::UnknownOrders, || {
                let keys = self.state().read(shard);
                if keys.stock.is_none() {
                    return Ok(None);
                }
                Ok(Some(
                    orders
                        .iter()
                        .map(|(id, paid)| keys.holders.contains_key(*id) || (*paid && keys.paid.contains_key(*id)))
                        .collect(),
                ))
            })
            .await
    }

    async fn live_skus(&self) -> PortResult<Vec<String>> {
        self.faults
            .run(Op::LiveSkus, || Ok(self.state().live_skus.iter().cloned().collect()))
            .await
    }

    async fn mark_live(&self, sku_id: &str) -> PortResult<()> {
        self.faults
            .run(Op::MarkLive, || {
                self.state().live_skus.insert(sku_id.to_owned());
                Ok(())
            })
            .await
    }

    async fn masters(&self) -> PortResult<u32> {
        Ok(self.masters)
    }
}

/// `publish.lua`.
fn publish(keys: &mut ShardKeys, args: PublishArgs<'_>) -> PublishReply {
    let terms = args.terms;
    let set_terms = |keys: &mut ShardKeys| {
        for (field, value) in [
            ("begin_ms", terms.begin_ms.to_string()),
            ("end_ms", terms.end_ms.to_string()),
            ("pay_timeout_ms", terms.pay_timeout_ms.to_string()),
            ("price", terms.price.to_string()),
            ("name", terms.name.clone()),
        ] {
            keys.meta.insert(field.to_owned(), value);
        }
        if args.first {
            keys.meta.insert("num".to_owned(), terms.num.to_string());
        }
        keys.persist(&PARTS);
    };
    if let Some(mut stock) = keys.stock {
        if let (Some(old), true) = (keys.number::<i64>("num"), args.first) {
            let after = stock + terms.num - old;
            if after < 0 {
                return PublishReply::BelowSold { sold: old - stock };
            }
            stock = after;
            keys.stock = Some(stock);
            keys.arrived();
        }
        set_terms(keys);
        return PublishReply::Republished {
            stock,
            shards: keys.number("shards").unwrap_or(1),
        };
    }
    let Some((stock, orders)) = args.load else {
        return PublishReply::NeedsLedger;
    };
    keys.buyers.clear();
    keys.pending.clear();
    keys.holders.clear();
    keys.paid.clear();
    for &(username, order_id, deadline) in orders {
        keys.buyers.insert(username.to_owned());
        if deadline != 0 {
            keys.pending.insert(order_id.to_owned(), deadline);
            keys.holders.insert(order_id.to_owned(), username.to_owned());
        } else {
            keys.paid.insert(order_id.to_owned(), username.to_owned());
        }
    }
    keys.stock = Some(stock);
    keys.arrived();
    if args.shards > 1 {
        keys.meta.insert("shards".to_owned(), args.shards.to_string());
    }
    set_terms(keys);
    PublishReply::Published {
        stock,
        shards: args.shards,
    }
}

/// `split.lua`.
fn split(keys: &mut ShardKeys, wanted: u32) -> SplitReply {
    if !keys.meta.contains_key("num") {
        return SplitReply::NotPublished;
    }
    let splitting = keys.meta.contains_key("splitting");
    let mut shards = keys.number("shards").unwrap_or(1);
    if shards > 1 && !splitting {
        return SplitReply::Sharded(shards);
    }
    let shares: Vec<i64> = if splitting {
        (1..shards)
            .map(|k| keys.number(&format!("share:{k}")).unwrap_or_default())
            .collect()
    } else {
        shards = wanted;
        let stock = keys.stock.unwrap_or(0).max(0);
        let each = stock / i64::from(shards);
        for k in 1..shards {
            keys.meta.insert(format!("share:{k}"), each.to_string());
        }
        keys.stock = Some(keys.stock.unwrap_or(0) - each * i64::from(shards - 1));
        keys.meta.insert("shards".to_owned(), shards.to_string());
        keys.meta.insert("splitting".to_owned(), "1".to_owned());
        vec![each; (shards - 1) as usize]
    };
    let mut pending: Vec<(&String, i64)> = keys.pending.iter().map(|(id, deadline)| (id, *deadline)).collect();
    pending.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
    let mut orders: Vec<(String, String, i64)> = pending
        .into_iter()
        .filter_map(|(order_id, deadline)| Some((keys.holders.get(order_id)?.clone(), order_id.clone(), deadline)))
        .collect();
    orders.extend(
        keys.paid
            .iter()
            .map(|(order_id, username)| (username.clone(), order_id.clone(), 0)),
    );
    SplitReply::Split { shards, shares, orders }
}

impl MemoryGate {
    /// `release.lua` or `confirm.lua`: the hold of `order_id` ended, then
    /// `settled` does what ending it means.
    async fn settle(
        &self,
        op: Op,
        shard: &Shard,
        order_id: &str,
        routed_by: u32,
        settled: impl FnOnce(&mut ShardKeys, String) -> SettleReply,
    ) -> PortResult<SettleReply> {
        self.faults
            .run(op, || {
                Ok(self.state().on(shard, |keys| {
                    if let Some(refusal) = keys.misrouted(routed_by) {
                        return refusal.into();
                    }
                    let Some(username) = keys.holders.remove(order_id) else {
                        return SettleReply::NotHeld;
                    };
                    keys.pending.remove(order_id);
                    settled(keys, username)
                }))
            })
            .await
    }

    /// Every unit on sale on a shard bought at once by shoppers of its own
    /// (each held for a made-up order), as a crowd would.
    pub fn sell_off(&self, shard: &Shard) {
        self.state().on(shard, |keys| {
            let units = keys.stock.unwrap_or(0);
            for unit in 0..units {
                let (buyer, order) = (format!("crowd-{}-{unit}", keys.holders.len()), crate::ids::fresh());
                keys.buyers.insert(buyer.clone());
                keys.pending.insert(order.clone(), i64::MAX);
                keys.holders.insert(order, buyer);
            }
            keys.stock = Some(units.min(0));
        });
    }

    /// One shard's keys as they stand.
    pub fn shard_keys(&self, shard: &Shard) -> ShardKeys {
        self.state().read(shard)
    }

    /// Every shard's keys, by hash tag.
    pub fn all_shard_keys(&self) -> BTreeMap<String, ShardKeys> {
        self.state().shards.clone()
    }
}
