//! The reconciliation job: repairs the gate toward the ledger after Redis
//! forgot writes (a failover to a replica that missed the last ones) or
//! everything (an empty cache). The ledger is the truth, and a repair only
//! ever makes the gate hold more (a buyer, a held unit, a whole SKU or
//! campaign), never less, so it cannot sell a unit or a packet twice.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use serde::Serialize;

use super::{flash_sale, red_packet};
use crate::{
    error::Error,
    model::{Campaign, OrderStatus},
    ports::{CampaignStore, OrderStore, PacketPool, Ports, RETIRE_AFTER_END_MS, SaleSearch, SkuStore, StockGate},
    validate,
};

/// How far past their end SKUs and campaigns are still checked: an unpaid
/// order may wait the longest pay timeout after the end, and the gate
/// keeps a retired sale's keys longer than this, so a finished sale is
/// never loaded again.
fn lookback() -> Duration {
    Duration::milliseconds(RETIRE_AFTER_END_MS) + Duration::seconds(validate::MAX_PAY_TIMEOUT_SECONDS)
}

/// SKUs checked at once.
const SKUS_IN_PARALLEL: usize = 16;

/// What one reconciliation run found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    pub skus_checked: u32,
    /// SKUs the gate had lost entirely, loaded again from the ledger.
    pub skus_rebuilt: u32,
    /// Live orders the gate had forgotten, held or bought again.
    pub orders_restored: u32,
    /// Of those, the ones whose unit the gate had sold again meanwhile.
    pub oversold: u32,
    /// SKUs whose sale is over and paid for, taken off the storefront's
    /// on-sale listing so that its reads never walk them again.
    pub taken_off_sale: u32,
    pub campaigns_checked: u32,
    /// Campaigns the gate had lost, loaded again from their stored split.
    pub campaigns_rebuilt: u32,
    /// SKUs or campaigns left for the next run because a backend failed.
    pub failed: u32,
}

