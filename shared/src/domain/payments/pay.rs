//! A shopper pays an order: the attempt is recorded first, then the
//! provider is asked. The sandbox answers at once; a real provider hands
//! back what the shopper's client needs (a page, a QR code, a card form's
//! secret) and tells the outcome later by notification.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Charged, WRITE_ATTEMPTS, confirm_or_leave, record_charge};
use crate::{
    domain::flash_sale::{Viewer, visible_order},
    error::Error,
    model::{Order, OrderRecord, OrderStatus, PayChoice, PayMethod, PayType, Receiver},
    ports::{ChargeLookup, ChargeOutcome, OrderStore, PayAction, PaymentProvider, PortError, Ports, StockGate},
};

impl Order {
    fn attempted(&self, method: PayMethod, ship_to: Option<Receiver>, now: DateTime<Utc>) -> Order {
        let same_trade = self.pay_method == Some(method);
        Order {
            payment_started: Some(self.payment_started.unwrap_or(now)),
            pay_method: Some(method),
            payment_failure: None,
            trade_id: self.trade_id.clone().filter(|_| same_trade),
            ..self.next(now)
        }
        .shipping_to(ship_to)
    }

    /// To be paid in cash to the courier: it ships as a paid order does.
    /// An online attempt before stays open (`payment_started`): closing
    /// its trade may have found nothing (an Alipay trade exists only once
    /// its cashier page is opened), so the payments job asks its provider
    /// until the pay window closes, and a charge found is paid back.
    fn on_delivery(&self, ship_to: Option<Receiver>, now: DateTime<Utc>) -> Order {
        Order {
            status: OrderStatus::Confirmed,
            pay_type: PayType::CashOnDelivery,
            payment_failure: None,
            ..self.next(now)
        }
        .shipping_to(ship_to)
    }

    fn shipping_to(mut self, ship_to: Option<Receiver>) -> Order {
        if let Some(receiver) = ship_to {
            self.receiver_contact = Some(receiver.contact);
            self.receiver_mobile = Some(receiver.mobile);
            self.receiver_address = Some(receiver.address);
        }
        self
    }

    /// The provider refused the attempt at once: nothing was charged.
    fn declined(&self, reason: &str, now: DateTime<Utc>) -> Order {
        Order {
            payment_started: None,
            payment_failure: Some(reason.to_owned()),
            ..self.next(now)
        }
    }
}

/// What paying answers: the order, and what the shopper's client does
/// next while the provider finishes the payment on its side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Payment {
    #[serde(flatten, serialize_with = "as_record")]
    pub order: Order,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pay_action: Option<PayAction>,
}

fn as_record<S: serde::Serializer>(order: &Order, serializer: S) -> Result<S::Ok, S::Error> {
    OrderRecord::from(order.clone()).serialize(serializer)
}

impl Payment {
    fn done(order: Order) -> Payment {
        Payment {
            order,
            pay_action: None,
        }
    }
}

/// The ways this deployment takes payment, as the pay route names them:
/// each configured provider, and cash on delivery.
pub fn offered(payments: &impl PaymentProvider) -> Vec<PayChoice> {
    PayMethod::ALL
        .into_iter()
        .filter(|method| payments.offers(*method))
        .map(PayChoice::Online)
        .chain([PayChoice::OnDelivery])
        .collect()
}

/// Pays a pending order with `method`. Paying a paid order returns it
/// unchanged.
pub async fn pay(
    ports: Ports<'_, impl StockGate, impl OrderStore, impl PaymentProvider>,
    username: &str,
    order_id: &str,
    method: PayMethod,
    ship_to: Option<Receiver>,
    now: DateTime<Utc>,
) -> Result<Payment, Error> {
    if !ports.payments.offers(method) {
        return Err(Error::Validation(format!(
            "`{}` payments are not offered here",
            method.as_str()
        )));
    }
    let attempt = match start_payment(ports, username, order_id, Some(method), ship_to, now).await? {
        Started::Settled(order) => return Ok(Payment::done(order)),
        Started::Attempt(order) => order,
    };
    // A failure here leaves the attempt open for the job to settle.
    let transaction_id = match ports.payments.charge(method, &attempt.trade()).await? {
        ChargeOutcome::Approved { transaction_id } => transaction_id,
        ChargeOutcome::Pending { action, trade_id } => {
            return Ok(Payment {
                order: remember_trade(ports.ledger, attempt, trade_id, now).await,
                pay_action: Some(action),
            });
        }
        ChargeOutcome::Declined(reason) => {
            if let Err(error) = ports
                .ledger
                .replace_order(&attempt.declined(&reason, now), &attempt)
                .await
            {
                tracing::warn!(order_id, %error, "declined attempt left open; the payments job closes it");
            }
            return Err(Error::PaymentDeclined(reason));
        }
    };
    match record_charge(ports, attempt, method, &transaction_id, now).await? {
        Charged::Paid(order) | Charged::PaidBefore(order) => Ok(Payment::done(order)),
        Charged::Refunded | Charged::RefundedBefore | Charged::RefundOwed => Err(Error::InvalidState(
            "the order was cancelled, or paid another way, before this payment completed; it is refunded".into(),
        )),
    }
}

