//! The invariants, read from the state itself after every step (the gate's
//! keys, the ledger's records, the provider's books) and held against what
//! shoppers were told. Each check names what broke.

use std::collections::{BTreeMap, BTreeSet};

use shared::{
    gate::{scripts::ShardKeys, shards},
    model::{CloseReason, Order, PayType, RefundStatus},
};

use crate::world::World;

/// A SKU as the gate holds it over all its shards.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SkuView {
    /// The sale's units (`seckill_num`, kept on the first shard).
    pub num: i64,
    pub shards: u32,
    /// Units on sale on each open shard (below zero where oversold).
    pub stocks: Vec<i64>,
    /// Units lent by one shard and not yet taken in by another.
    pub in_transit: i64,
    /// Shares of shards a split carved out and has not opened yet.
    pub unopened: i64,
    /// Live orders the gate holds (unpaid or paid), each from the shard
    /// that answers for it, with how many times it is held.
    pub held: BTreeMap<String, u32>,
}

impl SkuView {
    /// Units anyone could still buy: on sale on some shard, on their way
    /// between shards, or waiting in a share of a split.
    pub fn left(&self) -> i64 {
        self.stocks.iter().map(|stock| stock.max(&0)).sum::<i64>() + self.in_transit + self.unopened
    }

    fn held_units(&self) -> i64 {
        self.held.values().map(|&n| i64::from(n)).sum()
    }
}

/// The gate's view of a SKU, `None` if the gate does not have it.
pub fn sku_view(keys: &BTreeMap<String, ShardKeys>, sku_id: &str) -> Option<SkuView> {
    let first = keys.get(sku_id)?;
    let num = first.meta.get("num")?.parse().ok()?;
    let count = first.meta.get("shards").and_then(|n| n.parse().ok()).unwrap_or(1u32);
    let splitting = first.meta.contains_key("splitting");
    let tags: Vec<String> = (0..count).map(|k| shards::tag(sku_id, k, count)).collect();
    let open = |k: u32| k == 0 || keys.get(&tags[k as usize]).is_some_and(|shard| shard.stock.is_some());
    let mut view = SkuView {
        num,
        shards: count,
        ..SkuView::default()
    };
    for k in 0..count {
        let Some(shard) = keys.get(&tags[k as usize]).filter(|_| open(k)) else {
            if splitting {
                view.unopened += first
                    .meta
                    .get(&format!("share:{k}"))
                    .and_then(|share| share.parse::<i64>().ok())
                    .unwrap_or(0);
            }
            continue;
        };
        view.stocks.push(shard.stock.unwrap_or(0));
        let orders = shard.holders.iter().chain(&shard.paid);
        for (order_id, username) in orders {
            // The first shard keeps copies of the orders a split moved
            // until it joins; the home shard answers for them once open.
            let home = shards::home(username, count);
            if k == 0 && home != 0 && open(home) {
                continue;
            }
            *view.held.entry(order_id.clone()).or_default() += 1;
        }
        for (transfer, record) in &shard.lent {
            let mut parts = record.split(':');
            let units: i64 = parts.next().and_then(|u| u.parse().ok()).unwrap_or(0);
            let to: usize = parts.next().and_then(|t| t.parse().ok()).unwrap_or(0);
            let taken = |tag: &String| keys.get(tag).is_some_and(|s| s.received.contains(transfer));
            if !tags.get(to).is_some_and(taken) && !taken(&tags[k as usize]) {
                view.in_transit += units;
            }
        }
    }
    Some(view)
}

/// The ledger's live orders (holding a unit) of each SKU.
fn live_orders(orders: &[Order]) -> BTreeMap<&str, Vec<&Order>> {
    let mut live: BTreeMap<&str, Vec<&Order>> = BTreeMap::new();
    for order in orders.iter().filter(|order| order.status.holds_unit()) {
        live.entry(order.sku_id.as_str()).or_default().push(order);
    }
    live
}

/// The invariants that hold after every step (and, as they are read, the
/// grabs under way that saw their SKU with nothing left).
pub fn check_step(world: &World, skus: &[String]) -> Result<(), String> {
    let keys = world.gate.all_shard_keys();
    let orders = world.ledger.all_orders();
    let live = live_orders(&orders);
    for sku_id in skus {
        let sold = live.get(sku_id.as_str()).map_or(&[][..], Vec::as_slice);
        let Some(view) = sku_view(&keys, sku_id) else {
            continue;
        };
        if view.left() <= 0 {
            world.none_left(sku_id);
        }
        let counted = view.stocks.iter().sum::<i64>() + view.in_transit + view.unopened + view.held_units();
        if counted != view.num {
            return Err(format!(
                "{sku_id}: the gate counts {counted} units of {} (sold + remaining != stock): {view:?}",
                view.num
            ));
        }
        if let Some((order, _)) = view.held.iter().find(|(_, n)| **n > 1) {
            return Err(format!("{sku_id}: order {order} is held twice: {view:?}"));
        }
        if i64::try_from(sold.len()).unwrap_or(i64::MAX) > view.num {
            return Err(format!(
                "{sku_id}: oversold: {} live orders of {} units",
                sold.len(),
                view.num
            ));
        }
        if let Some(order) = sold.iter().find(|order| !view.held.contains_key(&order.id)) {
            return Err(format!(
                "{sku_id}: live order {} ({}) is not held by the gate: its unit is on sale again",
                order.id,
                order.status.as_str()
            ));
        }
        let mut shoppers = BTreeSet::new();
        if let Some(order) = sold.iter().find(|order| !shoppers.insert(order.username.as_str())) {
            return Err(format!("{sku_id}: {} holds two live orders", order.username));
        }
    }
    check_told(world, &orders)?;
    check_money(world, &orders)?;
    check_packets(world)
}

