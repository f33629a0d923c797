//! Stripe end to end against `localstripe` (a stateful stand-in that keeps
//! its own books and sends signed webhooks): the shopper pays with the
//! client secret the pay route hands out, the webhook arrives at
//! `POST /payments/stripe/notify` and the order ends `PAID` once; a
//! webhook that never arrives is recovered by the payments job's query; a
//! payment that lands after the timeout is refunded through Stripe; and
//! forged, expired, replayed and amount-tampered webhooks change nothing.

use std::sync::OnceLock;

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use chrono::Utc;
use hmac::{Hmac, Mac};
use integration_tests::{TestApp, notify_port};
use local_server::{
    services::{LOCALSTRIPE_SECRET_KEY, LocalStripe},
    stripe_js::StripeJsStandIn,
};
use serde_json::{Value, json};
use sha2::Sha256;
use shared::{
    config::Config,
    domain::{flash_sale, payments},
    model::{Order, OrderStatus, PAYMENT_IN_FLIGHT_SECONDS, RefundStatus},
};

const WEBHOOK_SECRET: &str = "whsec_integration_tests";

/// One localstripe for the test binary.
fn localstripe() -> &'static LocalStripe {
    static STRIPE: OnceLock<LocalStripe> = OnceLock::new();
    STRIPE.get_or_init(|| LocalStripe::start().expect("start localstripe (scripts/install-deps.sh installs it)"))
}

