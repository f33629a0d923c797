//! An order after its grab: read by its shopper or an operator, cancelled
//! (its unit given back), shipped and received.

use chrono::{DateTime, Utc};

use crate::{
    domain::WRITE_ATTEMPTS,
    error::Error,
    model::{CloseReason, Order, OrderStatus, PayType},
    ports::{OrderStore, Page, PortError, Ports, StockGate},
};

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

/// A step along the fulfilment path: PAID or CONFIRMED → SHIPPED
/// (operator), then SHIPPED → COMPLETED when the owner receives a paid
/// order or the operator collects the cash for a cash-on-delivery one.
pub async fn advance(
    orders: &impl OrderStore,
    order_id: &str,
    viewer: Viewer<'_>,
    step: Fulfilment,
    now: DateTime<Utc>,
) -> Result<Order, Error> {
    let order = visible_order(orders, order_id, viewer).await?;
    if order.status == step.to() && step.fits(&order) {
        return Ok(order);
    }
    step.check(&order)?;
    let mut next = Order {
        status: step.to(),
        ..order.next(now)
    };
    match step {
        Fulfilment::Ship => next.consign_time = Some(now),
        Fulfilment::Receive => next.end_time = Some(now),
        Fulfilment::Collect => {
            next.end_time = Some(now);
            next.pay_time = Some(now);
        }
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
    /// The courier handed over the goods and took the cash.
    Collect,
}

impl Fulfilment {
    fn to(self) -> OrderStatus {
        match self {
            Fulfilment::Ship => OrderStatus::Shipped,
            Fulfilment::Receive | Fulfilment::Collect => OrderStatus::Completed,
        }
    }

    /// Whether this step is one for `order`'s kind of payment: receiving
    /// ends a paid order, collecting a cash-on-delivery one.
    fn fits(self, order: &Order) -> bool {
        let on_delivery = order.pay_type == PayType::CashOnDelivery;
        match self {
            Fulfilment::Ship => true,
            Fulfilment::Receive => !on_delivery,
            Fulfilment::Collect => on_delivery,
        }
    }

    /// Whether `order` may take this step.
    fn check(self, order: &Order) -> Result<(), Error> {
        match (self, order.status) {
            (Fulfilment::Ship, OrderStatus::Paid | OrderStatus::Confirmed) => Ok(()),
            (Fulfilment::Receive, _) if !self.fits(order) => Err(Error::InvalidState(
                "a cash-on-delivery order is completed when the operator records the cash collected".into(),
            )),
            (Fulfilment::Collect, _) if !self.fits(order) => Err(Error::InvalidState(
                "only a cash-on-delivery order is collected; this one is paid online".into(),
            )),
            (Fulfilment::Receive | Fulfilment::Collect, OrderStatus::Shipped) => Ok(()),
            (_, status) => Err(Error::InvalidState(format!(
                "a {} order cannot become {}",
                status.as_str(),
                self.to().as_str()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::flash_sale::tests::*;

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
}
