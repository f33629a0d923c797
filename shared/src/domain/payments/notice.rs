//! A provider's notification, verified by its adapter, checked against the
//! order and recorded exactly as a synchronous payment is: `PAID` once
//! however often it comes and in whatever order, or refunded if the order
//! had closed (timed out or cancelled) before the money came.

use chrono::{DateTime, Utc};

use super::{Charged, WRITE_ATTEMPTS, check_amount, record_charge};
use crate::{
    error::Error,
    model::{Order, OrderStatus},
    ports::{Notice, NoticeEvent, OrderStore, PaymentProvider, PortError, Ports, StockGate},
};

/// What a notification changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Noticed {
    Paid,
    /// Recorded before (a repeat, or the job or a pay got there first).
    AlreadyRecorded,
    /// The order had closed: the money is refunded (or owed back, and
    /// the payments job pays it).
    Refunded,
    /// The attempt was declined; the shopper may try again.
    Declined,
    /// News the order has moved past: a decline after the payment, or
    /// from a provider the shopper left.
    Stale,
}

/// Believes a verified notification: its order must exist and, for a
/// charge, cost exactly what was charged.
pub async fn notified(
    ports: Ports<'_, impl StockGate, impl OrderStore, impl PaymentProvider>,
    notice: &Notice,
    now: DateTime<Utc>,
) -> Result<Noticed, Error> {
    let order = ports
        .ledger
        .get_order(&notice.order_id)
        .await?
        .ok_or(Error::NotFound("order"))?;
    match &notice.event {
        NoticeEvent::Charged {
            transaction_id,
            amount_cents,
        } => {
            check_amount(&order, *amount_cents)?;
            Ok(
                match record_charge(ports, order, notice.method, transaction_id, now).await? {
                    Charged::Paid(_) => Noticed::Paid,
                    Charged::PaidBefore(_) | Charged::RefundedBefore => Noticed::AlreadyRecorded,
                    Charged::Refunded | Charged::RefundOwed => Noticed::Refunded,
                },
            )
        }
        NoticeEvent::Declined { reason } => record_decline(ports.ledger, order, notice, reason, now).await,
    }
}

