//! Money: paying an order ([`pay`]), believing a provider's notification
//! ([`notice`]), and the payments job ([`settle`]) that settles every
//! charge whose answer was lost and every refund still owed.
//!
//! The order records a payment attempt (`payment_started`, and whom it
//! went to, `pay_method`) before the provider is asked to charge it, and
//! clears it only once the answer is recorded. So whatever dies in between
//! (the function, DynamoDB, the provider's reply, a notification lost for
//! good), the ledger shows an attempt left open, and the job asks the
//! provider what became of it: charged, it ends in `PAID` if the order is
//! still open and in a refund if not; not charged once the pay window has
//! closed, the attempt is closed. A refund owed (`refund_status:
//! PENDING`) is retried by the same job until the provider takes it. Trades
//! and refunds are idempotent at the provider (by the order id and the
//! refund key), so a job run beside a pay or a notification, or twice,
//! moves no money twice.

mod notice;
mod pay;
mod returns;
mod settle;

use chrono::{DateTime, Utc};

pub use notice::{Noticed, notified};
pub use pay::{Payment, offered, pay, pay_on_delivery};
pub use returns::{accept_return, refuse_return, request_return};
pub use settle::{PaymentsReport, settle_payments};

use super::WRITE_ATTEMPTS;
use crate::{
    error::Error,
    model::{Order, OrderStatus, PayMethod, RefundStatus},
    ports::{ChargeRequest, OrderStore, PaymentProvider, PortError, Ports, StockGate},
};

impl Order {
    fn paid(&self, method: PayMethod, transaction_id: &str, now: DateTime<Utc>) -> Order {
        Order {
            status: OrderStatus::Paid,
            pay_time: Some(now),
            transaction_id: Some(transaction_id.to_owned()),
            pay_method: Some(method),
            payment_started: None,
            payment_failure: None,
            ..self.next(now)
        }
    }

    /// The order's trade as its provider knows it.
    fn trade(&self) -> ChargeRequest<'_> {
        ChargeRequest {
            order_id: &self.id,
            amount_cents: self.price,
            subject: &self.name,
            expires: self.pay_deadline,
            trade_id: self.trade_id.as_deref(),
        }
    }

    /// Who to ask for the last attempt: orders written before there was
    /// more than the sandbox name none.
    fn attempt_method(&self) -> PayMethod {
        self.pay_method.unwrap_or_default()
    }

    /// A charge that cannot stand (the order closed, or was paid another
    /// way) is owed back through the provider that made it.
    fn owing_refund(&self, method: PayMethod, transaction_id: &str, now: DateTime<Utc>) -> Order {
        Order {
            payment_started: None,
            refund_status: Some(RefundStatus::Pending),
            refund_transaction_id: Some(transaction_id.to_owned()),
            refund_method: Some(method),
            ..self.next(now)
        }
    }
}

/// What became of a charge once recorded.
#[derive(Debug, Clone, PartialEq)]
enum Charged {
    Paid(Order),
    /// Another pay, notification or job run recorded this charge first.
    PaidBefore(Order),
    /// The order had closed, or was paid another way, meanwhile; this
    /// charge went back.
    Refunded,
    /// ... and someone else recorded the refund first.
    RefundedBefore,
    /// The order had closed meanwhile; the refund is recorded as owed but
    /// the provider did not take it yet.
    RefundOwed,
}

