//! WeChat Pay API v3 end to end against its stand-in
//! (`local_server::wechat`), which verifies our signed requests, signs its
//! answers, and sends notifications sealed with the APIv3 key and signed,
//! until a 2xx answers them: paying on the page the QR code opens ends
//! `PAID` once; forged, expired, probing, amount-tampered and unsigned
//! notifications are refused with `{"code": "FAIL"}` and change nothing;
//! a notification lost for good is recovered by the job's query; a payment
//! after the timeout is refunded once by its `out_refund_no`; paying
//! another way closes the WeChat Pay trade.

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use chrono::Utc;
use integration_tests::{Reply, TestApp, notify_port};
use local_server::wechat::WechatStandIn;
use serde_json::json;
use shared::{
    config::Config,
    domain::{flash_sale, payments},
    model::{Order, OrderStatus, PAYMENT_IN_FLIGHT_SECONDS, PayMethod, RefundStatus},
    ports::PaymentProvider,
};

async fn wechat_app() -> (TestApp, WechatStandIn) {
    let (listener, notify_url) = notify_port("wechat").await;
    let (standin, keys) = WechatStandIn::with_merchant(&notify_url).await.unwrap();
    let t = TestApp::serving(listener, |config: &mut Config| config.wechat = Some(keys)).await;
    (t, standin)
}

/// Pays with WeChat Pay through the API: what the QR code says.
async fn pay_with_wechat(t: &TestApp, order: &Order, shopper: &str) -> String {
    let reply = t.pay_with(&order.id, shopper, "wechat").await;
    assert_eq!(reply.body["pay_action"]["kind"], "qr_code", "{}", reply.body);
    reply.body["pay_action"]["code_url"].as_str().unwrap().to_owned()
}

/// The shopper scans the code and pays on the page it opens.
async fn scan_and_pay(code_url: &str) -> String {
    let http = reqwest::Client::new();
    let page = http.get(code_url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("id=\"pay\"") || page.contains("id=\"status\""), "{page}");
    let paid = http.post(format!("{code_url}/pay")).send().await.unwrap();
    paid.text().await.unwrap()
}

async fn notify(t: &TestApp, (headers, body): (Vec<(&'static str, String)>, String)) -> Reply {
    let mut request = Request::post("/payments/wechat/notify");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    t.send(request.body(Body::from(body)).unwrap()).await
}

#[tokio::test]
async fn paying_by_qr_code_ends_paid_once() {
    let (t, _standin) = wechat_app().await;
    let (order, shopper) = t.grabbed_by("wechat-shopper", 900).await;
    let code_url = pay_with_wechat(&t, &order, &shopper).await;
    assert!(scan_and_pay(&code_url).await.contains("SUCCESS"));
    let paid = t.order_once(&order.id, |o| o.status == OrderStatus::Paid).await;
    assert!(paid.transaction_id.as_deref().is_some_and(|id| id.starts_with("4200")));
    let again = t.pay_with(&order.id, &shopper, "wechat").await;
    assert_eq!(again.body["status"], "PAID", "paying a paid order answers it as it is");
}

#[tokio::test]
async fn forged_expired_probing_and_tampered_notifications_change_nothing() {
    let (t, standin) = wechat_app().await;
    standin.lose_notifications();
    let (order, shopper) = t.grabbed_by("wechat-shopper", 900).await;
    let code_url = pay_with_wechat(&t, &order, &shopper).await;
    scan_and_pay(&code_url).await;
    let now = Utc::now().timestamp();
    let forger = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let honest = || standin.notification(&order.id, None, now, |_| {}).unwrap();
    let probe = {
        let (mut headers, body) = honest();
        for (name, value) in &mut headers {
            if *name == "wechatpay-signature" {
                *value = format!("WECHATPAY/SIGNTEST/{value}");
            }
        }
        (headers, body)
    };
    let unsigned = {
        let (headers, body) = honest();
        (
            headers
                .into_iter()
                .filter(|(name, _)| *name != "wechatpay-signature")
                .collect(),
            body,
        )
    };
    let refused = [
        (
            "forged",
            standin.notification(&order.id, Some(&forger), now, |_| {}).unwrap(),
        ),
        (
            "expired",
            standin.notification(&order.id, None, now - 301, |_| {}).unwrap(),
        ),
        ("probe", probe),
        ("unsigned", unsigned),
        (
            "cheaper",
            standin
                .notification(&order.id, None, now, |transaction| {
                    transaction["amount"]["total"] = json!(1)
                })
                .unwrap(),
        ),
    ];
    for (what, notification) in refused {
        let reply = notify(&t, notification).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{what}: {}", reply.body);
        assert_eq!(reply.body["code"], "FAIL", "{what}");
    }
    assert_eq!(t.order(&order.id).await.status, OrderStatus::PendingPayment);
    let believed = notify(&t, honest()).await;
    assert_eq!(believed.status, StatusCode::NO_CONTENT, "{}", believed.body);
    assert_eq!(t.order(&order.id).await.status, OrderStatus::Paid);
}

#[tokio::test]
async fn a_notification_lost_for_good_is_recovered_by_the_query() {
    let (t, standin) = wechat_app().await;
    standin.lose_notifications();
    let (order, shopper) = t.grabbed_by("wechat-shopper", 900).await;
    let code_url = pay_with_wechat(&t, &order, &shopper).await;
    scan_and_pay(&code_url).await;
    let later = Utc::now() + chrono::Duration::seconds(PAYMENT_IN_FLIGHT_SECONDS + 1);
    let report = payments::settle_payments(t.app.ports(), later, 100).await.unwrap();
    assert_eq!(report.paid, 1, "{report:?}");
    assert_eq!(t.order(&order.id).await.status, OrderStatus::Paid);
}

#[tokio::test]
async fn a_payment_after_the_timeout_is_refunded_once_by_its_refund_number() {
    let (t, standin) = wechat_app().await;
    let (order, shopper) = t.grabbed_by("wechat-shopper", 60).await;
    let code_url = pay_with_wechat(&t, &order, &shopper).await;
    let swept = flash_sale::sweep(t.app.ports(), order.pay_deadline + chrono::Duration::seconds(1), 100)
        .await
        .unwrap();
    assert_eq!(swept.timed_out, 1, "{swept:?}");
    scan_and_pay(&code_url).await;
    let refunded = t
        .order_once(&order.id, |o| o.refund_status == Some(RefundStatus::Refunded))
        .await;
    assert_eq!(standin.refunds(&order.id).len(), 1);
    let transaction = refunded.refund_transaction_id.clone().unwrap();
    let key = refunded.refund_key(&transaction);
    t.app
        .ports()
        .payments
        .refund(PayMethod::Wechat, &transaction, order.price, &key)
        .await
        .unwrap();
    assert_eq!(
        standin.refunds(&order.id).values().sum::<i64>(),
        order.price,
        "paid once"
    );
}

#[tokio::test]
async fn paying_another_way_closes_the_wechat_trade() {
    let (t, _standin) = wechat_app().await;
    let (order, shopper) = t.grabbed_by("wechat-shopper", 900).await;
    let code_url = pay_with_wechat(&t, &order, &shopper).await;
    let sandbox = t.pay_with(&order.id, &shopper, "sandbox").await;
    assert_eq!(sandbox.body["status"], "PAID", "{}", sandbox.body);
    assert!(scan_and_pay(&code_url).await.contains("cannot be paid"));
}