/// Confirms a pending order to be paid in cash on delivery; an order
/// already settled is returned unchanged.
pub async fn pay_on_delivery(
    ports: Ports<'_, impl StockGate, impl OrderStore, impl PaymentProvider>,
    username: &str,
    order_id: &str,
    ship_to: Option<Receiver>,
    now: DateTime<Utc>,
) -> Result<Order, Error> {
    match start_payment(ports, username, order_id, None, ship_to, now).await? {
        Started::Settled(order) => Ok(order),
        Started::Attempt(confirmed) => {
            confirm_or_leave(ports.gate, &confirmed).await;
            Ok(confirmed)
        }
    }
}

/// Keeps the provider's id of the trade on the order, for the job's
/// queries. If this write fails, the provider still finds the trade by the
/// order id (its idempotency key), so nothing waits on it.
async fn remember_trade(
    orders: &impl OrderStore,
    attempt: Order,
    trade_id: Option<String>,
    now: DateTime<Utc>,
) -> Order {
    if trade_id.is_none() || trade_id == attempt.trade_id {
        return attempt;
    }
    let next = Order {
        trade_id,
        ..attempt.next(now)
    };
    match orders.replace_order(&next, &attempt).await {
        Ok(()) => next,
        Err(error) => {
            tracing::warn!(order_id = %attempt.id, %error, "the trade's id is not on the order; the job asks by order id");
            attempt
        }
    }
}

enum Started {
    /// Paid, or to be paid on delivery, already.
    Settled(Order),
    Attempt(Order),
}

