//! Alipay end to end against its stand-in (`local_server::alipay`), which
//! verifies our RSA2-signed requests, keeps its own books, shows the
//! cashier page and sends signed notifications until answered `success`:
//! paying on the cashier page ends `PAID` once; a notification lost for
//! good is recovered by the payments job's query; forged, tampered,
//! unsigned and foreign notifications are refused with `fail` and change
//! nothing; a payment landing after the timeout is refunded once, by its
//! `out_request_no`; paying another way closes the Alipay trade.

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use chrono::Utc;
use integration_tests::{TestApp, notify_port};
use local_server::alipay::AlipayStandIn;
use serde_json::{Value, json};
use shared::{
    config::Config,
    domain::{flash_sale, payments},
    model::{Order, OrderStatus, PAYMENT_IN_FLIGHT_SECONDS, PayMethod, RefundStatus},
    ports::{PaymentProvider, Ports},
};

/// A fresh namespace that takes Alipay through its own stand-in, served
/// on loopback where the stand-in sends its notifications.
async fn alipay_app() -> (TestApp, AlipayStandIn) {
    let (listener, notify_url) = notify_port("alipay").await;
    let (standin, keys) = AlipayStandIn::with_app(&notify_url).await.unwrap();
    let t = TestApp::serving(listener, |config: &mut Config| config.alipay = Some(keys)).await;
    (t, standin)
}

/// Pays with Alipay through the API: the cashier page's address.
async fn pay_with_alipay(t: &TestApp, order: &Order, shopper: &str) -> String {
    let reply = t.pay_with(&order.id, shopper, "alipay").await;
    assert_eq!(reply.body["status"], "PENDING_PAYMENT");
    assert_eq!(reply.body["pay_action"]["kind"], "redirect", "{}", reply.body);
    reply.body["pay_action"]["url"].as_str().unwrap().to_owned()
}

