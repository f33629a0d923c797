//! Money: paying an order, and the payments job that settles every charge
//! whose answer was lost and every refund still owed.
//!
//! The order records a payment attempt (`payment_started`) before the
//! provider is asked to charge it, and clears it only once the answer is
//! recorded. So whatever dies in between (the function, DynamoDB, the
//! provider's reply), the ledger shows an attempt left open, and the job
//! asks the provider what became of it: charged, it ends in `PAID` if the
//! order is still open and in a refund if not; not charged, the attempt is
//! closed. A refund owed (`refund_status: PENDING`) is retried by the same
//! job until the provider takes it. Charges and refunds are idempotent at
//! the provider, so a job run beside a pay, or twice, moves no money twice.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    WRITE_ATTEMPTS,
    flash_sale::{Viewer, visible_order},
};
use crate::{
    error::Error,
    model::{Order, OrderStatus, Receiver, RefundStatus},
    ports::{ChargeLookup, ChargeOutcome, OrderStore, PaymentProvider, PortError, Ports, StockGate},
};

impl Order {
    fn attempted(&self, ship_to: Option<Receiver>, now: DateTime<Utc>) -> Order {
        let mut next = Order {
            payment_started: Some(self.payment_started.unwrap_or(now)),
            ..self.next(now)
        };
        if let Some(receiver) = ship_to {
            next.receiver_contact = Some(receiver.contact);
            next.receiver_mobile = Some(receiver.mobile);
            next.receiver_address = Some(receiver.address);
        }
        next
    }

    fn paid(&self, transaction_id: &str, now: DateTime<Utc>) -> Order {
        Order {
            status: OrderStatus::Paid,
            pay_time: Some(now),
            transaction_id: Some(transaction_id.to_owned()),
            payment_started: None,
            ..self.next(now)
        }
    }

    /// The attempt ended without a charge: nothing to settle.
    fn uncharged(&self, now: DateTime<Utc>) -> Order {
        Order {
            payment_started: None,
            ..self.next(now)
        }
    }

    fn owing_refund(&self, transaction_id: &str, now: DateTime<Utc>) -> Order {
        Order {
            payment_started: None,
            refund_status: Some(RefundStatus::Pending),
            refund_transaction_id: Some(transaction_id.to_owned()),
            ..self.next(now)
        }
    }
}

/// Pays a pending order. Paying a paid order returns it unchanged.
pub async fn pay(
    ports: Ports<'_, impl StockGate, impl OrderStore, impl PaymentProvider>,
    username: &str,
    order_id: &str,
    ship_to: Option<Receiver>,
    now: DateTime<Utc>,
) -> Result<Order, Error> {
    let attempt = match start_payment(ports.ledger, username, order_id, ship_to, now).await? {
        Started::AlreadyPaid(order) => return Ok(order),
        Started::Attempt(order) => order,
    };
    // A failure here leaves the attempt open for the job to settle.
    let transaction_id = match ports.payments.charge(&attempt.id, attempt.price).await? {
        ChargeOutcome::Approved { transaction_id } => transaction_id,
        ChargeOutcome::Declined(reason) => {
            if let Err(error) = ports.ledger.replace_order(&attempt.uncharged(now), &attempt).await {
                tracing::warn!(order_id, %error, "declined attempt left open; the payments job closes it");
            }
            return Err(Error::PaymentDeclined(reason));
        }
    };
    match record_charge(ports, attempt, &transaction_id, now).await? {
        Charged::Paid(order) | Charged::PaidBefore(order) => Ok(order),
        Charged::Refunded | Charged::RefundedBefore | Charged::RefundOwed => Err(Error::InvalidState(
            "the order was cancelled before the payment completed; the payment is refunded".into(),
        )),
    }
}

enum Started {
    AlreadyPaid(Order),
    Attempt(Order),
}