/// Nothing a shopper was told is lost, and no one was told a SKU is sold
/// out while a unit of it was left.
fn check_told(world: &World, orders: &[Order]) -> Result<(), String> {
    let mut told = world.told.borrow_mut();
    if let Some(broken) = told.broken.first() {
        return Err(broken.clone());
    }
    for grab in told
        .grabs
        .iter_mut()
        .filter(|grab| !grab.checked && grab.answer.is_some())
    {
        grab.checked = true;
        let sold_out = matches!(&grab.answer, Some(Err(code)) if code == "SOLD_OUT");
        if sold_out && !grab.saw_none_left {
            return Err(format!(
                "{} was told {} is sold out while units were left on sale",
                grab.username, grab.sku_id
            ));
        }
    }
    let by_id: BTreeMap<&str, &Order> = orders.iter().map(|order| (order.id.as_str(), order)).collect();
    for id in &told.orders {
        match by_id.get(id.as_str()) {
            Some(order) if order.close_reason != Some(CloseReason::OrderWriteFailed) => {}
            found => return Err(format!("order {id} was acknowledged but the ledger has {found:?}")),
        }
    }
    for id in &told.paid {
        let found = by_id.get(id.as_str());
        if !found.is_some_and(|order| order.pay_type == PayType::Online && order.status.settled()) {
            let status = found.map(|order| order.status);
            return Err(format!(
                "order {id} was acknowledged paid but the ledger has it {status:?}"
            ));
        }
    }
    Ok(())
}

/// No order is paid without the provider holding its money.
fn check_money(world: &World, orders: &[Order]) -> Result<(), String> {
    let kept = world.payments.kept();
    for order in orders {
        if order.holds_charge() && !order.transaction_id.as_ref().is_some_and(|id| kept.contains_key(id)) {
            return Err(format!(
                "order {} is paid but the provider holds no charge for it",
                order.id
            ));
        }
        if order.refund_status == Some(RefundStatus::Refunded)
            && order
                .refund_transaction_id
                .as_ref()
                .is_some_and(|id| kept.contains_key(id))
        {
            return Err(format!(
                "order {} is refunded but the provider kept the money",
                order.id
            ));
        }
    }
    Ok(())
}

/// Each packet to one shopper, each shopper one packet, credits exact.
fn check_packets(world: &World) -> Result<(), String> {
    let told = world.told.borrow();
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    for ((_, username), packet) in &told.packets {
        if let Some(other) = owners.insert(&packet.red_packet_id, username) {
            return Err(format!(
                "packet {} was told to {other} and to {username}",
                packet.red_packet_id
            ));
        }
    }
    let mut balances: BTreeMap<String, i64> = BTreeMap::new();
    for credit in world.ledger.all_credits() {
        if let Some(owner) = owners.get(credit.red_packet_id.as_str())
            && *owner != credit.username
        {
            return Err(format!(
                "packet {} told to {owner} is {}'s in the ledger",
                credit.red_packet_id, credit.username
            ));
        }
        if credit.credited_at.is_some() {
            *balances.entry(credit.username).or_default() += credit.amount;
        }
    }
    let stored: BTreeMap<String, i64> = world
        .ledger
        .all_balances()
        .into_iter()
        .filter(|(_, balance)| *balance != 0)
        .collect();
    if stored != balances {
        return Err(format!("balances {stored:?} are not the credits {balances:?}"));
    }
    Ok(())
}

/// What must hold once every job has settled everything: the books
/// balance exactly.
pub fn check_settled(world: &World, skus: &[String]) -> Result<(), String> {
    let keys = world.gate.all_shard_keys();
    let orders = world.ledger.all_orders();
    let live = live_orders(&orders);
    for sku_id in skus {
        let sold = live.get(sku_id.as_str()).map_or(0, Vec::len) as i64;
        let Some(view) = sku_view(&keys, sku_id) else {
            continue;
        };
        let remaining: i64 = view.stocks.iter().sum();
        if sold + remaining != view.num || view.in_transit != 0 || view.unopened != 0 {
            return Err(format!(
                "{sku_id} settled: {sold} sold + {remaining} remaining != {} units: {view:?}",
                view.num
            ));
        }
        if view.held.len() as i64 != sold {
            return Err(format!(
                "{sku_id} settled: {sold} live orders, {} held",
                view.held.len()
            ));
        }
    }
    for order in &orders {
        if order.payment_unsettled() {
            return Err(format!("order {} still has money unsettled: {order:?}", order.id));
        }
    }
    let paid: i64 = orders.iter().filter(|o| o.holds_charge()).map(|o| o.price).sum();
    let kept = world.payments.kept();
    if kept.values().sum::<i64>() != paid {
        let held: Vec<_> = orders
            .iter()
            .filter(|o| o.holds_charge() || kept.keys().any(|id| id.contains(&o.id)))
            .map(|o| format!("{o:?}"))
            .collect();
        return Err(format!(
            "charged - refunded = {}, paid = {paid}: the provider keeps {kept:?}; orders {held:?}",
            kept.values().sum::<i64>()
        ));
    }
    let credits = world.ledger.all_credits();
    let told = world.told.borrow();
    for ((campaign, username), packet) in &told.packets {
        let credited = |c: &&shared::model::Credit| {
            c.red_packet_id == packet.red_packet_id
                && &c.username == username
                && &c.campaign_id == campaign
                && c.credited_at.is_some()
        };
        if !credits.iter().any(|c| credited(&c)) {
            return Err(format!(
                "{username} was told packet {} and it was never credited",
                packet.red_packet_id
            ));
        }
    }
    Ok(())
}