/// Records the attempt (through `method`, or cash on delivery with none,
/// and where the order ships to) on the order, which must be the
/// shopper's and still payable. A trade left open at another provider is
/// closed first, so that the order can never be paid twice; if it was paid
/// there meanwhile, that payment stands.
async fn start_payment(
    ports: Ports<'_, impl StockGate, impl OrderStore, impl PaymentProvider>,
    username: &str,
    order_id: &str,
    method: Option<PayMethod>,
    ship_to: Option<Receiver>,
    now: DateTime<Utc>,
) -> Result<Started, Error> {
    for _ in 0..WRITE_ATTEMPTS {
        let order = visible_order(ports.ledger, order_id, Viewer::Shopper(username)).await?;
        match order.status {
            OrderStatus::Cancelled => return Err(Error::InvalidState("the order is cancelled".into())),
            OrderStatus::PendingPayment if now >= order.pay_deadline => return Err(Error::PayDeadlinePassed),
            OrderStatus::PendingPayment => {}
            _ => return Ok(Started::Settled(order)),
        }
        if let Some(previous) = order.pay_method.filter(|previous| Some(*previous) != method)
            && let ChargeLookup::Charged { transaction_id, .. } = ports.payments.close(previous, &order.trade()).await?
        {
            return match record_charge(ports, order, previous, &transaction_id, now).await? {
                Charged::Paid(order) | Charged::PaidBefore(order) => Ok(Started::Settled(order)),
                _ => Err(Error::InvalidState(
                    "the order was cancelled; its payment is refunded".into(),
                )),
            };
        }
        let attempt = match method {
            Some(method) => order.attempted(method, ship_to.clone(), now),
            None => order.on_delivery(ship_to.clone(), now),
        };
        match ports.ledger.replace_order(&attempt, &order).await {
            Ok(()) => return Ok(Started::Attempt(attempt)),
            Err(PortError::ConditionFailed) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(Error::Conflict("the order kept changing while paying; retry".into()))
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::{
        domain::{
            flash_sale::{
                cancel, sweep,
                tests::{after_deadline, holds, now, on_sale, pending, remaining, stored},
            },
            payments::tests::{cancel_before_the_paid_write, pay_sandbox},
        },
        memory::{Fault, Memory, Op},
        model::{RefundStatus, ReservedUnit},
    };

    #[tokio::test]
    async fn paying_charges_once_marks_paid_and_stops_the_clock() {
        let memory = Memory::default();
        let (sku, order) = pending(&memory, 1).await;
        let paid = pay_sandbox(&memory, "alice", &order.id, now()).await.unwrap();
        assert_eq!(paid.status, OrderStatus::Paid);
        assert_eq!(paid.payment_started, None, "the answer is recorded");
        assert_eq!(holds(&memory, &sku).await, 0);
        let again = pay_sandbox(&memory, "alice", &order.id, now()).await.unwrap();
        assert_eq!(again, paid);
        assert_eq!(memory.payments.charges().len(), 1);
    }

    #[tokio::test]
    async fn paying_late_a_cancelled_or_someone_elses_order_is_refused() {
        let memory = Memory::default();
        let (_, order) = pending(&memory, 1).await;
        let late = pay_sandbox(&memory, "alice", &order.id, after_deadline()).await;
        assert!(matches!(late, Err(Error::PayDeadlinePassed)), "{late:?}");
        let theirs = pay(memory.ports(), "mallory", &order.id, PayMethod::Sandbox, None, now()).await;
        assert!(matches!(theirs, Err(Error::NotFound(_))), "{theirs:?}");
        cancel(memory.ports(), "alice", &order.id, now()).await.unwrap();
        let cancelled = pay_sandbox(&memory, "alice", &order.id, now()).await;
        assert!(matches!(cancelled, Err(Error::InvalidState(_))), "{cancelled:?}");
        assert!(memory.payments.charges().is_empty());
    }

    #[tokio::test]
    async fn a_declined_charge_leaves_the_order_unpaid_and_nothing_to_settle() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 1).await;
        let unit = ReservedUnit {
            pay_deadline: now() + Duration::minutes(15),
            price: 0,
            name: "free".into(),
        };
        let order = Order::pending("free-order".into(), &sku, &unit, "alice", now());
        memory.ledger.insert_order(&order).await.unwrap();
        let declined = pay_sandbox(&memory, "alice", &order.id, now()).await;
        assert!(matches!(declined, Err(Error::PaymentDeclined(_))), "{declined:?}");
        let unpaid = stored(&memory, &order.id).await;
        assert_eq!(
            (unpaid.status, unpaid.payment_started),
            (OrderStatus::PendingPayment, None)
        );
    }

    #[tokio::test]
    async fn a_payment_that_loses_to_a_cancel_is_recorded_and_refunded() {
        let memory = Memory::default();
        let (_, order) = pending(&memory, 1).await;
        cancel_before_the_paid_write(&memory, &order);
        let lost = pay_sandbox(&memory, "alice", &order.id, now()).await;
        assert!(matches!(lost, Err(Error::InvalidState(_))), "{lost:?}");
        let refunded = stored(&memory, &order.id).await;
        assert_eq!(refunded.refund_status, Some(RefundStatus::Refunded));
        let charged = memory.payments.charges();
        assert_eq!(memory.payments.refunds(), charged, "every charge paid back");
        assert_eq!(refunded.refund_transaction_id.as_deref(), Some(charged[0].0.as_str()));
        assert!(!refunded.payment_unsettled());
    }

    #[tokio::test]
    async fn a_payment_that_loses_to_the_same_payment_returns_its_result() {
        let memory = Memory::default();
        let (_, order) = pending(&memory, 1).await;
        let other_pay = memory.ledger.other_writer();
        let id = order.id.clone();
        memory.ledger.faults.before(Op::ReplaceOrder, 2, move || {
            other_pay.change_order(&id, |o| {
                o.status = OrderStatus::Paid;
                o.transaction_id = Some(format!("SBX{}", o.id));
            })
        });
        let paid = pay_sandbox(&memory, "alice", &order.id, now()).await.unwrap();
        assert_eq!(paid.status, OrderStatus::Paid);
        assert!(memory.payments.refunds().is_empty());
    }

    #[tokio::test]
    async fn a_payment_whose_order_changed_under_it_reads_it_again() {
        let memory = Memory::default();
        let (_, order) = pending(&memory, 1).await;
        memory.ledger.faults.inject(Op::ReplaceOrder, 1, Fault::ConditionFailed);
        memory.ledger.faults.inject(Op::ReplaceOrder, 3, Fault::ConditionFailed);
        let paid = pay_sandbox(&memory, "alice", &order.id, now()).await.unwrap();
        assert_eq!(paid.status, OrderStatus::Paid);
        assert_eq!(memory.payments.charges().len(), 1);
    }

    #[tokio::test]
    async fn a_paid_order_whose_confirm_failed_is_confirmed_by_the_sweep() {
        let memory = Memory::default();
        let (sku, order) = pending(&memory, 1).await;
        memory.gate.faults.inject(Op::Confirm, 1, Fault::Fail);
        pay_sandbox(&memory, "alice", &order.id, now()).await.unwrap();
        assert_eq!(holds(&memory, &sku).await, 1);
        let report = sweep(memory.ports(), after_deadline(), 100).await.unwrap();
        assert_eq!(report.confirmed, 1, "{report:?}");
        assert_eq!((remaining(&memory, &sku).await, holds(&memory, &sku).await), (0, 0));
    }
}