/// Records the attempt (and where the order ships to) on the order, which
/// must be the shopper's and still payable.
async fn start_payment(
    orders: &impl OrderStore,
    username: &str,
    order_id: &str,
    ship_to: Option<Receiver>,
    now: DateTime<Utc>,
) -> Result<Started, Error> {
    for _ in 0..WRITE_ATTEMPTS {
        let order = visible_order(orders, order_id, Viewer::Shopper(username)).await?;
        match order.status {
            OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Completed => {
                return Ok(Started::AlreadyPaid(order));
            }
            OrderStatus::Cancelled => return Err(Error::InvalidState("the order is cancelled".into())),
            OrderStatus::PendingPayment if now >= order.pay_deadline => return Err(Error::PayDeadlinePassed),
            OrderStatus::PendingPayment => {}
        }
        let attempt = order.attempted(ship_to.clone(), now);
        match orders.replace_order(&attempt, &order).await {
            Ok(()) => return Ok(Started::Attempt(attempt)),
            Err(PortError::ConditionFailed) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(Error::Conflict("the order kept changing while paying; retry".into()))
}

/// What became of a charge once recorded.
#[derive(Debug, Clone, PartialEq)]
enum Charged {
    Paid(Order),
    /// Another pay of the same charge, or another job run, recorded it.
    PaidBefore(Order),
    /// The order had closed meanwhile; the money went back.
    Refunded,
    /// ... and someone else recorded the refund first.
    RefundedBefore,
    /// The order had closed meanwhile; the refund is recorded as owed but
    /// the provider did not take it yet.
    RefundOwed,
}

/// Records a charge the provider approved on the order it was for: `PAID`
/// while the order is open (even just past its deadline, as long as the
/// sweep has not closed it: the unit is still held), a refund if not.
async fn record_charge(
    ports: Ports<'_, impl StockGate, impl OrderStore, impl PaymentProvider>,
    mut current: Order,
    transaction_id: &str,
    now: DateTime<Utc>,
) -> Result<Charged, Error> {
    for _ in 0..WRITE_ATTEMPTS {
        let next = match current.status {
            OrderStatus::PendingPayment => current.paid(transaction_id, now),
            OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Completed
                if current.transaction_id.as_deref() == Some(transaction_id) =>
            {
                return Ok(Charged::PaidBefore(current));
            }
            OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Completed => {
                return Err(Error::InvalidState(format!(
                    "order {} is paid by another transaction than {transaction_id}",
                    current.id
                )));
            }
            OrderStatus::Cancelled if current.refund_transaction_id.as_deref() == Some(transaction_id) => {
                return pay_back(ports, current, now).await;
            }
            OrderStatus::Cancelled => current.owing_refund(transaction_id, now),
        };
        match ports.ledger.replace_order(&next, &current).await {
            Ok(()) if next.status == OrderStatus::Paid => {
                if let Err(error) = ports.gate.confirm(&next.sku_id, &next.username, &next.id).await {
                    tracing::warn!(order_id = %next.id, %error, "confirm failed; the sweep will retry");
                }
                return Ok(Charged::Paid(next));
            }
            Ok(()) => return pay_back(ports, next, now).await,
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
    if let Err(error) = ports
        .payments
        .refund(transaction_id, owed.price, &owed.refund_key())
        .await
    {
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
    /// Settled meanwhile by a pay or an overlapping run.
    pub settled_by_another: u32,
    /// Orders left for the next run: a backend failed, or the provider
    /// did not take a refund yet.
    pub failed: u32,
}

/// The payments job: settles up to `limit` orders whose money is due to be
/// settled by `now` ([`Order::payment_due`]).
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
    match ports.payments.lookup(&order.id).await? {
        ChargeLookup::Charged { transaction_id } => Ok(record_charge(ports, order, &transaction_id, now).await?.into()),
        // The provider's read may lag its books, and the shopper may still
        // pay until the trade expires: only then is "not charged" final.
        ChargeLookup::NotCharged if now < order.pay_window_closes() => {
            match ports.ledger.replace_order(&order.next(now), &order).await {
                Ok(()) => Ok(Settlement::Awaiting),
                Err(PortError::ConditionFailed) => Ok(Settlement::ByAnother),
                Err(error) => Err(error.into()),
            }
        }
        ChargeLookup::NotCharged => match ports.ledger.replace_order(&order.uncharged(now), &order).await {
            Ok(()) => Ok(Settlement::NotCharged),
            // Closed by an overlapping run, or re-opened by a new pay: the
            // next run sees which.
            Err(PortError::ConditionFailed) => Ok(Settlement::ByAnother),
            Err(error) => Err(error.into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::{
        domain::flash_sale::{
            cancel, sweep,
            tests::{after_deadline, holds, now, on_sale, pending, remaining, stored},
        },
        memory::{Fault, Memory, Op},
        model::{PAYMENT_IN_FLIGHT_SECONDS, ReservedUnit},
    };

    /// When the job next runs, past the in-flight window.
    fn job_time(after: DateTime<Utc>) -> DateTime<Utc> {
        after + Duration::seconds(PAYMENT_IN_FLIGHT_SECONDS + 1)
    }

    async fn settle(memory: &Memory, at: DateTime<Utc>) -> PaymentsReport {
        settle_payments(memory.ports(), at, 100).await.unwrap()
    }

    /// The order is cancelled between the pay's two writes: after the one
    /// recording its attempt, before the `PAID` one.
    fn cancel_before_the_paid_write(memory: &Memory, order: &Order) {
        let canceller = memory.ledger.other_writer();
        let id = order.id.clone();
        memory.ledger.faults.before(Op::ReplaceOrder, 2, move || {
            canceller.change_order(&id, |o| o.status = OrderStatus::Cancelled)
        });
    }

    /// Money in the provider's books less money paid back, in cents.
    fn kept(memory: &Memory) -> i64 {
        let charged: std::collections::BTreeMap<String, i64> = memory.payments.charges().into_iter().collect();
        let refunded: i64 = memory.payments.refunds().iter().map(|(_, cents)| cents).sum();
        charged.values().sum::<i64>() - refunded
    }

    #[tokio::test]
    async fn paying_charges_once_marks_paid_and_stops_the_clock() {
        let memory = Memory::default();
        let (sku, order) = pending(&memory, 1).await;
        let paid = pay(memory.ports(), "alice", &order.id, None, now()).await.unwrap();
        assert_eq!(paid.status, OrderStatus::Paid);
        assert_eq!(paid.payment_started, None, "the answer is recorded");
        assert_eq!(holds(&memory, &sku).await, 0);
        let again = pay(memory.ports(), "alice", &order.id, None, now()).await.unwrap();
        assert_eq!(again, paid);
        assert_eq!(memory.payments.charges().len(), 1);
    }

    #[tokio::test]
    async fn paying_late_a_cancelled_or_someone_elses_order_is_refused() {
        let memory = Memory::default();
        let (_, order) = pending(&memory, 1).await;
        let late = pay(memory.ports(), "alice", &order.id, None, after_deadline()).await;
        assert!(matches!(late, Err(Error::PayDeadlinePassed)), "{late:?}");
        let theirs = pay(memory.ports(), "mallory", &order.id, None, now()).await;
        assert!(matches!(theirs, Err(Error::NotFound(_))), "{theirs:?}");
        cancel(memory.ports(), "alice", &order.id, now()).await.unwrap();
        let cancelled = pay(memory.ports(), "alice", &order.id, None, now()).await;
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
        let declined = pay(memory.ports(), "alice", &order.id, None, now()).await;
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
        let lost = pay(memory.ports(), "alice", &order.id, None, now()).await;
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
        let paid = pay(memory.ports(), "alice", &order.id, None, now()).await.unwrap();
        assert_eq!(paid.status, OrderStatus::Paid);
        assert!(memory.payments.refunds().is_empty());
    }

    #[tokio::test]
    async fn a_payment_whose_order_changed_under_it_reads_it_again() {
        let memory = Memory::default();
        let (_, order) = pending(&memory, 1).await;
        memory.ledger.faults.inject(Op::ReplaceOrder, 1, Fault::ConditionFailed);
        memory.ledger.faults.inject(Op::ReplaceOrder, 3, Fault::ConditionFailed);
        let paid = pay(memory.ports(), "alice", &order.id, None, now()).await.unwrap();
        assert_eq!(paid.status, OrderStatus::Paid);
        assert_eq!(memory.payments.charges().len(), 1);
    }

    #[tokio::test]
    async fn a_paid_order_whose_confirm_failed_is_confirmed_by_the_sweep() {
        let memory = Memory::default();
        let (sku, order) = pending(&memory, 1).await;
        memory.gate.faults.inject(Op::Confirm, 1, Fault::Fail);
        pay(memory.ports(), "alice", &order.id, None, now()).await.unwrap();
        assert_eq!(holds(&memory, &sku).await, 1);
        let report = sweep(memory.ports(), after_deadline(), 100).await.unwrap();
        assert_eq!(report.confirmed, 1, "{report:?}");
        assert_eq!((remaining(&memory, &sku).await, holds(&memory, &sku).await), (0, 0));
    }

    // the payments job

    #[tokio::test]
    async fn a_charge_whose_paid_write_failed_is_paid_by_the_job() {
        let memory = Memory::default();
        let (sku, order) = pending(&memory, 1).await;
        memory.ledger.faults.inject(Op::ReplaceOrder, 2, Fault::Fail);
        let lost = pay(memory.ports(), "alice", &order.id, None, now()).await;
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
        pay(memory.ports(), "alice", &order.id, None, now()).await.unwrap_err();
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
        pay(memory.ports(), "alice", &order.id, None, now()).await.unwrap_err();
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
        pay(memory.ports(), "alice", &order.id, None, now()).await.unwrap_err();
        let report = settle(&memory, job_time(now())).await;
        assert_eq!(report.paid, 1, "{report:?}");
        assert_eq!(kept(&memory), order.price);
    }

    #[tokio::test]
    async fn a_lagging_not_charged_answer_leaves_the_attempt_open_for_the_next_run() {
        let memory = Memory::default();
        let (_, order) = pending(&memory, 1).await;
        memory.payments.faults.inject(Op::Charge, 1, Fault::LoseReply);
        pay(memory.ports(), "alice", &order.id, None, now()).await.unwrap_err();
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
        let lost = pay(memory.ports(), "alice", &order.id, None, now()).await;
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
        pay(memory.ports(), "alice", &order.id, None, now()).await.unwrap_err();

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
        pay(memory.ports(), "alice", &order.id, None, now()).await.unwrap_err();
        memory.payments.faults.inject(Op::Lookup, 1, Fault::Fail);
        assert_eq!(settle(&memory, job_time(now())).await.failed, 1);
        assert_eq!(settle(&memory, job_time(now())).await.paid, 1);
    }
}
