//! The flash sale: publish → grab → pay / cancel / time out → ship → receive.
//!
//! Redis (the [`StockGate`]) decides who gets a unit; DynamoDB (the
//! [`OrderStore`]) is the ledger of what was sold. The two are kept in step
//! by one rule: a unit is given back to Redis only once the ledger proves
//! no live order holds it (a cancelled order, or a tombstone that makes the
//! order impossible to write later). Every flow below follows it, so a
//! crash or outage at any step can delay a unit's return but never sell it
//! twice.
//!
//! * here — publishing a SKU, and its sale's figures;
//! * `grab` — a shopper's grab: the gate's hold, then the order;
//! * `orders` — an order after its grab: read, cancelled, shipped, received;
//! * `timeout` — the sweep that settles holds past their deadline.

mod grab;
mod orders;
mod timeout;

pub use grab::grab;
pub use orders::{Fulfilment, Viewer, advance, cancel, orders_in, orders_of, visible_order};
pub use timeout::{Settled, SweepReport, settle, sweep};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    error::Error,
    model::{CloseReason, Order, OrderStatus, Sku},
    ports::{OrderStore, Ports, PublishOutcome, SkuStore, StockGate},
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

#[cfg(test)]
pub(crate) mod tests {
    pub(crate) use chrono::Duration;

    pub(crate) use super::*;
    pub(crate) use crate::{
        domain::payments::tests::pay_sandbox,
        memory::{Fault, Memory, Op},
        model::{SkuFields, SkuStatus},
        ports::{HoldOutcome, StockGate},
    };

    pub(crate) const PAY_TIMEOUT: i64 = 900;

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

    pub(crate) async fn pending(memory: &Memory, units: i64) -> (String, Order) {
        let sku = on_sale(memory, units).await;
        let order = grab(memory.ports(), "alice", &sku, now()).await.unwrap();
        (sku, order)
    }

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
        pay_sandbox(&memory, "bob", &paid.id, now()).await.unwrap();
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