pub async fn reconcile(
    ports: Ports<'_, impl StockGate + PacketPool, impl OrderStore + SkuStore + CampaignStore, impl Sync>,
    now: DateTime<Utc>,
) -> Result<ReconcileReport, Error> {
    let mut report = ReconcileReport::default();
    // Side by side: a rebuild waits out the ledger's listing lag, and after
    // an empty cache every live SKU needs one.
    let checks = futures::stream::iter(skus_to_check(ports, now).await?)
        .map(|sku_id| async move {
            let mut found = ReconcileReport::default();
            let checked = reconcile_sku(ports, &sku_id, now, &mut found).await;
            (sku_id, checked, found)
        })
        .buffer_unordered(SKUS_IN_PARALLEL)
        .collect::<Vec<_>>()
        .await;
    for (sku_id, checked, found) in checks {
        report.skus_checked += 1;
        report.skus_rebuilt += found.skus_rebuilt;
        report.orders_restored += found.orders_restored;
        report.oversold += found.oversold;
        report.taken_off_sale += found.taken_off_sale;
        if let Err(error) = checked {
            tracing::warn!(sku_id, %error, "could not reconcile SKU");
            report.failed += 1;
        }
    }
    for campaign in ports.ledger.campaigns_ending_after(now - lookback()).await? {
        report.campaigns_checked += 1;
        match reconcile_campaign(ports, &campaign).await {
            Ok(true) => report.campaigns_rebuilt += 1,
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(campaign_id = %campaign.id, %error, "could not reconcile campaign");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

/// The ledger's SKUs on sale or lately ended, and the gate's live ones.
async fn skus_to_check(
    ports: Ports<'_, impl StockGate, impl SkuStore, impl Sync>,
    now: DateTime<Utc>,
) -> Result<BTreeSet<String>, Error> {
    let mut ids: BTreeSet<String> = ports.gate.live_skus().await?.into_iter().collect();
    let mut cursor = None;
    loop {
        let page = ports
            .ledger
            .skus_on_sale(&SaleSearch::default(), now - lookback(), 100, cursor.as_deref())
            .await?;
        ids.extend(page.items.into_iter().map(|sku| sku.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(ids),
        }
    }
}

async fn reconcile_sku(
    ports: Ports<'_, impl StockGate, impl OrderStore + SkuStore, impl Sync>,
    sku_id: &str,
    now: DateTime<Utc>,
    report: &mut ReconcileReport,
) -> Result<(), Error> {
    let Some(sku) = ports.ledger.get_sku(sku_id).await? else {
        return Ok(());
    };
    if sku.published_at.is_none() {
        return Ok(());
    }
    let orders = ports.ledger.live_orders_of_sku(sku_id).await?;
    // Over for a while and nothing unpaid: no grab can come and no hold
    // wait, so nothing is left to repair, and the storefront need not list
    // it. Every run tries again until the listing lets it go; an operator
    // who extended the sale meanwhile keeps it listed.
    let settled_by = now - Duration::milliseconds(RETIRE_AFTER_END_MS);
    if sku.fields.seckill_end < settled_by && orders.iter().all(|o| o.status != OrderStatus::PendingPayment) {
        if ports.ledger.take_off_sale(sku_id, settled_by).await? {
            report.taken_off_sale += 1;
        }
        return Ok(());
    }
    let Some(unknown) = ports.gate.unknown_orders(sku_id, &orders).await? else {
        tracing::warn!(
            sku_id,
            live = orders.len(),
            "SKU missing from Redis: rebuilding it from the ledger"
        );
        flash_sale::load_terms(ports, &sku, false, now).await?;
        report.skus_rebuilt += 1;
        return Ok(());
    };
    // The list came from an index that lags the table, and a cancel may
    // have released one of them since: act only on what a consistent read
    // still shows live. Restoring nothing still puts the SKU back among the
    // live ones, should the live set have lost it.
    let mut live = Vec::new();
    for order_id in &unknown {
        if let Some(order) = ports.ledger.get_order(order_id).await?
            && order.status != OrderStatus::Cancelled
        {
            live.push(order);
        }
    }
    let Some(restored) = ports.gate.restore(sku_id, &live, now).await? else {
        return Err(Error::unavailable("the SKU left Redis while it was being repaired"));
    };
    for order_id in &restored.orders {
        tracing::warn!(
            sku_id,
            order_id,
            "gate repaired: an order it had forgotten is held again"
        );
    }
    for order_id in &restored.oversold {
        tracing::error!(
            sku_id,
            order_id,
            "oversold: the gate sold this order's unit again before the repair; settle it by hand"
        );
    }
    report.orders_restored += u32::try_from(restored.orders.len()).unwrap_or(u32::MAX);
    report.oversold += u32::try_from(restored.oversold.len()).unwrap_or(u32::MAX);
    Ok(())
}

/// Rebuilds the campaign if the gate lost it; `true` if it did.
async fn reconcile_campaign(
    ports: Ports<'_, impl PacketPool, impl CampaignStore, impl Sync>,
    campaign: &Campaign,
) -> Result<bool, Error> {
    if ports.gate.counts(&campaign.id).await? != (0, 0) {
        return Ok(false);
    }
    red_packet::rebuild(ports, campaign).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{
            flash_sale::tests::{now, on_sale},
            payments::tests::pay_sandbox,
            red_packet::{PayoutLimits, claim, payout, tests as rain},
        },
        memory::{Memory, Op},
        ports::{PacketPool, SkuStore, StockGate},
    };

    async fn listed(memory: &Memory) -> Vec<String> {
        let since = now() - Duration::days(7);
        let page = memory
            .ledger
            .skus_on_sale(&SaleSearch::default(), since, 100, None)
            .await;
        page.unwrap().items.into_iter().map(|sku| sku.id).collect()
    }

    #[tokio::test]
    async fn a_sale_over_and_paid_for_leaves_the_listing_once_a_few_minutes_have_passed() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 2).await;
        let order = flash_sale::grab(memory.ports(), "ann", &sku, now()).await.unwrap();
        pay_sandbox(&memory, "ann", &order.id, now()).await.unwrap();
        let end = memory.ledger.get_sku(&sku).await.unwrap().unwrap().fields.seckill_end;
        let just_over = reconcile(memory.ports(), end + Duration::minutes(1)).await.unwrap();
        assert_eq!(just_over.taken_off_sale, 0, "{just_over:?}");
        let later = reconcile(memory.ports(), end + Duration::minutes(10)).await.unwrap();
        assert_eq!(later.taken_off_sale, 1, "{later:?}");
        assert!(listed(&memory).await.is_empty());
        let again = reconcile(memory.ports(), end + Duration::minutes(11)).await.unwrap();
        assert_eq!(again.taken_off_sale, 0, "once: {again:?}");
    }

    #[tokio::test]
    async fn a_sale_over_with_an_unpaid_order_stays_listed_and_its_hold_is_restored() {
        let memory = Memory::default();
        let (sku, _) = forgotten_orders(&memory, 2).await;
        let end = memory.ledger.get_sku(&sku).await.unwrap().unwrap().fields.seckill_end;
        let report = reconcile(memory.ports(), end + Duration::minutes(10)).await.unwrap();
        assert_eq!((report.taken_off_sale, report.orders_restored), (0, 2), "{report:?}");
        assert_eq!(listed(&memory).await, [sku]);
    }

    /// Two shoppers buy, one pays; the gate then forgets both (a failover
    /// to a replica that missed them gives their units back).
    async fn forgotten_orders(memory: &Memory, units: i64) -> (String, [String; 2]) {
        let sku = on_sale(memory, units).await;
        let unpaid = flash_sale::grab(memory.ports(), "ann", &sku, now()).await.unwrap();
        let paid = flash_sale::grab(memory.ports(), "bob", &sku, now()).await.unwrap();
        pay_sandbox(memory, "bob", &paid.id, now()).await.unwrap();
        for order in [&unpaid, &paid] {
            memory.gate.forget(&sku, &order.id, &order.username);
        }
        (sku, [unpaid.id, paid.id])
    }

    #[tokio::test]
    async fn orders_the_gate_forgot_are_held_again_and_their_units_taken_off_sale() {
        let memory = Memory::default();
        let (sku, [unpaid, _]) = forgotten_orders(&memory, 5).await;
        assert_eq!(memory.gate.remaining(&sku).await.unwrap(), Some(5));

        let report = reconcile(memory.ports(), now()).await.unwrap();
        assert_eq!((report.orders_restored, report.oversold), (2, 0), "{report:?}");
        assert_eq!(memory.gate.remaining(&sku).await.unwrap(), Some(3));
        let later = now() + Duration::days(1);
        let held = memory.gate.overdue(&sku, later, 10).await.unwrap();
        assert_eq!(held.iter().map(|h| &h.order_id).collect::<Vec<_>>(), [&unpaid]);
        for shopper in ["ann", "bob"] {
            let again = flash_sale::grab(memory.ports(), shopper, &sku, now()).await;
            assert!(matches!(again, Err(Error::AlreadyPurchased)), "{again:?}");
        }

        let second = reconcile(memory.ports(), now()).await.unwrap();
        assert_eq!(second.orders_restored, 0, "a repair is done once");
    }

    #[tokio::test]
    async fn a_forgotten_paid_order_is_found_by_its_id_though_its_shopper_bought_again() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 5).await;
        let first = flash_sale::grab(memory.ports(), "ann", &sku, now()).await.unwrap();
        memory.gate.forget(&sku, &first.id, "ann");
        pay_sandbox(&memory, "ann", &first.id, now()).await.unwrap();
        // The gate no longer counts her a buyer, so she could buy again.
        flash_sale::grab(memory.ports(), "ann", &sku, now()).await.unwrap();
        assert_eq!(memory.gate.remaining(&sku).await.unwrap(), Some(4));

        let report = reconcile(memory.ports(), now()).await.unwrap();
        assert_eq!(report.orders_restored, 1, "{report:?}");
        assert_eq!(
            memory.gate.remaining(&sku).await.unwrap(),
            Some(3),
            "both of her units are off sale"
        );
    }

    #[tokio::test]
    async fn a_unit_sold_again_before_the_repair_is_reported_oversold() {
        let memory = Memory::default();
        let (sku, _) = forgotten_orders(&memory, 2).await;
        for shopper in ["cat", "dan"] {
            flash_sale::grab(memory.ports(), shopper, &sku, now()).await.unwrap();
        }
        let report = reconcile(memory.ports(), now()).await.unwrap();
        assert_eq!((report.orders_restored, report.oversold), (2, 2), "{report:?}");
        assert_eq!(
            memory.gate.remaining(&sku).await.unwrap(),
            Some(-2),
            "the gate says what the ledger does"
        );
        let late = flash_sale::grab(memory.ports(), "eve", &sku, now()).await;
        assert!(matches!(late, Err(Error::SoldOut)), "{late:?}");
    }

    #[tokio::test]
    async fn an_order_cancelled_after_it_was_listed_is_not_brought_back() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 3).await;
        let order = flash_sale::grab(memory.ports(), "ann", &sku, now()).await.unwrap();
        // The shopper cancels between the listing and the repair; the gate
        // has already given the unit back.
        memory.gate.forget(&sku, &order.id, "ann");
        let (writer, id) = (memory.ledger.other_writer(), order.id.clone());
        memory.ledger.faults.before(Op::GetOrder, 1, move || {
            writer.change_order(&id, |o| o.status = OrderStatus::Cancelled);
        });
        let report = reconcile(memory.ports(), now()).await.unwrap();
        assert_eq!(report.orders_restored, 0, "{report:?}");
        assert_eq!(memory.gate.remaining(&sku).await.unwrap(), Some(3));
    }

    #[tokio::test]
    async fn a_sku_the_gate_lost_is_rebuilt_from_the_ledger() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 5).await;
        flash_sale::grab(memory.ports(), "ann", &sku, now()).await.unwrap();
        memory.gate.lose_sku(&sku);
        let report = reconcile(memory.ports(), now()).await.unwrap();
        assert_eq!(report.skus_rebuilt, 1, "{report:?}");
        assert_eq!(memory.gate.remaining(&sku).await.unwrap(), Some(4));
    }

    #[tokio::test]
    async fn a_campaign_the_gate_lost_is_rebuilt_with_every_claim_paid_out_or_not() {
        let memory = Memory::default();
        let campaign = rain::rain(&memory, 1_000, 10).await;
        let now = rain::now;
        let paid = claim(memory.ports(), &campaign.id, "paid", now()).await.unwrap();
        payout(memory.ports(), now(), PayoutLimits::default()).await.unwrap();
        let unpaid = claim(memory.ports(), &campaign.id, "unpaid", now()).await.unwrap();
        memory.gate.lose_campaign(&campaign.id);

        let report = reconcile(memory.ports(), now()).await.unwrap();
        assert_eq!(report.campaigns_rebuilt, 1, "{report:?}");
        assert_eq!(memory.gate.counts(&campaign.id).await.unwrap(), (8, 2));
        for (shopper, theirs) in [("paid", &paid), ("unpaid", &unpaid)] {
            let again = claim(memory.ports(), &campaign.id, shopper, now()).await;
            assert!(
                matches!(again, Err(Error::AlreadyClaimed(ref p)) if p == theirs),
                "{shopper}: {again:?}"
            );
        }

        // Everyone else claims the rest; every packet is credited once and
        // the total is never exceeded.
        for i in 0..8 {
            claim(memory.ports(), &campaign.id, &format!("late{i}"), now())
                .await
                .unwrap();
        }
        payout(memory.ports(), now(), PayoutLimits::default()).await.unwrap();
        let stored = memory.ledger.get_campaign(&campaign.id).await.unwrap().unwrap();
        assert_eq!((stored.credited, stored.credited_amount), (10, 1_000));
        assert_eq!(reconcile(memory.ports(), now()).await.unwrap().campaigns_rebuilt, 0);
    }
}