/// The shopper opens the cashier page (Alipay opens the trade) and, if
/// `pays`, pays there: the page's text.
async fn at_the_cashier(standin: &AlipayStandIn, url: &str, order: &Order, pays: bool) -> String {
    let http = reqwest::Client::new();
    let page = http.get(url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(&order.id) || page.contains("id=\"status\""), "{page}");
    if !pays {
        return page;
    }
    let pay = standin.gateway().replace("/gateway.do", "/cashier/pay");
    http.post(pay)
        .form(&[("out_trade_no", order.id.as_str())])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Posts a notification body as Alipay does: the answer's text, checked
/// against its status (`success` with a 200, `fail` with a 400).
async fn notify(t: &TestApp, body: String) -> Value {
    let request = Request::post("/payments/alipay/notify")
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .body(Body::from(body))
        .unwrap();
    let reply = t.send(request).await;
    let expected = match reply.status {
        StatusCode::OK => json!("success"),
        _ => json!("fail"),
    };
    assert_eq!(reply.body, expected, "{}", reply.status);
    assert!(matches!(reply.status.as_u16(), 200 | 400), "{}", reply.status);
    reply.body
}

#[tokio::test]
async fn paying_at_the_cashier_ends_paid_once() {
    let (t, standin) = alipay_app().await;
    let (order, shopper) = t.grabbed_by("alipay-shopper", 900).await;
    let url = pay_with_alipay(&t, &order, &shopper).await;
    assert!(url.starts_with(&standin.gateway()), "{url}");
    let paid_page = at_the_cashier(&standin, &url, &order, true).await;
    assert!(paid_page.contains("TRADE_SUCCESS"), "{paid_page}");
    let paid = t.order_once(&order.id, |o| o.status == OrderStatus::Paid).await;
    assert!(paid.transaction_id.is_some() && !paid.payment_unsettled());

    // Alipay sends it again: `success`, and nothing changes.
    let again = standin.notification_signed_by(&order.id, None, |_| {}).unwrap();
    assert_eq!(notify(&t, again).await, json!("success"));
    assert_eq!(t.order(&order.id).await, paid);
}

#[tokio::test]
async fn forged_tampered_unsigned_and_foreign_notifications_change_nothing() {
    let (t, standin) = alipay_app().await;
    let (order, shopper) = t.grabbed_by("alipay-shopper", 900).await;
    let url = pay_with_alipay(&t, &order, &shopper).await;
    standin.lose_notifications();
    at_the_cashier(&standin, &url, &order, true).await;

    let forger = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let set = |name: &'static str, value: &'static str| {
        move |pairs: &mut Vec<(String, String)>| {
            pairs.retain(|(k, _)| k != name);
            pairs.push((name.into(), value.into()));
        }
    };
    let refused = [
        (
            "forged",
            standin.notification_signed_by(&order.id, Some(&forger), |_| {}),
        ),
        (
            "cheaper",
            standin.notification_signed_by(&order.id, None, set("total_amount", "0.01")),
        ),
        (
            "another app",
            standin.notification_signed_by(&order.id, None, set("app_id", "2021999999999999")),
        ),
        (
            "unsigned",
            standin
                .notification_signed_by(&order.id, None, |_| {})
                .map(|body| body.split("&sign=").next().unwrap().to_owned()),
        ),
    ];
    for (what, body) in refused {
        assert_eq!(notify(&t, body.unwrap()).await, json!("fail"), "{what}");
    }
    assert_eq!(t.order(&order.id).await.status, OrderStatus::PendingPayment);
    let honest = standin.notification_signed_by(&order.id, None, |_| {}).unwrap();
    assert_eq!(notify(&t, honest).await, json!("success"));
    assert_eq!(t.order(&order.id).await.status, OrderStatus::Paid);
}

#[tokio::test]
async fn a_notification_lost_for_good_is_recovered_by_the_query() {
    let (t, standin) = alipay_app().await;
    standin.lose_notifications();
    let (order, shopper) = t.grabbed_by("alipay-shopper", 900).await;
    let url = pay_with_alipay(&t, &order, &shopper).await;
    let later = Utc::now() + chrono::Duration::seconds(PAYMENT_IN_FLIGHT_SECONDS + 1);
    let before = payments::settle_payments(t.app.ports(), later, 100).await.unwrap();
    assert_eq!(
        before.awaiting, 1,
        "no trade until the shopper opens the page: {before:?}"
    );
    at_the_cashier(&standin, &url, &order, true).await;
    let after = payments::settle_payments(t.app.ports(), later + chrono::Duration::minutes(2), 100)
        .await
        .unwrap();
    assert_eq!(after.paid, 1, "{after:?}");
    assert_eq!(t.order(&order.id).await.status, OrderStatus::Paid);
}

#[tokio::test]
async fn a_payment_after_the_timeout_is_refunded_once_by_its_request_number() {
    let (t, standin) = alipay_app().await;
    let (order, shopper) = t.grabbed_by("alipay-shopper", 60).await;
    let url = pay_with_alipay(&t, &order, &shopper).await;
    at_the_cashier(&standin, &url, &order, false).await;
    let swept = flash_sale::sweep(t.app.ports(), order.pay_deadline + chrono::Duration::seconds(1), 100)
        .await
        .unwrap();
    assert_eq!(swept.timed_out, 1, "{swept:?}");
    at_the_cashier(&standin, &url, &order, true).await;
    let refunded = t
        .order_once(&order.id, |o| o.refund_status == Some(RefundStatus::Refunded))
        .await;
    assert_eq!(refunded.status, OrderStatus::Cancelled);
    let refunds = standin.refunds(&order.id);
    assert_eq!(
        refunds.values().copied().collect::<Vec<_>>(),
        [order.price],
        "{refunds:?}"
    );

    // A refund asked again after a lost reply: the same request number.
    let transaction = refunded.refund_transaction_id.clone().unwrap();
    let key = refunded.refund_key(&transaction);
    assert!(refunds.contains_key(&key));
    let ports: Ports<'_, _, _, _> = t.app.ports();
    ports
        .payments
        .refund(PayMethod::Alipay, &transaction, order.price, &key)
        .await
        .unwrap();
    assert_eq!(standin.refunds(&order.id).len(), 1, "paid once");
}

#[tokio::test]
async fn paying_another_way_closes_the_alipay_trade() {
    let (t, standin) = alipay_app().await;
    let (order, shopper) = t.grabbed_by("alipay-shopper", 900).await;
    let url = pay_with_alipay(&t, &order, &shopper).await;
    at_the_cashier(&standin, &url, &order, false).await;
    let sandbox = t.pay_with(&order.id, &shopper, "sandbox").await;
    assert_eq!(sandbox.body["status"], "PAID", "{}", sandbox.body);
    let refused = at_the_cashier(&standin, &url, &order, true).await;
    assert!(refused.contains("cannot be paid"), "{refused}");
    assert!(standin.refunds(&order.id).is_empty());
}
