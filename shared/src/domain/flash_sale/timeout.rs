//! The order-timeout sweep: every hold past its deadline settled as the
//! ledger says, its unit given back once no order can hold it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    domain::WRITE_ATTEMPTS,
    error::Error,
    model::{CloseReason, Order, OrderStatus, ReservedUnit},
    ports::{Hold, OrderStore, PortError, Ports, StockGate},
};

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
                _ => {
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
mod tests {
    use super::*;
    use crate::domain::flash_sale::tests::*;

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
}
