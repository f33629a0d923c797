//! Returns: a shopper asks to send a delivered order back within its SKU's
//! window; the operator, once the goods are back, accepts (the payment goes
//! back through the provider that took it) or refuses (the order is
//! `COMPLETED` again, with the reason).

use chrono::{DateTime, Duration, Utc};

use super::{WRITE_ATTEMPTS, pay_back};
use crate::{
    domain::flash_sale::{Viewer, visible_order},
    error::Error,
    model::{DEFAULT_RETURN_DAYS, Order, OrderStatus, PayType, RefundStatus},
    ports::{OrderStore, PaymentProvider, PortError, Ports, SkuStore},
    validate,
};

/// The longest reason either side may give.
const MAX_REASON_CHARS: usize = 200;

/// The owner asks to return a completed order, within the return window
/// its SKU sets from the day it was received.
pub async fn request_return(
    ledger: &(impl OrderStore + SkuStore),
    username: &str,
    order_id: &str,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<Order, Error> {
    validate::optional_length("reason", reason.as_deref(), MAX_REASON_CHARS)?;
    let order = visible_order(ledger, order_id, Viewer::Shopper(username)).await?;
    match order.status {
        OrderStatus::ReturnRequested => return Ok(order),
        OrderStatus::Completed => {}
        status => {
            return Err(Error::InvalidState(format!(
                "a {} order cannot be returned; only a received one",
                status.as_str()
            )));
        }
    }
    let days = match ledger.get_sku(&order.sku_id).await? {
        Some(sku) => sku.fields.return_days,
        None => DEFAULT_RETURN_DAYS,
    };
    let received = order.end_time.unwrap_or(order.update_time);
    let closes = received + Duration::days(i64::from(days));
    if now >= closes {
        return Err(Error::InvalidState(match days {
            0 => "this item takes no returns".into(),
            _ => format!("its {days}-day return window closed at {}", crate::ts::format(&closes)),
        }));
    }
    let requested = Order {
        status: OrderStatus::ReturnRequested,
        return_time: Some(now),
        return_reason: reason,
        return_refusal: None,
        ..order.next(now)
    };
    replaced(ledger, &requested, &order).await
}

/// The operator refuses a requested return: the order is `COMPLETED`
/// again, and its shopper sees why.
pub async fn refuse_return(
    orders: &impl OrderStore,
    order_id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Order, Error> {
    validate::length("reason", reason, 1..=MAX_REASON_CHARS)?;
    let order = visible_order(orders, order_id, Viewer::Operator).await?;
    if order.status == OrderStatus::Completed && order.return_refusal.as_deref() == Some(reason) {
        return Ok(order);
    }
    if order.status != OrderStatus::ReturnRequested {
        return Err(not_requested(&order));
    }
    let refused = Order {
        status: OrderStatus::Completed,
        return_refusal: Some(reason.to_owned()),
        ..order.next(now)
    };
    replaced(orders, &refused, &order).await
}

/// The operator has the goods back and accepts the return: the order is
/// `RETURNED` and its payment owed back, paid back at once through the
/// provider that took it (or by the payments job if the provider does not
/// answer). Cash collected on delivery is handed back by the operator, who
/// records so by accepting.
pub async fn accept_return(
    ports: Ports<'_, impl Sync, impl OrderStore, impl PaymentProvider>,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<Order, Error> {
    for _ in 0..WRITE_ATTEMPTS {
        let order = visible_order(ports.ledger, order_id, Viewer::Operator).await?;
        let returned = match order.status {
            OrderStatus::Returned => return Ok(order),
            OrderStatus::ReturnRequested => returned(&order, now)?,
            _ => return Err(not_requested(&order)),
        };
        match ports.ledger.replace_order(&returned, &order).await {
            Ok(()) if returned.refund_status == Some(RefundStatus::Pending) => {
                pay_back(ports, returned, now).await?;
                return visible_order(ports.ledger, order_id, Viewer::Operator).await;
            }
            Ok(()) => return Ok(returned),
            Err(PortError::ConditionFailed) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(Error::Conflict(
        "the order kept changing while accepting its return; retry".into(),
    ))
}

/// The order taken back, with what it owes.
fn returned(order: &Order, now: DateTime<Utc>) -> Result<Order, Error> {
    // The order holds one refund at a time (a late second charge paid
    // back): the return waits until that one is paid, or it would be
    // forgotten.
    if order.refund_status == Some(RefundStatus::Pending) {
        return Err(Error::Conflict(
            "the order is still paying back another charge; accept the return again shortly".into(),
        ));
    }
    let owed = match (order.pay_type, &order.transaction_id) {
        (PayType::CashOnDelivery, _) => Order {
            refund_status: Some(RefundStatus::Refunded),
            ..order.next(now)
        },
        (PayType::Online, Some(transaction_id)) => order.owing_refund(order.attempt_method(), transaction_id, now),
        (PayType::Online, None) => {
            return Err(Error::InvalidState(format!(
                "order {} was paid online but records no transaction",
                order.id
            )));
        }
    };
    Ok(Order {
        status: OrderStatus::Returned,
        ..owed
    })
}

fn not_requested(order: &Order) -> Error {
    Error::InvalidState(format!(
        "the order is {}; only a return requested can be decided",
        order.status.as_str()
    ))
}

async fn replaced(orders: &impl OrderStore, next: &Order, current: &Order) -> Result<Order, Error> {
    match orders.replace_order(next, current).await {
        Ok(()) => Ok(next.clone()),
        Err(PortError::ConditionFailed) => Err(Error::Conflict("the order changed concurrently; retry".into())),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{
            flash_sale::{
                Fulfilment, advance,
                tests::{now, pending, stored},
            },
            payments::{
                pay, pay_on_delivery,
                tests::{job_time, kept, pay_sandbox, settle},
            },
        },
        memory::{Fault, Memory, Op},
        model::{PayMethod, PayStatus, SeedOrderStatus},
        ports::SkuStore,
        ports::{Notice, PaymentProvider},
    };

    /// An order `alice` paid with the sandbox, shipped and received.
    async fn received(memory: &Memory) -> Order {
        let (_, order) = pending(memory, 1).await;
        pay_sandbox(memory, "alice", &order.id, now()).await.unwrap();
        deliver(memory, &order.id, Fulfilment::Receive).await
    }

    async fn deliver(memory: &Memory, order_id: &str, last: Fulfilment) -> Order {
        advance(&memory.ledger, order_id, Viewer::Operator, Fulfilment::Ship, now())
            .await
            .unwrap();
        let viewer = match last {
            Fulfilment::Receive => Viewer::Shopper("alice"),
            _ => Viewer::Operator,
        };
        advance(&memory.ledger, order_id, viewer, last, now()).await.unwrap()
    }

    async fn ask(memory: &Memory, order_id: &str, at: DateTime<Utc>) -> Result<Order, Error> {
        request_return(&memory.ledger, "alice", order_id, Some("too small".into()), at).await
    }

    #[tokio::test]
    async fn cash_on_delivery_ships_unpaid_and_is_paid_when_collected() {
        let memory = Memory::default();
        let (_, order) = pending(&memory, 1).await;
        let confirmed = pay_on_delivery(memory.ports(), "alice", &order.id, None, now())
            .await
            .unwrap();
        assert_eq!(
            (confirmed.status, confirmed.pay_type, confirmed.columns().pay_status),
            (OrderStatus::Confirmed, PayType::CashOnDelivery, PayStatus::Unpaid)
        );
        assert!(!confirmed.payment_unsettled() && !confirmed.holds_charge());
        let again = pay_on_delivery(memory.ports(), "alice", &order.id, None, now())
            .await
            .unwrap();
        assert_eq!(again, confirmed, "idempotent");

        advance(&memory.ledger, &order.id, Viewer::Operator, Fulfilment::Ship, now())
            .await
            .unwrap();
        let receive = advance(
            &memory.ledger,
            &order.id,
            Viewer::Shopper("alice"),
            Fulfilment::Receive,
            now(),
        )
        .await;
        assert!(matches!(receive, Err(Error::InvalidState(_))), "{receive:?}");
        let collected = advance(&memory.ledger, &order.id, Viewer::Operator, Fulfilment::Collect, now())
            .await
            .unwrap();
        assert_eq!(collected.status, OrderStatus::Completed);
        assert_eq!(collected.columns().pay_status, PayStatus::Paid);
        assert!(memory.payments.charges().is_empty(), "no provider took money");
    }

    /// An order sent to Alipay's cashier, then confirmed cash on delivery.
    async fn cashier_then_cash(memory: &Memory) -> Order {
        let (_, order) = pending(memory, 1).await;
        pay(memory.ports(), "alice", &order.id, PayMethod::Alipay, None, now())
            .await
            .unwrap();
        pay_on_delivery(memory.ports(), "alice", &order.id, None, now())
            .await
            .unwrap();
        order
    }

    #[tokio::test]
    async fn choosing_cash_on_delivery_closes_an_open_online_trade() {
        let memory = Memory::default();
        let order = cashier_then_cash(&memory).await;
        assert!(
            memory.payments.shopper_pays(PayMethod::Alipay, &order.id).is_err(),
            "closed"
        );
        assert_eq!(stored(&memory, &order.id).await.status, OrderStatus::Confirmed);
    }

    /// An order confirmed cash on delivery, and the notification of a
    /// WeChat Pay QR code shown before and paid after all: a trade the
    /// order no longer names, so choosing cash on delivery cannot close it.
    async fn cash_then_a_late_code(memory: &Memory) -> (Order, Notice) {
        let (_, order) = pending(memory, 1).await;
        memory.payments.charge(PayMethod::Wechat, &order.trade()).await.unwrap();
        pay_on_delivery(memory.ports(), "alice", &order.id, None, now())
            .await
            .unwrap();
        let late = memory.payments.shopper_pays(PayMethod::Wechat, &order.id).unwrap();
        (order, late)
    }

    #[tokio::test]
    async fn an_online_payment_after_cash_on_delivery_was_chosen_is_paid_back() {
        let memory = Memory::default();
        let (order, late) = cash_then_a_late_code(&memory).await;
        let noticed = crate::domain::payments::notified(memory.ports(), &late, now()).await;
        assert_eq!(noticed.unwrap(), crate::domain::payments::Noticed::Refunded);
        settle(&memory, job_time(now())).await;
        assert_eq!(kept(&memory), 0, "no money kept for a cash order");
        assert_eq!(stored(&memory, &order.id).await.status, OrderStatus::Confirmed);
    }

    #[tokio::test]
    async fn a_charge_after_cash_on_delivery_whose_notice_is_lost_is_found_and_paid_back() {
        let memory = Memory::default();
        let order = cashier_then_cash(&memory).await;
        // Alipay opens its trade only when the cashier page is: the page
        // shown before is paid after the close found nothing to close, and
        // its notification never arrives.
        memory
            .payments
            .page_opened_late(PayMethod::Alipay, &order.id, order.price);
        memory.payments.shopper_pays(PayMethod::Alipay, &order.id).unwrap();
        settle(&memory, job_time(now())).await;
        assert_eq!(kept(&memory), 0, "the job asked Alipay and paid it back");
        assert_eq!(stored(&memory, &order.id).await.status, OrderStatus::Confirmed);
    }

    #[tokio::test]
    async fn a_returned_order_is_refunded_once_through_its_provider() {
        let memory = Memory::default();
        let order = received(&memory).await;
        let asked = ask(&memory, &order.id, now()).await.unwrap();
        assert_eq!(asked.status, OrderStatus::ReturnRequested);
        assert_eq!(ask(&memory, &order.id, now()).await.unwrap(), asked, "idempotent");
        let returned = accept_return(memory.ports(), &order.id, now()).await.unwrap();
        assert_eq!(
            (returned.status, returned.refund_status, returned.columns().order_status),
            (
                OrderStatus::Returned,
                Some(RefundStatus::Refunded),
                SeedOrderStatus::Returned
            )
        );
        assert_eq!(accept_return(memory.ports(), &order.id, now()).await.unwrap(), returned);
        assert_eq!(memory.payments.refunds().len(), 1);
        assert_eq!(kept(&memory), 0);
    }

    #[tokio::test]
    async fn a_return_whose_refund_failed_is_paid_back_by_the_job() {
        let memory = Memory::default();
        let order = received(&memory).await;
        ask(&memory, &order.id, now()).await.unwrap();
        memory.payments.faults.inject(Op::Refund, 1, Fault::LoseReply);
        let owed = accept_return(memory.ports(), &order.id, now()).await.unwrap();
        assert_eq!(owed.refund_status, Some(RefundStatus::Pending));
        let report = settle(&memory, now()).await;
        assert_eq!(report.refunded, 1, "{report:?}");
        assert_eq!(kept(&memory), 0, "paid back once despite the lost reply");
    }

    #[tokio::test]
    async fn a_return_is_refused_outside_its_window_or_before_delivery() {
        let memory = Memory::default();
        let (sku_id, order) = pending(&memory, 1).await;
        pay_sandbox(&memory, "alice", &order.id, now()).await.unwrap();
        let early = ask(&memory, &order.id, now()).await;
        assert!(matches!(early, Err(Error::InvalidState(_))), "{early:?}");
        deliver(&memory, &order.id, Fulfilment::Receive).await;
        let late = ask(&memory, &order.id, now() + Duration::days(7)).await;
        assert!(matches!(late, Err(Error::InvalidState(_))), "{late:?}");

        let mut sku = memory.ledger.get_sku(&sku_id).await.unwrap().unwrap();
        sku.fields.return_days = 0;
        memory.ledger.put_sku(&sku).await.unwrap();
        let none = ask(&memory, &order.id, now()).await;
        assert!(
            matches!(none, Err(Error::InvalidState(ref m)) if m.contains("no returns")),
            "{none:?}"
        );
        let theirs = request_return(&memory.ledger, "mallory", &order.id, None, now()).await;
        assert!(matches!(theirs, Err(Error::NotFound(_))), "{theirs:?}");
    }

    #[tokio::test]
    async fn a_refused_return_completes_the_order_again_with_the_reason() {
        let memory = Memory::default();
        let order = received(&memory).await;
        ask(&memory, &order.id, now()).await.unwrap();
        let refused = refuse_return(&memory.ledger, &order.id, "worn", now()).await.unwrap();
        assert_eq!(
            (refused.status, refused.return_refusal.as_deref()),
            (OrderStatus::Completed, Some("worn"))
        );
        let accept = accept_return(memory.ports(), &order.id, now()).await;
        assert!(matches!(accept, Err(Error::InvalidState(_))), "{accept:?}");
        assert_eq!(kept(&memory), order.price, "the money stays");
    }

    #[tokio::test]
    async fn a_cash_on_delivery_return_leaves_a_late_charge_still_owed_back() {
        let memory = Memory::default();
        let (order, late) = cash_then_a_late_code(&memory).await;
        memory.payments.faults.inject(Op::Refund, 1, Fault::Fail);
        crate::domain::payments::notified(memory.ports(), &late, now())
            .await
            .unwrap();
        deliver(&memory, &order.id, Fulfilment::Collect).await;
        ask(&memory, &order.id, now()).await.unwrap();
        let meanwhile = accept_return(memory.ports(), &order.id, now()).await;
        assert!(matches!(meanwhile, Err(Error::Conflict(_))), "{meanwhile:?}");
        settle(&memory, job_time(now())).await;
        accept_return(memory.ports(), &order.id, now()).await.unwrap();
        assert_eq!(kept(&memory), 0, "the late charge was paid back");
    }

    #[tokio::test]
    async fn a_step_is_refused_for_the_wrong_kind_of_order_even_once_taken() {
        let memory = Memory::default();
        let order = received(&memory).await;
        let collect = advance(&memory.ledger, &order.id, Viewer::Operator, Fulfilment::Collect, now()).await;
        assert!(matches!(collect, Err(Error::InvalidState(_))), "{collect:?}");
        let cod = Memory::default();
        let (_, cash) = pending(&cod, 1).await;
        pay_on_delivery(cod.ports(), "alice", &cash.id, None, now())
            .await
            .unwrap();
        deliver(&cod, &cash.id, Fulfilment::Collect).await;
        let receive = advance(
            &cod.ledger,
            &cash.id,
            Viewer::Shopper("alice"),
            Fulfilment::Receive,
            now(),
        )
        .await;
        assert!(matches!(receive, Err(Error::InvalidState(_))), "{receive:?}");
    }

    #[tokio::test]
    async fn a_cash_on_delivery_return_is_handed_back_by_the_operator() {
        let memory = Memory::default();
        let (_, order) = pending(&memory, 1).await;
        pay_on_delivery(memory.ports(), "alice", &order.id, None, now())
            .await
            .unwrap();
        deliver(&memory, &order.id, Fulfilment::Collect).await;
        ask(&memory, &order.id, now()).await.unwrap();
        let returned = accept_return(memory.ports(), &order.id, now()).await.unwrap();
        assert_eq!(
            (returned.status, returned.refund_status),
            (OrderStatus::Returned, Some(RefundStatus::Refunded))
        );
        assert!(memory.payments.refunds().is_empty(), "no provider held it");
    }
}