/// Records a charge the provider made on the order it was for: `PAID`
/// while the order is open (even just past its deadline, as long as the
/// sweep has not closed it: the unit is still held), a refund if not.
async fn record_charge(
    ports: Ports<'_, impl StockGate, impl OrderStore, impl PaymentProvider>,
    mut current: Order,
    method: PayMethod,
    transaction_id: &str,
    now: DateTime<Utc>,
) -> Result<Charged, Error> {
    for _ in 0..WRITE_ATTEMPTS {
        let next = match current.status {
            OrderStatus::PendingPayment => current.paid(method, transaction_id, now),
            _ if current.transaction_id.as_deref() == Some(transaction_id) => {
                return Ok(Charged::PaidBefore(current));
            }
            // A charge already owed back: pay it (again, idempotently).
            _ if current.refund_transaction_id.as_deref() == Some(transaction_id) => {
                return pay_back(ports, current, now).await;
            }
            // The order holds one refund at a time: while another charge
            // is still owed back, this one waits (its provider retries the
            // notification, the job its query) rather than overwrite it.
            _ if current.refund_status == Some(RefundStatus::Pending) => {
                return Err(Error::Conflict(format!(
                    "order {} is still paying back another charge; {transaction_id} is refunded after it",
                    current.id
                )));
            }
            // Closed, or settled another way (paid elsewhere: paying
            // another way closes the first trade first, but a provider's
            // page opened before may still be paid). This charge goes back.
            _ => current.owing_refund(method, transaction_id, now),
        };
        match ports.ledger.replace_order(&next, &current).await {
            Ok(()) if next.refund_transaction_id.as_deref() == Some(transaction_id) => {
                return pay_back(ports, next, now).await;
            }
            Ok(()) => {
                confirm_or_leave(ports.gate, &next).await;
                return Ok(Charged::Paid(next));
            }
            Err(PortError::ConditionFailed) => {
                current = ports
                    .ledger
                    .get_order(&current.id)
                    .await?
                    .ok_or(Error::NotFound("order"))?;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(Error::Conflict(format!(
        "order {} kept changing while recording its payment",
        current.id
    )))
}

/// Tells the gate the order's unit is sold for good; if that fails, the
/// sweep does it later.
async fn confirm_or_leave(gate: &impl StockGate, order: &Order) {
    if let Err(error) = gate.confirm(&order.sku_id, &order.username, &order.id).await {
        tracing::warn!(order_id = %order.id, %error, "confirm failed; the sweep will retry");
    }
}

/// Pays back a refund the order records as owed, and records that.
async fn pay_back(
    ports: Ports<'_, impl Sync, impl OrderStore, impl PaymentProvider>,
    owed: Order,
    now: DateTime<Utc>,
) -> Result<Charged, Error> {
    let Some(transaction_id) = owed.refund_transaction_id.as_deref() else {
        return Err(Error::InvalidState(format!("order {} owes no refund", owed.id)));
    };
    if owed.refund_status == Some(RefundStatus::Refunded) {
        return Ok(Charged::RefundedBefore);
    }
    let method = owed.refund_method.unwrap_or(owed.attempt_method());
    let refunded = ports
        .payments
        .refund(method, transaction_id, owed.price, &owed.refund_key(transaction_id))
        .await;
    if let Err(error) = refunded {
        tracing::warn!(order_id = %owed.id, %error, "refund failed; the payments job retries it");
        return Ok(Charged::RefundOwed);
    }
    let refunded = Order {
        refund_status: Some(RefundStatus::Refunded),
        ..owed.next(now)
    };
    match ports.ledger.replace_order(&refunded, &owed).await {
        Ok(()) => Ok(Charged::Refunded),
        // Refunding twice changes nothing: whoever recorded it first won.
        Err(PortError::ConditionFailed) => Ok(Charged::RefundedBefore),
        Err(error) => Err(error.into()),
    }
}

/// A charge of another amount than the order's is not believed: an
/// amount-tampered notification, or a provider's books gone wrong.
fn check_amount(order: &Order, amount_cents: i64) -> Result<(), Error> {
    match amount_cents == order.price {
        true => Ok(()),
        false => Err(Error::Validation(format!(
            "the charge of {amount_cents} is not the {} order {} costs",
            order.price, order.id
        ))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::Duration;

    use super::*;
    use crate::{
        memory::{Memory, Op},
        model::PAYMENT_IN_FLIGHT_SECONDS,
    };

    /// When the job next runs, past the in-flight window.
    pub(crate) fn job_time(after: DateTime<Utc>) -> DateTime<Utc> {
        after + Duration::seconds(PAYMENT_IN_FLIGHT_SECONDS + 1)
    }

    pub(crate) async fn settle(memory: &Memory, at: DateTime<Utc>) -> PaymentsReport {
        settle_payments(memory.ports(), at, 100).await.unwrap()
    }

    /// The order is cancelled between the pay's two writes: after the one
    /// recording its attempt, before the `PAID` one.
    pub(crate) fn cancel_before_the_paid_write(memory: &Memory, order: &Order) {
        let canceller = memory.ledger.other_writer();
        let id = order.id.clone();
        memory.ledger.faults.before(Op::ReplaceOrder, 2, move || {
            canceller.change_order(&id, |o| o.status = OrderStatus::Cancelled)
        });
    }

    /// `username` pays `order_id` with the sandbox.
    pub(crate) async fn pay_sandbox(
        memory: &Memory,
        username: &str,
        order_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Order, Error> {
        let payment = pay(memory.ports(), username, order_id, PayMethod::Sandbox, None, at).await?;
        Ok(payment.order)
    }

    /// Money in the provider's books less money paid back, in cents.
    pub(crate) fn kept(memory: &Memory) -> i64 {
        memory.payments.kept().values().sum()
    }
}
