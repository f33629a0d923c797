//! The flash sale: publish → grab → pay / cancel / time out → ship → receive.
//!
//! Redis (the [`StockGate`]) decides who gets a unit; DynamoDB (the
//! [`OrderStore`]) is the ledger of what was sold. The two are kept in step
//! by one rule: a unit is given back to Redis only once the ledger proves
//! no live order holds it (a cancelled order, or a tombstone that makes the
//! order impossible to write later). Every flow below follows it, so a
//! crash or outage at any step can delay a unit's return but never sell it
//! twice.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::WRITE_ATTEMPTS;

use crate::{
    error::Error,
    ids,
    model::{CloseReason, Order, OrderStatus, ReservedUnit, Sku},
    ports::{Hold, OrderStore, Page, PortError, Ports, PublishOutcome, Reservation, SkuStore, StockGate},
};

impl Order {
    /// The next version of this order: same identity, `update_time` moved.
    pub(super) fn next(&self, now: DateTime<Utc>) -> Order {
        Order {
            update_time: now,
            version: self.version + 1,
            ..self.clone()
        }
    }

    fn closed(&self, reason: CloseReason, now: DateTime<Utc>) -> Order {
        Order {
            status: OrderStatus::Cancelled,
            close_time: Some(now),
            close_reason: Some(reason),
            ..self.next(now)
        }
    }
}

/// Loads a SKU into Redis (first time) or updates its terms there.
pub async fn publish(
    ports: Ports<'_, impl StockGate, impl OrderStore + SkuStore, impl Sync>,
    sku_id: &str,
    now: DateTime<Utc>,
) -> Result<PublishedSku, Error> {
    let sku = ports.ledger.get_sku(sku_id).await?.ok_or(Error::NotFound("sku"))?;
    let first_time = sku.published_at.is_none();
    // Marked before Redis is touched: once a unit may have sold, the SKU
    // must say so, or a later rebuild would not know to consult the ledger.
    // Every publish marks it, which also lists it on sale again after the
    // timeout job took a finished sale off.
    let sku = ports.ledger.mark_published(sku_id, now).await?;
    let remaining = load_terms(ports, &sku, first_time, now).await?;
    Ok(PublishedSku { sku, remaining })
}

