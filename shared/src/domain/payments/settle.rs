//! The payments job: for every order whose money is due to settle, pays a
//! refund owed, or asks the provider of an open attempt what became of it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Charged, check_amount, pay_back, record_charge};
use crate::{
    error::Error,
    model::{Order, RefundStatus},
    ports::{ChargeLookup, OrderStore, PaymentProvider, PortError, Ports, StockGate},
};

impl Order {
    /// The attempt ended without a charge: nothing to settle.
    fn uncharged(&self, now: DateTime<Utc>) -> Order {
        Order {
            payment_started: None,
            ..self.next(now)
        }
    }
}

/// What one run of the payments job did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PaymentsReport {
    /// Attempts the provider had charged, on orders still open: now `PAID`.
    pub paid: u32,
    /// Charges on orders closed meanwhile, and refunds owed: paid back.
    pub refunded: u32,
    /// Attempts the provider has not charged, while the shopper may still
    /// pay: asked again a minute later.
    pub awaiting: u32,
    /// Attempts the provider never charged by the end of the pay window:
    /// closed.
    pub not_charged: u32,
    /// Settled meanwhile by a pay, a notification or an overlapping run.
    pub settled_by_another: u32,
    /// Orders left for the next run: a backend failed, or the provider
    /// did not take a refund yet.
    pub failed: u32,
}

