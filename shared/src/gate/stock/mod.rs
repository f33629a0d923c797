//! [`StockGate`] for any host of the stock scripts ([`StockScripts`]):
//! the protocol that keeps a SKU's stock, whole or split over shards, one
//! script call at a time. Redis and the in-memory gate both run it, so
//! the tests, the simulation and production walk the same steps.
//!
//! * `routing` — a shopper's grab, release and confirm on their home
//!   shard, routed again when the layout changed;
//! * `lending` — units lent between shards, so a split SKU sells out
//!   completely, and transfers a dead caller left undelivered;
//! * `publish` — publishing, re-publishing and rebuilding from the ledger;
//! * `splitting` — splitting a hot SKU, and finishing a split a dead
//!   caller began;
//! * `recovery` — what the jobs read and repair: overdue holds, orders the
//!   gate forgot, retiring a settled sale.

mod lending;
mod publish;
mod recovery;
mod routing;
mod splitting;

use chrono::{DateTime, Utc};

use super::scripts::{Shard, StockScripts};
use crate::{
    model::{Order, Sku},
    ports::{Hold, HoldOutcome, PortResult, PublishOutcome, Reservation, Restored, StockGate},
    ts,
};

impl<S: StockScripts> StockGate for S {
    async fn publish(&self, sku: &Sku, ledger: Option<&[Order]>, now: DateTime<Utc>) -> PortResult<PublishOutcome> {
        publish::publish(self, sku, ledger, now).await
    }

    async fn reserve(
        &self,
        sku_id: &str,
        username: &str,
        order_id: &str,
        now: DateTime<Utc>,
    ) -> PortResult<Reservation> {
        routing::reserve(self, sku_id, username, order_id, now).await
    }

    async fn release(&self, sku_id: &str, username: &str, order_id: &str) -> PortResult<HoldOutcome> {
        routing::settle(self, sku_id, username, routing::HomeCall::Release { order_id }).await
    }

    async fn confirm(&self, sku_id: &str, username: &str, order_id: &str) -> PortResult<HoldOutcome> {
        routing::settle(self, sku_id, username, routing::HomeCall::Confirm { order_id }).await
    }

    async fn remaining(&self, sku_id: &str) -> PortResult<Option<i64>> {
        Ok(StockGate::remaining_of(self, &[sku_id]).await?.remove(0))
    }

    async fn remaining_of(&self, sku_ids: &[&str]) -> PortResult<Vec<Option<i64>>> {
        let firsts: Vec<Shard> = sku_ids.iter().map(|sku_id| Shard::first(sku_id)).collect();
        let stocks = self.stocks(&firsts).await?;
        let layouts = self.layouts_of(sku_ids).await?;
        let mut remaining = Vec::with_capacity(sku_ids.len());
        for ((sku_id, stock), shards) in sku_ids.iter().zip(stocks).zip(layouts) {
            let shards = shards.unwrap_or(1);
            self.layouts().set(sku_id, shards);
            if stock.is_none() || shards <= 1 {
                remaining.push(stock);
                continue;
            }
            let stocks = self.stocks(&Shard::all(sku_id, shards)).await?;
            remaining.push(Some(stocks.into_iter().flatten().sum()));
        }
        Ok(remaining)
    }

    async fn live_skus(&self) -> PortResult<Vec<String>> {
        StockScripts::live_skus(self).await
    }

    async fn overdue(&self, sku_id: &str, due: DateTime<Utc>, limit: usize) -> PortResult<Vec<Hold>> {
        recovery::overdue(self, sku_id, ts::millis(&due), limit).await
    }

    async fn retire_if_finished(&self, sku_id: &str, now: DateTime<Utc>) -> PortResult<bool> {
        recovery::retire(self, sku_id, ts::millis(&now)).await
    }

    async fn unknown_orders(&self, sku_id: &str, orders: &[Order]) -> PortResult<Option<Vec<String>>> {
        recovery::unknown_orders(self, sku_id, orders).await
    }

    async fn restore(&self, sku_id: &str, orders: &[Order], now: DateTime<Utc>) -> PortResult<Option<Restored>> {
        recovery::restore(self, sku_id, orders, now).await
    }

    async fn split(&self, sku_id: &str, shards: u32) -> PortResult<Option<u32>> {
        splitting::split(self, sku_id, shards).await
    }

    async fn repair(&self, sku_id: &str, now: DateTime<Utc>) -> PortResult<()> {
        splitting::repair(self, sku_id, ts::millis(&now)).await
    }

    async fn masters(&self) -> PortResult<u32> {
        StockScripts::masters(self).await
    }
}

/// How many shards the SKU has, as its first shard says now.
async fn layout_now(scripts: &impl StockScripts, sku_id: &str) -> PortResult<u32> {
    let shards = scripts.layouts_of(&[sku_id]).await?.remove(0).unwrap_or(1).max(1);
    scripts.layouts().set(sku_id, shards);
    Ok(shards)
}

/// The live orders among `orders` whose shopper's home is `shard` of
/// `shards`, as the scripts take them.
fn homed_at<'a>(orders: &'a [Order], shard: u32, shards: u32) -> Vec<super::scripts::LiveOrder<'a>> {
    orders
        .iter()
        .filter(|order| super::shards::home(&order.username, shards) == shard)
        .map(|order| (order.username.as_str(), order.id.as_str(), unpaid_deadline(order)))
        .collect()
}

/// The pay deadline (ms) of an unpaid order, 0 once paid.
fn unpaid_deadline(order: &Order) -> i64 {
    match order.status {
        crate::model::OrderStatus::PendingPayment => ts::millis(&order.pay_deadline),
        _ => 0,
    }
}