/// Puts a SKU's terms into Redis; on its first publish no order can exist,
/// later only Redis's own state or the ledger may say what is sold.
pub(crate) async fn load_terms(
    ports: Ports<'_, impl StockGate, impl OrderStore, impl Sync>,
    sku: &Sku,
    first_time: bool,
    now: DateTime<Utc>,
) -> Result<i64, Error> {
    let no_orders_yet: &[Order] = &[];
    let mut outcome = ports
        .gate
        .publish(sku, first_time.then_some(no_orders_yet), now)
        .await?;
    if outcome == PublishOutcome::NeedsLedger {
        // Redis lost the SKU (or an earlier publish died half-way). A grab
        // that reserved before the loss may still be writing its order, and
        // the listing lags the table: wait until both surely show, or the
        // rebuild would sell that order's unit again. Grabs meanwhile find
        // no SKU and answer 503.
        tokio::time::sleep(ports.ledger.listing_lag()).await;
        let ledger = ports.ledger.live_orders_of_sku(&sku.id).await?;
        tracing::warn!(sku_id = %sku.id, live = ledger.len(), "rebuilding SKU in Redis from the ledger");
        outcome = ports.gate.publish(sku, Some(&ledger), now).await?;
    }
    match outcome {
        PublishOutcome::Published { remaining } | PublishOutcome::Republished { remaining } => Ok(remaining),
        PublishOutcome::BelowSold { sold } => Err(Error::Conflict(format!(
            "seckill_num {} is below the {sold} units already sold",
            sku.fields.seckill_num
        ))),
        PublishOutcome::NeedsLedger => Err(Error::unavailable("Redis refused the ledger rebuild")),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PublishedSku {
    #[serde(flatten)]
    pub sku: Sku,
    pub remaining: i64,
}

/// A sale's books as the gate and the ledger keep them, side by side, for
/// the back office and an audit (`GET /admin/skus/{id}/stats`): after the
/// dust settles, `seckill_num - remaining` units are sold and exactly that
/// many orders are live, none two for one shopper.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SaleStats {
    pub sku_id: String,
    pub seckill_num: i64,
    /// Units the gate has left; `None` if it does not have the SKU.
    pub remaining: Option<i64>,
    /// Every order of the SKU, by status.
    pub orders: BTreeMap<&'static str, u32>,
    /// Orders holding a unit (every status but `CANCELLED`).
    pub live_orders: u32,
    /// Shoppers with more than one live order of the SKU.
    pub shoppers_with_two_live_orders: u32,
}

pub async fn sale_stats(
    ports: Ports<'_, impl StockGate, impl OrderStore + SkuStore, impl Sync>,
    sku_id: &str,
) -> Result<SaleStats, Error> {
    let sku = ports.ledger.get_sku(sku_id).await?.ok_or(Error::NotFound("sku"))?;
    let remaining = ports.gate.remaining(sku_id).await?;
    let mut orders = BTreeMap::new();
    let mut live_by_shopper: BTreeMap<String, u32> = BTreeMap::new();
    for order in ports.ledger.orders_of_sku(sku_id).await? {
        *orders.entry(order.status.as_str()).or_default() += 1;
        if order.status.holds_unit() {
            *live_by_shopper.entry(order.username).or_default() += 1;
        }
    }
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    Ok(SaleStats {
        sku_id: sku.id,
        seckill_num: sku.fields.seckill_num,
        remaining,
        orders,
        live_orders: live_by_shopper.values().sum(),
        shoppers_with_two_live_orders: count(live_by_shopper.values().filter(|&&n| n > 1).count()),
    })
}

/// One shopper's attempt to buy one unit.
pub async fn grab(
    ports: Ports<'_, impl StockGate, impl OrderStore + SkuStore, impl Sync>,
    username: &str,
    sku_id: &str,
    now: DateTime<Utc>,
) -> Result<Order, Error> {
    let order_id = ids::fresh();
    let reservation = match ports.gate.reserve(sku_id, username, &order_id, now).await {
        Ok(reservation) => reservation,
        Err(error) => {
            // The script may have run and only its reply been lost. No order
            // with this fresh id exists or ever will, so giving back whatever
            // it may hold is safe; if Redis is gone, the sweep does it later.
            if let Err(release_error) = ports.gate.release(sku_id, username, &order_id).await {
                tracing::warn!(order_id, %release_error, "release after a failed reserve failed; the sweep will settle it");
            }
            return Err(error.into());
        }
    };
    let unit = match reservation {
        Reservation::Reserved(unit) => unit,
        Reservation::NotPublished => return Err(not_on_sale(ports.ledger, sku_id, now).await),
        Reservation::NotStarted => return Err(Error::NotStarted),
        Reservation::Ended => return Err(Error::Ended),
        Reservation::AlreadyPurchased => return Err(Error::AlreadyPurchased),
        Reservation::SoldOut => return Err(Error::SoldOut),
    };
    let order = Order::pending(order_id, sku_id, &unit, username, now);
    match ports.ledger.insert_order(&order).await {
        Ok(()) => Ok(order),
        Err(error) => {
            tracing::warn!(order_id = %order.id, %error, "order write failed after reservation");
            abandon(ports, order).await
        }
    }
}

/// Redis does not know the SKU: it does not exist or was never published
/// (404), its sale is over and its keys expired (ENDED), or Redis lost its
/// data and the SKU must be rebuilt from the ledger (503 until the
/// reconciliation job or a re-publish does it).
async fn not_on_sale(skus: &impl SkuStore, sku_id: &str, now: DateTime<Utc>) -> Error {
    match skus.get_sku(sku_id).await {
        Ok(Some(sku)) if sku.published_at.is_some() && sku.fields.seckill_end <= now => Error::Ended,
        Ok(Some(sku)) if sku.published_at.is_some() => {
            tracing::error!(
                sku_id,
                "published SKU missing from Redis; re-publish it to rebuild from the ledger"
            );
            Error::unavailable("sku missing from Redis")
        }
        Ok(_) => Error::NotFound("sku"),
        Err(error) => error.into(),
    }
}

/// The order write failed, perhaps only apparently (a timeout after the
/// write landed). Settle it now if the ledger can prove which it was;
/// otherwise the hold stays and the timeout sweep settles it.
async fn abandon(ports: Ports<'_, impl StockGate, impl OrderStore, impl Sync>, order: Order) -> Result<Order, Error> {
    let tombstone = order.closed(CloseReason::OrderWriteFailed, order.create_time);
    match ports.ledger.insert_order(&tombstone).await {
        Ok(()) => {
            if let Err(error) = ports.gate.release(&order.sku_id, &order.username, &order.id).await {
                tracing::warn!(order_id = %order.id, %error, "release failed; the sweep will retry");
            }
            Err(Error::unavailable("order write failed"))
        }
        Err(PortError::ConditionFailed) => match ports.ledger.get_order(&order.id).await? {
            Some(stored) if stored.status == OrderStatus::PendingPayment => Ok(stored),
            _ => Err(Error::unavailable("order write failed")),
        },
        Err(error) => Err(error.into()),
    }
}

/// An order as its owner (or an operator) may see it; anyone else gets the
/// same 404 as for a missing order, so ids cannot be probed.
pub async fn visible_order(orders: &impl OrderStore, order_id: &str, viewer: Viewer<'_>) -> Result<Order, Error> {
    match orders.get_order(order_id).await? {
        Some(order) if viewer.may_see(&order) => Ok(order),
        _ => Err(Error::NotFound("order")),
    }
}

/// A shopper's orders, newest first.
pub async fn orders_of(
    orders: &impl OrderStore,
    username: &str,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<Order>, Error> {
    Ok(orders.orders_of_user(username, limit, cursor).await?)
}

/// The back office's orders in one status, newest first.
pub async fn orders_in(
    orders: &impl OrderStore,
    status: OrderStatus,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<Order>, Error> {
    Ok(orders.orders_with_status(status, limit, cursor).await?)
}

#[derive(Debug, Clone, Copy)]
pub enum Viewer<'a> {
    Shopper(&'a str),
    Operator,
}

impl Viewer<'_> {
    fn may_see(self, order: &Order) -> bool {
        match self {
            Viewer::Shopper(username) => order.username == username,
            Viewer::Operator => true,
        }
    }
}

/// The owner gives up an unpaid order; its unit goes back on sale.
pub async fn cancel(
    ports: Ports<'_, impl StockGate, impl OrderStore, impl Sync>,
    username: &str,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<Order, Error> {
    let orders = ports.ledger;
    // A write that got in first (a payment attempt recorded or closed, a
    // payment) is read again: still unpaid, the cancel goes on.
    for _ in 0..WRITE_ATTEMPTS {
        let order = visible_order(orders, order_id, Viewer::Shopper(username)).await?;
        match order.status {
            OrderStatus::Cancelled => return Ok(order),
            OrderStatus::PendingPayment => {}
            _ => {
                return Err(Error::InvalidState("only unpaid orders can be cancelled".into()));
            }
        }
        let cancelled = order.closed(CloseReason::CancelledByUser, now);
        match orders.replace_order(&cancelled, &order).await {
            Ok(()) => {
                release_or_leave(ports.gate, &cancelled).await;
                return Ok(cancelled);
            }
            Err(PortError::ConditionFailed) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(Error::Conflict(
        "the order kept changing while cancelling it; retry".into(),
    ))
}

async fn release_or_leave(gate: &impl StockGate, order: &Order) {
    if let Err(error) = gate.release(&order.sku_id, &order.username, &order.id).await {
        tracing::warn!(order_id = %order.id, %error, "release failed; the sweep will retry");
    }
}

/// A step along the fulfilment path: PAID → SHIPPED (operator) and
/// SHIPPED → COMPLETED (owner).
pub async fn advance(
    orders: &impl OrderStore,
    order_id: &str,
    viewer: Viewer<'_>,
    step: Fulfilment,
    now: DateTime<Utc>,
) -> Result<Order, Error> {
    let order = visible_order(orders, order_id, viewer).await?;
    let (from, to) = step.transition();
    if order.status == to {
        return Ok(order);
    }
    if order.status != from {
        return Err(Error::InvalidState(format!(
            "a {} order cannot become {}",
            order.status.as_str(),
            to.as_str()
        )));
    }
    let mut next = Order {
        status: to,
        ..order.next(now)
    };
    match step {
        Fulfilment::Ship => next.consign_time = Some(now),
        Fulfilment::Receive => next.end_time = Some(now),
    }
    match orders.replace_order(&next, &order).await {
        Ok(()) => Ok(next),
        Err(PortError::ConditionFailed) => Err(Error::Conflict("the order changed concurrently; retry".into())),
        Err(error) => Err(error.into()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fulfilment {
    Ship,
    Receive,
}

impl Fulfilment {
    fn transition(self) -> (OrderStatus, OrderStatus) {
        match self {
            Fulfilment::Ship => (OrderStatus::Paid, OrderStatus::Shipped),
            Fulfilment::Receive => (OrderStatus::Shipped, OrderStatus::Completed),
        }
    }
}

/// What one run of the timeout sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Unpaid orders past their deadline, now cancelled.
    pub timed_out: u32,
    /// Holds without an order (the writer died or failed), now tombstoned.
    pub abandoned: u32,
    /// Holds of orders already cancelled, now given back.
    pub released: u32,
    /// Holds of orders already paid, now confirmed.
    pub confirmed: u32,
    /// Holds left for the next run because a backend failed.
    pub failed: u32,
    /// SKUs left for the next run because their part of the gate (their
    /// master) did not answer; the others are settled all the same.
    pub skus_failed: u32,
    /// SKUs whose sale is over and fully settled.
    pub retired: u32,
}

/// The order-timeout job: settles every hold whose pay deadline has passed,
/// and repairs what a dead caller left half done on a sharded SKU. Each
/// hold is settled by what the ledger says of its order, so running this
/// twice, or beside the flows above, changes nothing twice.
pub async fn sweep(
    ports: Ports<'_, impl StockGate, impl OrderStore, impl Sync>,
    now: DateTime<Utc>,
    batch: usize,
) -> Result<SweepReport, Error> {
    let mut report = SweepReport::default();
    for sku_id in ports.gate.live_skus().await? {
        // Each SKU's keys live on one master (its shards on several): one
        // that does not answer leaves its SKU for the next run, not the rest.
        if let Err(error) = sweep_sku(ports, &sku_id, now, batch, &mut report).await {
            tracing::warn!(sku_id, %error, "could not sweep SKU; the next run tries again");
            report.skus_failed += 1;
        }
    }
    Ok(report)
}

async fn sweep_sku(
    ports: Ports<'_, impl StockGate, impl OrderStore, impl Sync>,
    sku_id: &str,
    now: DateTime<Utc>,
    batch: usize,
    report: &mut SweepReport,
) -> Result<(), Error> {
    let gate = ports.gate;
    // A split or a transfer of units between shards that a dead caller
    // left half done is finished first, so every hold is where the flows
    // look for it.
    gate.repair(sku_id, now).await?;
    for hold in gate.overdue(sku_id, now, batch).await? {
        match settle(ports, &hold, now).await {
            Ok(Settled::TimedOut) => report.timed_out += 1,
            Ok(Settled::Abandoned) => report.abandoned += 1,
            Ok(Settled::Released) => report.released += 1,
            Ok(Settled::Confirmed) => report.confirmed += 1,
            Err(error) => {
                tracing::warn!(order_id = %hold.order_id, %error, "could not settle hold");
                report.failed += 1;
            }
        }
    }
    if gate.retire_if_finished(sku_id, now).await? {
        report.retired += 1;
    }
    Ok(())
}

/// What settling one overdue hold did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    TimedOut,
    Abandoned,
    Released,
    Confirmed,
}

/// Settles one overdue hold by what the ledger says of its order.
pub async fn settle(
    ports: Ports<'_, impl StockGate, impl OrderStore, impl Sync>,
    hold: &Hold,
    now: DateTime<Utc>,
) -> Result<Settled, Error> {
    let (gate, orders) = (ports.gate, ports.ledger);
    // Each pass either settles the hold or lost a race to another writer of
    // the order, whose write is then seen by the next pass.
    for _ in 0..WRITE_ATTEMPTS {
        let (next, current, settled) = match orders.get_order(&hold.order_id).await? {
            None => (tombstone(hold, now), None, Settled::Abandoned),
            Some(order) => match order.status {
                OrderStatus::PendingPayment if order.pay_deadline > now => {
                    return Err(Error::InvalidState(format!(
                        "order {} is held past a deadline it has not reached",
                        order.id
                    )));
                }
                OrderStatus::PendingPayment => (
                    order.closed(CloseReason::PaymentTimeout, now),
                    Some(order),
                    Settled::TimedOut,
                ),
                OrderStatus::Cancelled => {
                    gate.release(&hold.sku_id, &hold.username, &hold.order_id).await?;
                    return Ok(Settled::Released);
                }
                OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Completed => {
                    gate.confirm(&hold.sku_id, &hold.username, &hold.order_id).await?;
                    return Ok(Settled::Confirmed);
                }
            },
        };
        let written = match &current {
            None => orders.insert_order(&next).await,
            Some(current) => orders.replace_order(&next, current).await,
        };
        match written {
            Ok(()) => {
                gate.release(&hold.sku_id, &hold.username, &hold.order_id).await?;
                return Ok(settled);
            }
            Err(PortError::ConditionFailed) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(Error::Conflict(format!(
        "order {} kept changing while settling it",
        hold.order_id
    )))
}

/// The record that closes a hold whose order was never written: it makes
/// any late write of that order fail, so releasing the unit is safe.
fn tombstone(hold: &Hold, now: DateTime<Utc>) -> Order {
    let unit = ReservedUnit {
        pay_deadline: hold.pay_deadline,
        price: hold.price,
        name: hold.name.clone(),
    };
    Order::pending(hold.order_id.clone(), &hold.sku_id, &unit, &hold.username, now)
        .closed(CloseReason::OrderWriteFailed, now)
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::Duration;

    use super::*;
    use crate::{
        domain::payments::pay,
        memory::{Fault, Memory, Op},
        model::{SkuFields, SkuStatus},
        ports::{HoldOutcome, StockGate},
    };

    const PAY_TIMEOUT: i64 = 900;

    pub(crate) fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-11T00:00:10Z").unwrap().to_utc()
    }

    /// A SKU of `units` on sale from ten seconds ago for an hour, published.
    pub(crate) async fn on_sale(memory: &Memory, units: i64) -> String {
        on_sale_as(memory, "sku-1", units).await
    }

    /// [`on_sale`] under the id `sku_id`.
    pub(crate) async fn on_sale_as(memory: &Memory, sku_id: &str, units: i64) -> String {
        let window = (now() - Duration::seconds(10), now() + Duration::hours(1));
        let sku = Sku {
            id: sku_id.into(),
            fields: SkuFields::new("Phone", (10_000, 990), units, window),
            status: SkuStatus::Normal,
            sale_num: 0,
            comment_num: 0,
            create_time: now(),
            update_time: now(),
            published_at: None,
            shards: None,
        };
        memory.ledger.put_sku(&sku).await.unwrap();
        publish(memory.ports(), &sku.id, now()).await.unwrap();
        sku.id
    }

    pub(crate) async fn remaining(memory: &Memory, sku_id: &str) -> i64 {
        memory.gate.remaining(sku_id).await.unwrap().unwrap()
    }

    pub(crate) async fn stored(memory: &Memory, order_id: &str) -> Order {
        memory.ledger.get_order(order_id).await.unwrap().unwrap()
    }

    pub(crate) async fn holds(memory: &Memory, sku_id: &str) -> usize {
        let forever = now() + Duration::days(400);
        memory.gate.overdue(sku_id, forever, 1000).await.unwrap().len()
    }

    pub(crate) fn after_deadline() -> DateTime<Utc> {
        now() + Duration::seconds(PAY_TIMEOUT + 1)
    }

    // grab

    #[tokio::test]
    async fn a_grab_takes_a_unit_and_writes_a_pending_order() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 2).await;
        let order = grab(memory.ports(), "alice", &sku, now()).await.unwrap();
        assert_eq!(order.status, OrderStatus::PendingPayment);
        assert_eq!(order.pay_deadline, now() + Duration::seconds(PAY_TIMEOUT));
        assert_eq!(stored(&memory, &order.id).await, order);
        assert_eq!(remaining(&memory, &sku).await, 1);
    }

    #[tokio::test]
    async fn a_shopper_gets_one_unit_and_the_last_unit_sells_once() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 1).await;
        grab(memory.ports(), "alice", &sku, now()).await.unwrap();
        let again = grab(memory.ports(), "alice", &sku, now()).await;
        assert!(matches!(again, Err(Error::AlreadyPurchased)), "{again:?}");
        let late = grab(memory.ports(), "bob", &sku, now()).await;
        assert!(matches!(late, Err(Error::SoldOut)), "{late:?}");
    }

    #[tokio::test]
    async fn a_grab_outside_the_window_is_refused() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 1).await;
        let early = grab(memory.ports(), "alice", &sku, now() - Duration::minutes(1)).await;
        assert!(matches!(early, Err(Error::NotStarted)), "{early:?}");
        let late = grab(memory.ports(), "alice", &sku, now() + Duration::hours(2)).await;
        assert!(matches!(late, Err(Error::Ended)), "{late:?}");
    }

    #[tokio::test]
    async fn an_unknown_sku_is_not_found_and_a_published_one_the_gate_lost_is_unavailable() {
        let memory = Memory::default();
        let unknown = grab(memory.ports(), "alice", "nope", now()).await;
        assert!(matches!(unknown, Err(Error::NotFound(_))), "{unknown:?}");
        let sku = on_sale(&memory, 1).await;
        memory.gate.lose_sku(&sku);
        let lost = grab(memory.ports(), "alice", &sku, now()).await;
        assert!(matches!(lost, Err(Error::Unavailable(_))), "{lost:?}");
    }

    #[tokio::test]
    async fn a_sku_whose_keys_expired_after_its_sale_reads_ended() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 1).await;
        memory.gate.lose_sku(&sku);
        let expired = grab(memory.ports(), "alice", &sku, now() + Duration::days(2)).await;
        assert!(matches!(expired, Err(Error::Ended)), "{expired:?}");
    }

    #[tokio::test]
    async fn a_reservation_whose_reply_is_lost_gives_its_unit_back() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 1).await;
        memory.gate.faults.inject(Op::Grab, 1, Fault::LoseReply);
        let lost = grab(memory.ports(), "alice", &sku, now()).await;
        assert!(matches!(lost, Err(Error::Unavailable(_))), "{lost:?}");
        assert_eq!(remaining(&memory, &sku).await, 1);
        grab(memory.ports(), "alice", &sku, now()).await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_order_write_is_tombstoned_and_its_unit_released() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 1).await;
        memory.ledger.faults.inject(Op::InsertOrder, 1, Fault::Fail);
        let failed = grab(memory.ports(), "alice", &sku, now()).await;
        assert!(matches!(failed, Err(Error::Unavailable(_))), "{failed:?}");
        assert_eq!(remaining(&memory, &sku).await, 1);
        let live = memory.ledger.live_orders_of_sku(&sku).await.unwrap();
        assert!(live.is_empty(), "{live:?}");
        grab(memory.ports(), "alice", &sku, now()).await.unwrap();
    }

    #[tokio::test]
    async fn an_order_write_whose_reply_was_lost_still_sells_the_unit() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 1).await;
        memory.ledger.faults.inject(Op::InsertOrder, 1, Fault::LoseReply);
        let order = grab(memory.ports(), "alice", &sku, now()).await.unwrap();
        assert_eq!(stored(&memory, &order.id).await.status, OrderStatus::PendingPayment);
        assert_eq!(remaining(&memory, &sku).await, 0);
    }

    #[tokio::test]
    async fn with_the_ledger_down_the_hold_waits_for_the_sweep() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 1).await;
        memory.ledger.faults.inject(Op::InsertOrder, 1, Fault::Fail);
        memory.ledger.faults.inject(Op::InsertOrder, 2, Fault::Fail);
        let failed = grab(memory.ports(), "alice", &sku, now()).await;
        assert!(matches!(failed, Err(Error::Unavailable(_))), "{failed:?}");
        assert_eq!((remaining(&memory, &sku).await, holds(&memory, &sku).await), (0, 1));

        let report = sweep(memory.ports(), after_deadline(), 100).await.unwrap();
        assert_eq!(report.abandoned, 1, "{report:?}");
        assert_eq!(remaining(&memory, &sku).await, 1);
    }

    // pay

    pub(crate) async fn pending(memory: &Memory, units: i64) -> (String, Order) {
        let sku = on_sale(memory, units).await;
        let order = grab(memory.ports(), "alice", &sku, now()).await.unwrap();
        (sku, order)
    }

    // cancel

    #[tokio::test]
    async fn cancelling_gives_the_unit_back_once() {
        let memory = Memory::default();
        let (sku, order) = pending(&memory, 1).await;
        let cancelled = cancel(memory.ports(), "alice", &order.id, now()).await.unwrap();
        assert_eq!(cancelled.close_reason, Some(CloseReason::CancelledByUser));
        let again = cancel(memory.ports(), "alice", &order.id, now()).await.unwrap();
        assert_eq!(again, cancelled);
        assert_eq!(remaining(&memory, &sku).await, 1);
        grab(memory.ports(), "alice", &sku, now()).await.unwrap();
    }

    #[tokio::test]
    async fn a_paid_order_cannot_be_cancelled_even_when_the_payment_wins_the_race() {
        let memory = Memory::default();
        let (sku, order) = pending(&memory, 1).await;
        let pay_first = memory.ledger.other_writer();
        let id = order.id.clone();
        memory.ledger.faults.before(Op::ReplaceOrder, 1, move || {
            pay_first.change_order(&id, |o| o.status = OrderStatus::Paid)
        });
        let raced = cancel(memory.ports(), "alice", &order.id, now()).await;
        assert!(matches!(raced, Err(Error::InvalidState(_))), "{raced:?}");
        let paid = cancel(memory.ports(), "alice", &order.id, now()).await;
        assert!(matches!(paid, Err(Error::InvalidState(_))), "{paid:?}");
        assert_eq!(remaining(&memory, &sku).await, 0);
    }

    #[tokio::test]
    async fn a_cancel_that_loses_to_a_payment_attempt_still_cancels_the_unpaid_order() {
        let memory = Memory::default();
        let (sku, order) = pending(&memory, 1).await;
        let attempt_first = memory.ledger.other_writer();
        let id = order.id.clone();
        memory.ledger.faults.before(Op::ReplaceOrder, 1, move || {
            attempt_first.change_order(&id, |o| o.payment_started = Some(o.update_time))
        });
        let cancelled = cancel(memory.ports(), "alice", &order.id, now()).await.unwrap();
        assert_eq!(cancelled.status, OrderStatus::Cancelled);
        assert_eq!(remaining(&memory, &sku).await, 1);
    }

    #[tokio::test]
    async fn a_cancel_whose_release_failed_is_released_by_the_sweep() {
        let memory = Memory::default();
        let (sku, order) = pending(&memory, 1).await;
        memory.gate.faults.inject(Op::Release, 1, Fault::Fail);
        cancel(memory.ports(), "alice", &order.id, now()).await.unwrap();
        assert_eq!(remaining(&memory, &sku).await, 0);
        let report = sweep(memory.ports(), after_deadline(), 100).await.unwrap();
        assert_eq!(report.released, 1, "{report:?}");
        assert_eq!(remaining(&memory, &sku).await, 1);
    }

    // the timeout sweep and settle

    #[tokio::test]
    async fn the_sweep_times_out_only_orders_past_their_deadline() {
        let memory = Memory::default();
        let (sku, order) = pending(&memory, 1).await;
        let early = sweep(memory.ports(), now() + Duration::seconds(PAY_TIMEOUT - 1), 100)
            .await
            .unwrap();
        assert_eq!(early, SweepReport::default());
        let report = sweep(memory.ports(), after_deadline(), 100).await.unwrap();
        assert_eq!(report.timed_out, 1, "{report:?}");
        assert_eq!(
            stored(&memory, &order.id).await.close_reason,
            Some(CloseReason::PaymentTimeout)
        );
        assert_eq!(remaining(&memory, &sku).await, 1);
        let again = sweep(memory.ports(), after_deadline(), 100).await.unwrap();
        assert_eq!(again.timed_out + again.released, 0, "{again:?}");
    }

    #[tokio::test]
    async fn the_sweep_counts_a_hold_it_could_not_settle_and_goes_on() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 2).await;
        grab(memory.ports(), "alice", &sku, now()).await.unwrap();
        grab(memory.ports(), "bob", &sku, now()).await.unwrap();
        memory.ledger.faults.inject(Op::GetOrder, 1, Fault::Fail);
        let report = sweep(memory.ports(), after_deadline(), 100).await.unwrap();
        assert_eq!((report.timed_out, report.failed), (1, 1), "{report:?}");
        let next = sweep(memory.ports(), after_deadline(), 100).await.unwrap();
        assert_eq!(next.timed_out, 1, "{next:?}");
        assert_eq!(remaining(&memory, &sku).await, 2);
    }

    #[tokio::test]
    async fn a_sku_the_sweep_cannot_reach_does_not_stop_it_settling_the_next() {
        let memory = Memory::default();
        let down = on_sale_as(&memory, "sku-a", 1).await;
        let up = on_sale_as(&memory, "sku-b", 1).await;
        grab(memory.ports(), "alice", &down, now()).await.unwrap();
        grab(memory.ports(), "bob", &up, now()).await.unwrap();
        // The first SKU's master is down for the whole run.
        memory.gate.faults.inject(Op::Overdue, 1, Fault::Fail);
        let report = sweep(memory.ports(), after_deadline(), 100).await.unwrap();
        assert_eq!((report.timed_out, report.skus_failed), (1, 1), "{report:?}");
        assert_eq!(remaining(&memory, &up).await, 1);
        assert_eq!(remaining(&memory, &down).await, 0, "left for the next run");
    }

    #[tokio::test]
    async fn the_sweep_retires_a_sku_whose_sale_is_over_and_settled() {
        let memory = Memory::default();
        let (sku, _) = pending(&memory, 1).await;
        let long_after = now() + Duration::hours(2);
        let report = sweep(memory.ports(), long_after, 100).await.unwrap();
        assert_eq!((report.timed_out, report.retired), (1, 1), "{report:?}");
        assert!(!memory.gate.live_skus().await.unwrap().contains(&sku));
    }

    async fn overdue_hold(memory: &Memory, sku: &str) -> Hold {
        memory.gate.overdue(sku, after_deadline(), 10).await.unwrap().remove(0)
    }

    #[tokio::test]
    async fn settling_a_hold_without_an_order_tombstones_it_so_it_can_never_be_written() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 1).await;
        memory.gate.reserve(&sku, "ghost", "ghost-order", now()).await.unwrap();
        let hold = overdue_hold(&memory, &sku).await;
        assert_eq!(
            settle(memory.ports(), &hold, after_deadline()).await.unwrap(),
            Settled::Abandoned
        );
        let tombstone = stored(&memory, "ghost-order").await;
        assert_eq!(tombstone.close_reason, Some(CloseReason::OrderWriteFailed));
        assert!(memory.ledger.insert_order(&tombstone).await.is_err());
        assert_eq!(remaining(&memory, &sku).await, 1);
    }

    #[tokio::test]
    async fn settling_follows_what_the_ledger_says_of_the_order() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 2).await;
        let cancelled = grab(memory.ports(), "alice", &sku, now()).await.unwrap();
        let paid = grab(memory.ports(), "bob", &sku, now()).await.unwrap();
        let writer = memory.ledger.other_writer();
        writer.change_order(&cancelled.id, |o| o.status = OrderStatus::Cancelled);
        writer.change_order(&paid.id, |o| o.status = OrderStatus::Paid);
        for hold in memory.gate.overdue(&sku, after_deadline(), 10).await.unwrap() {
            let expected = if hold.order_id == paid.id {
                Settled::Confirmed
            } else {
                Settled::Released
            };
            assert_eq!(settle(memory.ports(), &hold, after_deadline()).await.unwrap(), expected);
        }
        assert_eq!((remaining(&memory, &sku).await, holds(&memory, &sku).await), (1, 0));
    }

    #[tokio::test]
    async fn settling_reads_the_order_again_when_it_changed_under_it() {
        let memory = Memory::default();
        let (sku, _) = pending(&memory, 1).await;
        let hold = overdue_hold(&memory, &sku).await;
        memory.ledger.faults.inject(Op::ReplaceOrder, 1, Fault::ConditionFailed);
        assert_eq!(
            settle(memory.ports(), &hold, after_deadline()).await.unwrap(),
            Settled::TimedOut
        );
        assert_eq!(remaining(&memory, &sku).await, 1);
    }

    #[tokio::test]
    async fn settling_gives_up_after_three_changes_and_leaves_the_hold() {
        let memory = Memory::default();
        let (sku, _) = pending(&memory, 1).await;
        let hold = overdue_hold(&memory, &sku).await;
        for nth in 1..=3 {
            memory
                .ledger
                .faults
                .inject(Op::ReplaceOrder, nth, Fault::ConditionFailed);
        }
        let stuck = settle(memory.ports(), &hold, after_deadline()).await;
        assert!(matches!(stuck, Err(Error::Conflict(_))), "{stuck:?}");
        assert_eq!(holds(&memory, &sku).await, 1, "left for the next run");
    }

    #[tokio::test]
    async fn a_hold_whose_order_is_not_yet_due_is_not_settled() {
        let memory = Memory::default();
        let (sku, order) = pending(&memory, 1).await;
        let mut hold = overdue_hold(&memory, &sku).await;
        hold.pay_deadline = now();
        let early = settle(memory.ports(), &hold, order.pay_deadline - Duration::seconds(1)).await;
        assert!(matches!(early, Err(Error::InvalidState(_))), "{early:?}");
    }

    // publish

    #[tokio::test]
    async fn republishing_moves_the_terms_but_never_resurrects_a_sold_unit() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 3).await;
        grab(memory.ports(), "alice", &sku, now()).await.unwrap();
        grab(memory.ports(), "bob", &sku, now()).await.unwrap();
        let mut record = memory.ledger.get_sku(&sku).await.unwrap().unwrap();
        record.fields.seckill_num = 5;
        memory.ledger.put_sku(&record).await.unwrap();
        assert_eq!(publish(memory.ports(), &sku, now()).await.unwrap().remaining, 3);
        record.fields.seckill_num = 1;
        memory.ledger.put_sku(&record).await.unwrap();
        let below = publish(memory.ports(), &sku, now()).await;
        assert!(matches!(below, Err(Error::Conflict(_))), "{below:?}");
        assert_eq!(remaining(&memory, &sku).await, 3);
    }

    #[tokio::test]
    async fn publishing_after_the_gate_lost_the_sku_rebuilds_it_from_the_ledger() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 3).await;
        let unpaid = grab(memory.ports(), "alice", &sku, now()).await.unwrap();
        let paid = grab(memory.ports(), "bob", &sku, now()).await.unwrap();
        pay(memory.ports(), "bob", &paid.id, None, now()).await.unwrap();
        memory.gate.lose_sku(&sku);

        assert_eq!(publish(memory.ports(), &sku, now()).await.unwrap().remaining, 1);
        for buyer in ["alice", "bob"] {
            let again = grab(memory.ports(), buyer, &sku, now()).await;
            assert!(matches!(again, Err(Error::AlreadyPurchased)), "{buyer}: {again:?}");
        }
        let report = sweep(memory.ports(), after_deadline(), 100).await.unwrap();
        assert_eq!(report.timed_out, 1, "the unpaid hold is back: {report:?}");
        assert_eq!(stored(&memory, &unpaid.id).await.status, OrderStatus::Cancelled);
        assert_eq!(remaining(&memory, &sku).await, 2);
    }

    #[tokio::test]
    async fn publishing_an_unknown_sku_is_not_found_and_a_gate_failure_is_unavailable() {
        let memory = Memory::default();
        let missing = publish(memory.ports(), "nope", now()).await;
        assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
        let sku = on_sale(&memory, 1).await;
        memory.gate.faults.inject(Op::Publish, 1, Fault::Fail);
        let down = publish(memory.ports(), &sku, now()).await;
        assert!(matches!(down, Err(Error::Unavailable(_))), "{down:?}");
    }

    #[tokio::test]
    async fn release_and_confirm_act_once_per_order() {
        let memory = Memory::default();
        let (sku, order) = pending(&memory, 1).await;
        let gate = &memory.gate;
        assert_eq!(
            gate.release(&sku, &order.username, &order.id).await.unwrap(),
            HoldOutcome::Released
        );
        assert_eq!(
            gate.release(&sku, &order.username, &order.id).await.unwrap(),
            HoldOutcome::NotHeld
        );
        assert_eq!(
            gate.confirm(&sku, &order.username, &order.id).await.unwrap(),
            HoldOutcome::NotHeld
        );
        assert_eq!(remaining(&memory, &sku).await, 1);
    }
}
