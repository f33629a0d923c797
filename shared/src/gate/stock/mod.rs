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

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::{
        domain::flash_sale::tests::now,
        gate::scripts::StockScripts,
        memory::MemoryGate,
        memory::{Fault, Op},
        model::{SkuFields, SkuStatus},
    };

    /// A SKU of `units` whose sale is on, recorded as split in `shards`.
    fn sku(units: i64, shards: Option<u32>) -> Sku {
        let window = (now() - Duration::minutes(1), now() + Duration::hours(1));
        Sku {
            id: "sku-1".into(),
            fields: SkuFields::new("Phone", (10_000, 990), units, window),
            status: SkuStatus::Seckill,
            sale_num: 0,
            comment_num: 0,
            create_time: now(),
            update_time: now(),
            published_at: Some(now()),
            shards,
        }
    }

    async fn published(units: i64) -> MemoryGate {
        let gate = MemoryGate::with_masters(3);
        StockGate::publish(&gate, &sku(units, None), Some(&[]), now())
            .await
            .unwrap();
        gate
    }

    #[tokio::test]
    async fn a_split_whose_caller_died_keeps_its_units_through_a_rebuild_and_a_republish() {
        for rebuild in [true, false] {
            let gate = published(6).await;
            // The splitter carved the shares and died before opening the
            // other shards.
            StockScripts::split(&gate, "sku-1", 3).await.unwrap();
            let split = sku(6, Some(3));
            let ledger = rebuild.then_some(&[][..]);
            StockGate::publish(&gate, &split, ledger, now()).await.unwrap();
            assert_eq!(
                StockGate::remaining(&gate, "sku-1").await.unwrap(),
                Some(6),
                "rebuild: {rebuild}"
            );
        }
    }

    #[tokio::test]
    async fn two_rebuilds_racing_after_the_cache_lost_a_split_sku_keep_every_unit() {
        let gate = published(6).await;
        StockGate::split(&gate, "sku-1", 3).await.unwrap();
        gate.wipe();
        // A second rebuilder runs whole between the first's shard loads.
        let other = gate.instance();
        gate.faults.before(Op::Publish, 2, move || {
            let split = sku(6, Some(3));
            futures::executor::block_on(StockGate::publish(&other, &split, Some(&[]), now())).unwrap();
        });
        StockGate::publish(&gate, &sku(6, Some(3)), Some(&[]), now())
            .await
            .unwrap();
        assert_eq!(StockGate::remaining(&gate, "sku-1").await.unwrap(), Some(6));
        assert_eq!(layout_now(&gate, "sku-1").await.unwrap(), 3, "split as the ledger says");
    }

    #[tokio::test]
    async fn a_rebuild_never_takes_a_shard_another_rebuild_opened_for_lost() {
        let gate = published(6).await;
        StockGate::split(&gate, "sku-1", 3).await.unwrap();
        gate.wipe();
        // Between the first rebuild's reads of the shards, a second one
        // loads the SKU whole and dies splitting it, shard 1 open and
        // shard 2 not yet: shard 2's share is on the first shard's split
        // record alone.
        let (other, faults) = (gate.instance(), gate.faults.clone());
        gate.faults.before(Op::Stocks, 2, move || {
            faults.inject(Op::Publish, 3, Fault::Fail);
            let split = sku(6, Some(3));
            let died = futures::executor::block_on(StockGate::publish(&other, &split, Some(&[]), now()));
            assert!(died.is_err(), "{died:?}");
        });
        StockGate::publish(&gate, &sku(6, Some(3)), Some(&[]), now())
            .await
            .unwrap();
        assert_eq!(StockGate::remaining(&gate, "sku-1").await.unwrap(), Some(6));
        assert_eq!(layout_now(&gate, "sku-1").await.unwrap(), 3, "split as the ledger says");
    }

    /// A shopper whose home is shard `home` of 3, told apart by `tag`.
    fn homed(home: u32, tag: &str) -> String {
        (0..)
            .map(|n| format!("{tag}-{n}"))
            .find(|name| crate::gate::shards::home(name, 3) == home)
            .expect("some name lands on each shard")
    }

    /// The SKU split in 3 with `units`, and an order of `username` the
    /// gate then forgot (a failover to a replica that missed it).
    async fn split_with_a_forgotten_order(units: i64, username: &str) -> (MemoryGate, Order) {
        let gate = published(units).await;
        StockGate::split(&gate, "sku-1", 3).await.unwrap();
        let order_id = "order-1";
        let reserved = StockGate::reserve(&gate, "sku-1", username, order_id, now())
            .await
            .unwrap();
        let crate::ports::Reservation::Reserved(unit) = reserved else {
            panic!("{reserved:?}");
        };
        gate.forget("sku-1", order_id, username);
        (gate, Order::pending(order_id.into(), "sku-1", &unit, username, now()))
    }

    #[tokio::test]
    async fn a_restore_short_on_one_shard_borrows_and_reports_no_oversell() {
        let (gate, order) = split_with_a_forgotten_order(6, &homed(1, "forgotten")).await;
        let home = Shard::of("sku-1", 1, 3);
        // The forgotten order's home shard sold what it had since.
        let stock = gate.stocks(std::slice::from_ref(&home)).await.unwrap()[0].unwrap();
        for i in 0..stock {
            let (name, id) = (homed(1, &format!("other{i}")), format!("o{i}"));
            let reply = gate
                .grab(&home, &name, &id, crate::ts::millis(&now()), 3, None)
                .await
                .unwrap();
            assert!(
                matches!(reply, crate::gate::scripts::GrabReply::Reserved { .. }),
                "{reply:?}"
            );
        }
        let restored = StockGate::restore(&gate, "sku-1", &[order], now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(restored.orders.len(), 1);
        assert!(restored.oversold.is_empty(), "a unit was lent to it: {restored:?}");
    }

    #[tokio::test]
    async fn a_restore_routed_by_a_layout_a_split_changed_is_refused() {
        let shopper = homed(2, "forgotten");
        let (gate, order) = split_with_a_forgotten_order(6, &shopper).await;
        let first = Shard::first("sku-1");
        let orders = [(
            order.username.as_str(),
            order.id.as_str(),
            crate::ts::millis(&order.pay_deadline),
        )];
        let stale = StockScripts::restore(&gate, &first, &orders, 1).await.unwrap();
        assert_eq!(stale, crate::gate::scripts::RestoreReply::Resharded(3));
        // Routed afresh, the order is held again on its shopper's home shard,
        // where a second grab of theirs is refused.
        StockGate::restore(&gate, "sku-1", std::slice::from_ref(&order), now())
            .await
            .unwrap();
        let again = StockGate::reserve(&gate, "sku-1", &shopper, "order-2", now())
            .await
            .unwrap();
        assert_eq!(again, crate::ports::Reservation::AlreadyPurchased);
    }

    #[tokio::test]
    async fn a_borrower_gets_a_unit_of_its_loan_however_fast_others_buy_and_sold_out_means_none_left() {
        let gate = published(90).await;
        StockGate::split(&gate, "sku-1", 3).await.unwrap();
        let (home, lender) = (Shard::of("sku-1", 1, 3), Shard::of("sku-1", 2, 3));
        // The borrower's home shard and the first shard sell out; whatever
        // reaches the home shard is bought by others before the borrower's
        // next grab there.
        gate.sell_off(&home);
        gate.sell_off(&Shard::first("sku-1"));
        for nth in 1..=20 {
            let others = gate.instance();
            let home = home.clone();
            gate.faults.before(Op::Grab, nth, move || others.sell_off(&home));
        }
        let reserved = StockGate::reserve(&gate, "sku-1", &homed(1, "borrower"), "o1", now())
            .await
            .unwrap();
        assert!(
            matches!(reserved, crate::ports::Reservation::Reserved(_)),
            "{reserved:?}"
        );
        // Sold out only once no shard has a unit left.
        while gate.stocks(std::slice::from_ref(&lender)).await.unwrap()[0] > Some(0) {
            gate.sell_off(&lender);
        }
        let last = StockGate::reserve(&gate, "sku-1", &homed(1, "last"), "o2", now())
            .await
            .unwrap();
        assert_eq!(last, crate::ports::Reservation::SoldOut);
    }
}