/// Settles up to `limit` orders whose money is due to be settled by `now`
/// ([`Order::payment_due`]).
pub async fn settle_payments(
    ports: Ports<'_, impl StockGate, impl OrderStore, impl PaymentProvider>,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<PaymentsReport, Error> {
    let due = ports.ledger.orders_with_payment_due(now, limit).await?;
    let mut report = PaymentsReport::default();
    for order in due {
        let order_id = order.id.clone();
        match settle_payment(ports, order, now).await {
            Ok(Settlement::Paid) => report.paid += 1,
            Ok(Settlement::Refunded) => report.refunded += 1,
            Ok(Settlement::Awaiting) => report.awaiting += 1,
            Ok(Settlement::NotCharged) => report.not_charged += 1,
            Ok(Settlement::ByAnother) => report.settled_by_another += 1,
            Ok(Settlement::RefundOwed) => report.failed += 1,
            Err(error) => {
                tracing::warn!(order_id, %error, "could not settle the payment");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settlement {
    Paid,
    Refunded,
    RefundOwed,
    Awaiting,
    NotCharged,
    ByAnother,
}

impl From<Charged> for Settlement {
    fn from(charged: Charged) -> Self {
        match charged {
            Charged::Paid(_) => Settlement::Paid,
            Charged::Refunded => Settlement::Refunded,
            Charged::RefundOwed => Settlement::RefundOwed,
            Charged::PaidBefore(_) | Charged::RefundedBefore => Settlement::ByAnother,
        }
    }
}

async fn settle_payment(
    ports: Ports<'_, impl StockGate, impl OrderStore, impl PaymentProvider>,
    order: Order,
    now: DateTime<Utc>,
) -> Result<Settlement, Error> {
    if order.refund_status == Some(RefundStatus::Pending) {
        return Ok(pay_back(ports, order, now).await?.into());
    }
    let method = order.attempt_method();
    let next = match ports.payments.lookup(method, &order.trade()).await? {
        ChargeLookup::Charged {
            transaction_id,
            amount_cents,
        } => {
            check_amount(&order, amount_cents)?;
            return Ok(record_charge(ports, order, method, &transaction_id, now).await?.into());
        }
        // The provider's read may lag its books, and the shopper may still
        // pay until the trade expires: only then is "not charged" final.
        ChargeLookup::NotCharged if now < order.pay_window_closes() => (order.next(now), Settlement::Awaiting),
        ChargeLookup::NotCharged => (order.uncharged(now), Settlement::NotCharged),
    };
    match ports.ledger.replace_order(&next.0, &order).await {
        Ok(()) => Ok(next.1),
        // Settled by an overlapping run or a notification, or re-opened by
        // a new pay: the next run sees which.
        Err(PortError::ConditionFailed) => Ok(Settlement::ByAnother),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{
            flash_sale::{
                sweep,
                tests::{after_deadline, holds, now, pending, remaining, stored},
            },
            payments::tests::{cancel_before_the_paid_write, job_time, kept, pay_sandbox, settle},
        },
        memory::{Fault, Memory, Op},
        model::OrderStatus,
    };

    #[tokio::test]
    async fn a_charge_whose_paid_write_failed_is_paid_by_the_job() {
        let memory = Memory::default();
        let (sku, order) = pending(&memory, 1).await;
        memory.ledger.faults.inject(Op::ReplaceOrder, 2, Fault::Fail);
        let lost = pay_sandbox(&memory, "alice", &order.id, now()).await;
        assert!(matches!(lost, Err(Error::Unavailable(_))), "{lost:?}");
        assert!(stored(&memory, &order.id).await.payment_unsettled());

        assert_eq!(
            settle(&memory, now()).await,
            PaymentsReport::default(),
            "may be in flight"
        );
        let report = settle(&memory, job_time(now())).await;
        assert_eq!(report.paid, 1, "{report:?}");
        let paid = stored(&memory, &order.id).await;
        assert_eq!(paid.status, OrderStatus::Paid);
        assert_eq!(paid.transaction_id, Some(memory.payments.charges()[0].0.clone()));
        assert_eq!(holds(&memory, &sku).await, 0, "confirmed to the gate");
        assert_eq!(settle(&memory, job_time(now())).await, PaymentsReport::default());
    }

    #[tokio::test]
    async fn a_charge_whose_order_timed_out_meanwhile_is_refunded_by_the_job() {
        let memory = Memory::default();
        let (sku, order) = pending(&memory, 1).await;
        memory.ledger.faults.inject(Op::ReplaceOrder, 2, Fault::Fail);
        pay_sandbox(&memory, "alice", &order.id, now()).await.unwrap_err();
        sweep(memory.ports(), after_deadline(), 100).await.unwrap();
        assert_eq!(remaining(&memory, &sku).await, 1, "the unit is back on sale");

        let report = settle(&memory, job_time(after_deadline())).await;
        assert_eq!(report.refunded, 1, "{report:?}");
        let closed = stored(&memory, &order.id).await;
        assert_eq!(closed.refund_status, Some(RefundStatus::Refunded));
        assert_eq!(kept(&memory), 0);
    }

    #[tokio::test]
    async fn an_attempt_the_provider_never_charged_is_closed() {
        let memory = Memory::default();
        let (_, order) = pending(&memory, 1).await;
        memory.payments.faults.inject(Op::Charge, 1, Fault::Fail);
        pay_sandbox(&memory, "alice", &order.id, now()).await.unwrap_err();
        let early = settle(&memory, job_time(now())).await;
        assert_eq!(early.awaiting, 1, "{early:?}");
        let report = settle(&memory, job_time(after_deadline())).await;
        assert_eq!(report.not_charged, 1, "{report:?}");
        let open = stored(&memory, &order.id).await;
        assert_eq!(
            (open.status, open.payment_unsettled()),
            (OrderStatus::PendingPayment, false)
        );
        assert!(memory.payments.charges().is_empty());
    }

    #[tokio::test]
    async fn a_charge_whose_reply_was_lost_is_found_by_its_key() {
        let memory = Memory::default();
        let (_, order) = pending(&memory, 1).await;
        memory.payments.faults.inject(Op::Charge, 1, Fault::LoseReply);
        pay_sandbox(&memory, "alice", &order.id, now()).await.unwrap_err();
        let report = settle(&memory, job_time(now())).await;
        assert_eq!(report.paid, 1, "{report:?}");
        assert_eq!(kept(&memory), order.price);
    }

    #[tokio::test]
    async fn a_lagging_not_charged_answer_leaves_the_attempt_open_for_the_next_run() {
        let memory = Memory::default();
        let (_, order) = pending(&memory, 1).await;
        memory.payments.faults.inject(Op::Charge, 1, Fault::LoseReply);
        pay_sandbox(&memory, "alice", &order.id, now()).await.unwrap_err();
        memory.payments.faults.inject(Op::Lookup, 1, Fault::Stale);
        let behind = settle(&memory, job_time(now())).await;
        assert_eq!(behind.not_charged, 0, "{behind:?}");
        assert!(stored(&memory, &order.id).await.payment_unsettled());

        let later = settle(&memory, job_time(job_time(now()))).await;
        assert_eq!(later.paid, 1, "{later:?}");
        assert_eq!(kept(&memory), order.price);
    }

    #[tokio::test]
    async fn a_refund_failing_twice_is_retried_until_it_succeeds() {
        let memory = Memory::default();
        let (_, order) = pending(&memory, 1).await;
        cancel_before_the_paid_write(&memory, &order);
        memory.payments.faults.inject(Op::Refund, 1, Fault::Fail);
        memory.payments.faults.inject(Op::Refund, 2, Fault::Fail);
        let lost = pay_sandbox(&memory, "alice", &order.id, now()).await;
        assert!(matches!(lost, Err(Error::InvalidState(_))), "{lost:?}");
        assert_eq!(
            stored(&memory, &order.id).await.refund_status,
            Some(RefundStatus::Pending)
        );

        let first = settle(&memory, job_time(now())).await;
        assert_eq!((first.refunded, first.failed), (0, 1), "{first:?}");
        let second = settle(&memory, job_time(now())).await;
        assert_eq!((second.refunded, second.failed), (1, 0), "{second:?}");
        assert_eq!(
            stored(&memory, &order.id).await.refund_status,
            Some(RefundStatus::Refunded)
        );
        assert_eq!(memory.payments.faults.calls(Op::Refund), 3);
        assert_eq!(kept(&memory), 0);
    }

    #[tokio::test]
    async fn a_refund_whose_reply_was_lost_is_paid_once_and_recorded() {
        let memory = Memory::default();
        let (_, order) = pending(&memory, 1).await;
        cancel_before_the_paid_write(&memory, &order);
        memory.payments.faults.inject(Op::Refund, 1, Fault::LoseReply);
        pay_sandbox(&memory, "alice", &order.id, now()).await.unwrap_err();

        let report = settle(&memory, job_time(now())).await;
        assert_eq!(report.refunded, 1, "{report:?}");
        assert_eq!(memory.payments.refunds().len(), 1, "one refund paid");
        assert_eq!(kept(&memory), 0);
    }

    #[tokio::test]
    async fn the_job_leaves_an_order_for_the_next_run_when_the_provider_is_down() {
        let memory = Memory::default();
        let (_, order) = pending(&memory, 1).await;
        memory.ledger.faults.inject(Op::ReplaceOrder, 2, Fault::Fail);
        pay_sandbox(&memory, "alice", &order.id, now()).await.unwrap_err();
        memory.payments.faults.inject(Op::Lookup, 1, Fault::Fail);
        assert_eq!(settle(&memory, job_time(now())).await.failed, 1);
        assert_eq!(settle(&memory, job_time(now())).await.paid, 1);
    }
}