/// Notes the decline on an order still waiting for that provider. The
/// attempt stays open: the shopper may pay on the same trade again, and
/// if that notification is lost the payments job still asks.
async fn record_decline(
    orders: &impl OrderStore,
    mut current: Order,
    notice: &Notice,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Noticed, Error> {
    for _ in 0..WRITE_ATTEMPTS {
        if current.status != OrderStatus::PendingPayment || current.pay_method != Some(notice.method) {
            return Ok(Noticed::Stale);
        }
        if current.payment_failure.as_deref() == Some(reason) {
            return Ok(Noticed::AlreadyRecorded);
        }
        let next = Order {
            payment_failure: Some(reason.to_owned()),
            ..current.next(now)
        };
        match orders.replace_order(&next, &current).await {
            Ok(()) => return Ok(Noticed::Declined),
            Err(PortError::ConditionFailed) => {
                current = orders.get_order(&current.id).await?.ok_or(Error::NotFound("order"))?;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(Error::Conflict(format!("order {} kept changing", current.id)))
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
            payments::{
                pay,
                tests::{job_time, kept, settle},
            },
        },
        memory::{Fault, Memory, Op},
        model::{PayMethod, RefundStatus},
        ports::{PayAction, PaymentProvider},
    };

    const ALIPAY: PayMethod = PayMethod::Alipay;

    /// A pending order whose shopper chose `method` and was sent to its page.
    async fn sent_to_pay(memory: &Memory, method: PayMethod) -> (String, Order) {
        let (sku, order) = pending(memory, 1).await;
        let payment = pay(memory.ports(), "alice", &order.id, method, None, now())
            .await
            .unwrap();
        assert!(payment.pay_action.is_some(), "{payment:?}");
        assert_eq!(payment.order.status, OrderStatus::PendingPayment);
        (sku, payment.order)
    }

    async fn notify(memory: &Memory, notice: &Notice) -> Result<Noticed, Error> {
        notified(memory.ports(), notice, now()).await
    }

    #[tokio::test]
    async fn each_provider_hands_the_shopper_its_way_to_pay() {
        for (method, kind) in [
            (PayMethod::Alipay, "redirect"),
            (PayMethod::Wechat, "qr_code"),
            (PayMethod::Stripe, "client_secret"),
        ] {
            let memory = Memory::default();
            let (_, order) = sent_to_pay(&memory, method).await;
            let payment = pay(memory.ports(), "alice", &order.id, method, None, now())
                .await
                .unwrap();
            let action = serde_json::to_value(payment.pay_action.unwrap()).unwrap();
            assert_eq!(action["kind"], kind, "{method:?}");
            assert_eq!(payment.order.pay_method, Some(method));
            assert!(payment.order.payment_unsettled(), "the attempt stays open for the job");
        }
    }

    #[tokio::test]
    async fn a_paid_notification_ends_paid_once_however_often_it_comes() {
        let memory = Memory::default();
        let (sku, order) = sent_to_pay(&memory, ALIPAY).await;
        let notice = memory.payments.shopper_pays(ALIPAY, &order.id).unwrap();
        assert_eq!(notify(&memory, &notice).await.unwrap(), Noticed::Paid);
        assert_eq!(notify(&memory, &notice).await.unwrap(), Noticed::AlreadyRecorded);
        let paid = stored(&memory, &order.id).await;
        assert_eq!((paid.status, paid.payment_unsettled()), (OrderStatus::Paid, false));
        assert_eq!(holds(&memory, &sku).await, 0, "confirmed to the gate");
        assert_eq!(kept(&memory), order.price);
        assert_eq!(
            settle(&memory, job_time(now())).await,
            Default::default(),
            "nothing left to settle"
        );
    }

    #[tokio::test]
    async fn a_decline_arriving_after_the_payment_changes_nothing() {
        let memory = Memory::default();
        let (_, order) = sent_to_pay(&memory, ALIPAY).await;
        let declined = memory.payments.shopper_is_declined(ALIPAY, &order.id);
        let paid = memory.payments.shopper_pays(ALIPAY, &order.id).unwrap();
        assert_eq!(notify(&memory, &paid).await.unwrap(), Noticed::Paid);
        assert_eq!(notify(&memory, &declined).await.unwrap(), Noticed::Stale);
        let stored = stored(&memory, &order.id).await;
        assert_eq!((stored.status, stored.payment_failure), (OrderStatus::Paid, None));
    }

    #[tokio::test]
    async fn a_declined_shopper_may_pay_again_on_the_same_trade() {
        let memory = Memory::default();
        let (_, order) = sent_to_pay(&memory, ALIPAY).await;
        let declined = memory.payments.shopper_is_declined(ALIPAY, &order.id);
        assert_eq!(notify(&memory, &declined).await.unwrap(), Noticed::Declined);
        let failed = stored(&memory, &order.id).await;
        assert_eq!(failed.payment_failure.as_deref(), Some("card declined"));
        assert!(
            failed.payment_unsettled(),
            "a later payment's lost notice is still asked for"
        );

        let again = pay(memory.ports(), "alice", &order.id, ALIPAY, None, now())
            .await
            .unwrap();
        assert_eq!(again.order.payment_failure, None);
        let paid = memory.payments.shopper_pays(ALIPAY, &order.id).unwrap();
        assert_eq!(notify(&memory, &paid).await.unwrap(), Noticed::Paid);
    }

    #[tokio::test]
    async fn a_notification_of_another_amount_or_an_unknown_order_changes_nothing() {
        let memory = Memory::default();
        let (_, order) = sent_to_pay(&memory, ALIPAY).await;
        let mut notice = memory.payments.shopper_pays(ALIPAY, &order.id).unwrap();
        let honest = notice.clone();
        let NoticeEvent::Charged { amount_cents, .. } = &mut notice.event else {
            panic!("a charge");
        };
        *amount_cents -= 1;
        let tampered = notify(&memory, &notice).await;
        assert!(matches!(tampered, Err(Error::Validation(_))), "{tampered:?}");
        let unknown = Notice {
            order_id: "no-such-order".into(),
            ..honest.clone()
        };
        assert!(matches!(notify(&memory, &unknown).await, Err(Error::NotFound(_))));
        assert_eq!(stored(&memory, &order.id).await.status, OrderStatus::PendingPayment);
        assert_eq!(notify(&memory, &honest).await.unwrap(), Noticed::Paid);
    }

    #[tokio::test]
    async fn a_notification_lost_for_good_is_recovered_by_the_query() {
        let memory = Memory::default();
        let (_, order) = sent_to_pay(&memory, ALIPAY).await;
        let early = settle(&memory, job_time(now())).await;
        assert_eq!(early.awaiting, 1, "the shopper is still on the page: {early:?}");
        memory.payments.shopper_pays(ALIPAY, &order.id).unwrap();
        let report = settle(&memory, job_time(job_time(now()))).await;
        assert_eq!(report.paid, 1, "{report:?}");
        assert_eq!(stored(&memory, &order.id).await.status, OrderStatus::Paid);
    }

    #[tokio::test]
    async fn a_payment_racing_the_timeout_loses_and_is_refunded_once() {
        let memory = Memory::default();
        let (sku, order) = sent_to_pay(&memory, ALIPAY).await;
        let notice = memory.payments.shopper_pays(ALIPAY, &order.id).unwrap();
        let swept = sweep(memory.ports(), after_deadline(), 100).await.unwrap();
        assert_eq!(swept.timed_out, 1, "{swept:?}");
        assert_eq!(remaining(&memory, &sku).await, 1, "the unit is back on sale");

        assert_eq!(notify(&memory, &notice).await.unwrap(), Noticed::Refunded);
        assert_eq!(notify(&memory, &notice).await.unwrap(), Noticed::AlreadyRecorded);
        let report = settle(&memory, job_time(after_deadline())).await;
        assert_eq!(report.refunded, 0, "{report:?}");
        let closed = stored(&memory, &order.id).await;
        assert_eq!(
            (closed.status, closed.refund_status),
            (OrderStatus::Cancelled, Some(RefundStatus::Refunded))
        );
        assert_eq!(memory.payments.refunds().len(), 1, "refunded once");
        assert_eq!(kept(&memory), 0);
    }

    #[tokio::test]
    async fn a_second_charge_of_a_paid_order_is_refunded_and_the_first_stands() {
        let memory = Memory::default();
        let (_, order) = sent_to_pay(&memory, ALIPAY).await;
        let first = memory.payments.shopper_pays(ALIPAY, &order.id).unwrap();
        assert_eq!(notify(&memory, &first).await.unwrap(), Noticed::Paid);
        // Another provider's trade that could not be closed in time (an
        // Alipay page opened before the switch) is paid as well.
        memory.payments.charge(PayMethod::Wechat, &order.trade()).await.unwrap();
        let second = memory.payments.shopper_pays(PayMethod::Wechat, &order.id).unwrap();
        assert_eq!(notify(&memory, &second).await.unwrap(), Noticed::Refunded);
        assert_eq!(notify(&memory, &second).await.unwrap(), Noticed::AlreadyRecorded);

        let paid = stored(&memory, &order.id).await;
        assert_eq!(paid.status, OrderStatus::Paid);
        let NoticeEvent::Charged { transaction_id, .. } = &first.event else {
            panic!("a charge");
        };
        assert_eq!(paid.transaction_id.as_ref(), Some(transaction_id));
        assert_eq!(memory.payments.refunds().len(), 1, "the second charge, once");
        assert_eq!(kept(&memory), order.price);
        assert!(!paid.payment_unsettled());
    }

    #[tokio::test]
    async fn two_late_charges_of_a_closed_order_are_both_paid_back() {
        let memory = Memory::default();
        let (_, order) = sent_to_pay(&memory, ALIPAY).await;
        memory.payments.charge(PayMethod::Wechat, &order.trade()).await.unwrap();
        let first = memory.payments.shopper_pays(ALIPAY, &order.id).unwrap();
        let second = memory.payments.shopper_pays(PayMethod::Wechat, &order.id).unwrap();
        sweep(memory.ports(), after_deadline(), 100).await.unwrap();
        memory.payments.faults.inject(Op::Refund, 1, Fault::Fail);
        assert_eq!(notify(&memory, &first).await.unwrap(), Noticed::Refunded, "owed");
        let meanwhile = notify(&memory, &second).await;
        assert!(
            matches!(meanwhile, Err(Error::Conflict(_))),
            "the first refund still owed is not forgotten: {meanwhile:?}"
        );
        settle(&memory, job_time(after_deadline())).await;
        assert_eq!(notify(&memory, &second).await.unwrap(), Noticed::Refunded);
        assert_eq!(kept(&memory), 0);
        assert_eq!(memory.payments.refunds().len(), 2);
    }

    #[tokio::test]
    async fn paying_another_way_closes_the_first_trade() {
        let memory = Memory::default();
        let (_, order) = sent_to_pay(&memory, ALIPAY).await;
        let wechat = pay(memory.ports(), "alice", &order.id, PayMethod::Wechat, None, now())
            .await
            .unwrap();
        assert!(
            matches!(wechat.pay_action, Some(PayAction::QrCode { .. })),
            "{wechat:?}"
        );
        assert!(memory.payments.shopper_pays(ALIPAY, &order.id).is_err(), "closed");
        let paid = memory.payments.shopper_pays(PayMethod::Wechat, &order.id).unwrap();
        assert_eq!(notify(&memory, &paid).await.unwrap(), Noticed::Paid);
        assert_eq!(kept(&memory), order.price);
    }

    #[tokio::test]
    async fn paying_another_way_after_the_first_was_paid_keeps_the_first() {
        let memory = Memory::default();
        let (_, order) = sent_to_pay(&memory, ALIPAY).await;
        memory.payments.shopper_pays(ALIPAY, &order.id).unwrap();
        let again = pay(memory.ports(), "alice", &order.id, PayMethod::Wechat, None, now())
            .await
            .unwrap();
        assert_eq!((again.order.status, again.pay_action), (OrderStatus::Paid, None));
        assert_eq!(again.order.pay_method, Some(ALIPAY));
        assert_eq!(kept(&memory), order.price);
    }
}
