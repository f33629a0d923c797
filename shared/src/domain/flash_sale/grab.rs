//! A shopper's grab: the gate holds a unit, then the ledger records the
//! order; a unit goes back only once the ledger proves no order holds it.

use chrono::{DateTime, Utc};

use crate::{
    error::Error,
    ids,
    model::{CloseReason, Order, OrderStatus},
    ports::{OrderStore, PortError, Ports, Reservation, SkuStore, StockGate},
};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::flash_sale::tests::*;

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
}