/// Calls localstripe's API as the shopper's browser or a test would: its
/// status and JSON (null when it answers none).
async fn call_stripe(method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> (reqwest::StatusCode, Value) {
    let reply = reqwest::Client::new()
        .request(method, format!("{}{path}", localstripe().api_base()))
        .bearer_auth(LOCALSTRIPE_SECRET_KEY)
        .form(form)
        .send()
        .await
        .expect("localstripe answers");
    let status = reply.status();
    let text = reply.text().await.expect("localstripe's body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn stripe(path: &str, form: &[(&str, &str)]) -> Value {
    let (status, body) = call_stripe(reqwest::Method::POST, path, form).await;
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// A fresh namespace that takes Stripe, served on loopback, with
/// localstripe's webhooks sent to its notify route when `hears_webhooks`.
async fn stripe_app(hears_webhooks: bool) -> TestApp {
    let (listener, url) = notify_port("stripe").await;
    let t = TestApp::serving(listener, |config: &mut Config| {
        config.stripe = Some(localstripe().keys(WEBHOOK_SECRET))
    })
    .await;
    if hears_webhooks {
        localstripe().send_webhooks_to(&url, WEBHOOK_SECRET).await.unwrap();
    }
    t
}

/// Pays with Stripe through the API: the order's intent id.
async fn pay_with_stripe(t: &TestApp, order: &Order, shopper: &str) -> String {
    let reply = t.pay_with(&order.id, shopper, "stripe").await;
    assert_eq!(reply.body["status"], "PENDING_PAYMENT");
    assert_eq!(reply.body["pay_action"]["kind"], "client_secret", "{}", reply.body);
    assert!(
        reply.body["pay_action"]["client_secret"]
            .as_str()
            .unwrap()
            .contains("_secret_")
    );
    reply.str("trade_id")
}

/// A card that pays.
const VISA: &str = "4242424242424242";
/// A card the bank declines when charged (localstripe's list).
const DECLINED: &str = "4000000000000341";

/// What Stripe.js does when the shopper submits the card form: the intent
/// as it is then.
async fn confirm_card(intent: &str, number: &str) -> Value {
    let card = stripe(
        "v1/payment_methods",
        &[
            ("type", "card"),
            ("card[number]", number),
            ("card[exp_month]", "12"),
            ("card[exp_year]", "2030"),
            ("card[cvc]", "123"),
        ],
    )
    .await;
    let path = format!("v1/payment_intents/{intent}");
    stripe(&path, &[("payment_method", card["id"].as_str().unwrap())]).await;
    // A declined card is answered 402; the intent tells what became of it.
    call_stripe(reqwest::Method::POST, &format!("{path}/confirm"), &[]).await;
    call_stripe(reqwest::Method::GET, &path, &[]).await.1
}

/// A webhook as Stripe signs it.
fn signed_event(body: &str, at: i64, secret: &str) -> Request<Body> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{at}.{body}").as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    Request::post("/payments/stripe/notify")
        .header("content-type", "application/json")
        .header("stripe-signature", format!("t={at},v1={signature}"))
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn succeeded_event(intent: &Value, event_id: &str) -> String {
    json!({"id": event_id, "object": "event", "type": "payment_intent.succeeded", "data": {"object": intent}})
        .to_string()
}

#[tokio::test]
async fn paying_through_stripe_ends_paid_once() {
    let t = stripe_app(true).await;
    let (order, shopper) = t.grabbed_by("stripe-shopper", 900).await;
    let intent = pay_with_stripe(&t, &order, &shopper).await;
    let paid = confirm_card(&intent, VISA).await;
    assert_eq!(paid["status"], "succeeded");
    let order = t.order_once(&order.id, |o| o.status == OrderStatus::Paid).await;
    assert_eq!(order.transaction_id.as_deref(), Some(intent.as_str()));
    assert!(!order.payment_unsettled());

    // Stripe sends it again: recorded before, nothing changes.
    let again = t
        .send(signed_event(
            &succeeded_event(&paid, "evt_again"),
            Utc::now().timestamp(),
            WEBHOOK_SECRET,
        ))
        .await;
    assert_eq!(
        (again.status, &again.body),
        (StatusCode::OK, &json!({"received": true}))
    );
    assert_eq!(t.order(&order.id).await, order);
}

#[tokio::test]
async fn forged_expired_and_amount_tampered_webhooks_change_nothing() {
    let t = stripe_app(false).await;
    let (order, shopper) = t.grabbed_by("stripe-shopper", 900).await;
    let intent = pay_with_stripe(&t, &order, &shopper).await;
    let paid = confirm_card(&intent, VISA).await;
    let now = Utc::now().timestamp();
    let honest = succeeded_event(&paid, "evt_honest");
    let mut cheaper = paid.clone();
    cheaper["amount"] = json!(order.price - 1);
    for (what, request) in [
        ("forged", signed_event(&honest, now, "whsec_not_ours")),
        ("expired", signed_event(&honest, now - 301, WEBHOOK_SECRET)),
        (
            "tampered",
            signed_event(&succeeded_event(&cheaper, "evt_cheap"), now, WEBHOOK_SECRET),
        ),
    ] {
        let refused = t.send(request).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{what}: {}", refused.body);
        refused.assert_problem(400, "VALIDATION");
    }
    let unsigned = Request::post("/payments/stripe/notify")
        .body(Body::from(honest.clone()))
        .unwrap();
    t.send(unsigned).await.assert_problem(400, "VALIDATION");
    assert_eq!(t.order(&order.id).await.status, OrderStatus::PendingPayment);

    let believed = t.send(signed_event(&honest, now, WEBHOOK_SECRET)).await;
    assert_eq!(believed.status, StatusCode::OK, "{}", believed.body);
    assert_eq!(t.order(&order.id).await.status, OrderStatus::Paid);
}

#[tokio::test]
async fn a_webhook_that_never_arrives_is_recovered_by_the_query() {
    let t = stripe_app(false).await;
    let (order, shopper) = t.grabbed_by("stripe-shopper", 900).await;
    let intent = pay_with_stripe(&t, &order, &shopper).await;
    confirm_card(&intent, VISA).await;
    let later = Utc::now() + chrono::Duration::seconds(PAYMENT_IN_FLIGHT_SECONDS + 1);
    let report = payments::settle_payments(t.app.ports(), later, 100).await.unwrap();
    assert_eq!(report.paid, 1, "{report:?}");
    let paid = t.order(&order.id).await;
    assert_eq!((paid.status, paid.transaction_id), (OrderStatus::Paid, Some(intent)));
}

#[tokio::test]
async fn a_declined_card_is_noted_and_the_shopper_may_try_again() {
    let t = stripe_app(true).await;
    let (order, shopper) = t.grabbed_by("stripe-shopper", 900).await;
    let intent = pay_with_stripe(&t, &order, &shopper).await;
    let declined = confirm_card(&intent, DECLINED).await;
    assert_eq!(declined["status"], "requires_payment_method", "{declined}");
    let failed = t.order_once(&order.id, |o| o.payment_failure.is_some()).await;
    assert_eq!(failed.status, OrderStatus::PendingPayment);
    assert!(failed.payment_unsettled(), "the job still asks until the window closes");
    // The shopper may try again: the same intent, its secret handed out anew.
    assert_eq!(pay_with_stripe(&t, &failed, &shopper).await, intent);
    assert_eq!(t.order(&order.id).await.payment_failure, None);
}

#[tokio::test]
async fn a_payment_that_lands_after_the_timeout_is_refunded_through_stripe() {
    let t = stripe_app(true).await;
    let (order, shopper) = t.grabbed_by("stripe-shopper", 60).await;
    let intent = pay_with_stripe(&t, &order, &shopper).await;
    let swept = flash_sale::sweep(t.app.ports(), order.pay_deadline + chrono::Duration::seconds(1), 100)
        .await
        .unwrap();
    assert_eq!(swept.timed_out, 1, "{swept:?}");
    confirm_card(&intent, VISA).await;
    let refunded = t
        .order_once(&order.id, |o| o.refund_status == Some(RefundStatus::Refunded))
        .await;
    assert_eq!(refunded.status, OrderStatus::Cancelled);
    assert_eq!(refunded.refund_transaction_id.as_deref(), Some(intent.as_str()));
    let (_, refunds) = call_stripe(reqwest::Method::GET, "v1/refunds", &[]).await;
    let ours: Vec<&Value> = refunds["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|refund| refund["payment_intent"] == intent.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "refunded once: {refunds}");
    assert_eq!(ours[0]["amount"], order.price);
}

/// The shop's card form (Stripe.js, its stand-in here) confirms an intent
/// only with the shop's publishable key and that intent's own secret, as
/// Stripe does; then Stripe charges it and its webhook marks the order.
#[tokio::test]
async fn the_card_form_pays_only_with_the_shops_key_and_the_intents_secret() {
    let t = stripe_app(true).await;
    let standin = StripeJsStandIn::start(&localstripe().api_base(), LOCALSTRIPE_SECRET_KEY)
        .await
        .unwrap();
    let shop = standin.shop();
    let (order, shopper) = t.grabbed_by("card-form", 900).await;
    let reply = t.pay_with(&order.id, &shopper, "stripe").await;
    let secret = reply.body["pay_action"]["client_secret"].as_str().unwrap().to_owned();
    let intent = reply.str("trade_id");
    let confirm = |key: String, secret: String| {
        let url = format!("{}v1/payment_intents/{intent}/confirm", shop.js.trim_end_matches("v3/"));
        async move {
            let form = [
                ("key", key.as_str()),
                ("client_secret", secret.as_str()),
                ("payment_method_data[type]", "card"),
                ("payment_method_data[card][number]", VISA),
                ("payment_method_data[card][exp_month]", "12"),
                ("payment_method_data[card][exp_year]", "2034"),
                ("payment_method_data[card][cvc]", "123"),
            ];
            let reply = reqwest::Client::new().post(url).form(&form).send().await.unwrap();
            (reply.status(), reply.json::<Value>().await.unwrap())
        }
    };
    let (status, _) = confirm("pk_test_someone_else".into(), secret.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = confirm(shop.publishable_key.clone(), format!("{intent}_secret_guessed")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.order(&order.id).await.status, OrderStatus::PendingPayment);

    let (status, confirmed) = confirm(shop.publishable_key.clone(), secret).await;
    assert_eq!(
        (status, &confirmed["status"]),
        (StatusCode::OK, &json!("succeeded")),
        "{confirmed}"
    );
    let paid = t.order_once(&order.id, |o| o.status == OrderStatus::Paid).await;
    assert_eq!(paid.pay_method, Some(shared::model::PayMethod::Stripe));
}
