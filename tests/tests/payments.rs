//! Every yuan reconciled, on real DynamoDB with the sandbox provider's own
//! books: pays killed between the provider's charge and the `PAID` write
//! end in `PAID` or a refund, refunds the provider refuses are retried
//! until done, and in the end the money the provider kept is exactly the
//! price of the orders the ledger says are paid.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use futures::future::join_all;
use integration_tests::TestApp;
use shared::{
    App,
    domain::{
        flash_sale,
        payments::{self, PaymentsReport},
    },
    model::{Order, OrderStatus, PAYMENT_IN_FLIGHT_SECONDS, PayMethod, RefundStatus},
    payments::Providers,
    ports::{
        ChargeLookup, ChargeOutcome, ChargeRequest, OrderStore, PaymentProvider, PortError, PortResult, Ports,
        StockGate,
    },
};
use tokio::sync::Notify;

const SHOPPERS: usize = 20;

/// Charges, then dies: the function instance is killed before it can
/// write anything more.
struct DiesAfterCharging {
    app: Arc<App>,
    charged: Arc<Notify>,
}

impl PaymentProvider for DiesAfterCharging {
    fn offers(&self, method: PayMethod) -> bool {
        self.app.payments.offers(method)
    }

    async fn charge(&self, method: PayMethod, request: &ChargeRequest<'_>) -> PortResult<ChargeOutcome> {
        self.app.payments.charge(method, request).await?;
        self.charged.notify_one();
        std::future::pending().await
    }

    async fn close(&self, method: PayMethod, trade: &ChargeRequest<'_>) -> PortResult<ChargeLookup> {
        self.app.payments.close(method, trade).await
    }

    async fn refund(&self, method: PayMethod, transaction_id: &str, amount: i64, refund_key: &str) -> PortResult<()> {
        self.app
            .payments
            .refund(method, transaction_id, amount, refund_key)
            .await
    }

    async fn lookup(&self, method: PayMethod, trade: &ChargeRequest<'_>) -> PortResult<ChargeLookup> {
        self.app.payments.lookup(method, trade).await
    }
}

/// Refuses each transaction's first two refunds, then takes them.
struct RefusesRefundsTwice<'a> {
    provider: &'a Providers,
    refused: Mutex<HashMap<String, u32>>,
}

impl PaymentProvider for RefusesRefundsTwice<'_> {
    fn offers(&self, method: PayMethod) -> bool {
        self.provider.offers(method)
    }

    async fn charge(&self, method: PayMethod, request: &ChargeRequest<'_>) -> PortResult<ChargeOutcome> {
        self.provider.charge(method, request).await
    }

    async fn close(&self, method: PayMethod, trade: &ChargeRequest<'_>) -> PortResult<ChargeLookup> {
        self.provider.close(method, trade).await
    }

    async fn refund(&self, method: PayMethod, transaction_id: &str, amount: i64, refund_key: &str) -> PortResult<()> {
        {
            let mut refused = self.refused.lock().unwrap();
            let count = refused.entry(transaction_id.to_owned()).or_default();
            if *count < 2 {
                *count += 1;
                return Err(PortError::Unavailable("provider: refund refused, try later".into()));
            }
        }
        self.provider.refund(method, transaction_id, amount, refund_key).await
    }

    async fn lookup(&self, method: PayMethod, trade: &ChargeRequest<'_>) -> PortResult<ChargeLookup> {
        self.provider.lookup(method, trade).await
    }
}

/// `SHOPPERS` pending orders of a fresh sale with this pay timeout.
async fn pending_orders(t: &TestApp, admin: &str, label: &str, pay_timeout_seconds: u32) -> (String, Vec<Order>) {
    let sku = t.open_sale(admin, SHOPPERS as i64, pay_timeout_seconds).await;
    let grabs = (0..SHOPPERS).map(|i| {
        let token = t.user_token(&format!("{label}{i}"));
        let path = format!("/seckill/items/{sku}/grab");
        async move { t.post(&path, Some(&token), None).await }
    });
    let mut orders = Vec::new();
    for reply in join_all(grabs).await {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        orders.push(t.order(&reply.str("order_id")).await);
    }
    (sku, orders)
}

/// Every order paid at once, each pay killed right after its charge.
async fn pay_and_die(t: &TestApp, orders: &[Order]) {
    let mut dying = Vec::new();
    for order in orders {
        let charged = Arc::new(Notify::new());
        let provider = DiesAfterCharging {
            app: t.app.clone(),
            charged: charged.clone(),
        };
        let (app, order) = (t.app.clone(), order.clone());
        let pay = tokio::spawn(async move {
            let ports = Ports {
                gate: &app.gate,
                ledger: &app.ledger,
                payments: &provider,
            };
            payments::pay(ports, &order.username, &order.id, PayMethod::Sandbox, None, Utc::now()).await
        });
        dying.push((pay, charged));
    }
    for (pay, charged) in dying {
        charged.notified().await;
        pay.abort();
        assert!(pay.await.unwrap_err().is_cancelled());
    }
}

/// Two runs of the payments job at once, as a retried run overlapping the
/// next scheduled one.
async fn settle_twice_at_once(
    ports: Ports<'_, impl StockGate, impl OrderStore, impl PaymentProvider>,
    at: DateTime<Utc>,
) -> PaymentsReport {
    let (a, b) = tokio::join!(
        payments::settle_payments(ports, at, 1000),
        payments::settle_payments(ports, at, 1000)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    PaymentsReport {
        paid: a.paid + b.paid,
        refunded: a.refunded + b.refunded,
        awaiting: a.awaiting + b.awaiting,
        not_charged: a.not_charged + b.not_charged,
        settled_by_another: a.settled_by_another + b.settled_by_another,
        failed: a.failed + b.failed,
    }
}

/// What the provider kept (charged less refunded) equals what the ledger
/// says is paid, order by order, and no order's money is left unsettled.
async fn assert_every_yuan_reconciled(t: &TestApp, orders: &[Order]) {
    let books = t.app.payments.sandbox.statement().await.unwrap();
    let mut kept = 0_i64;
    let mut paid = 0_i64;
    for order in orders {
        let stored = t.order(&order.id).await;
        assert!(!stored.payment_unsettled(), "{stored:?}");
        let charge = books.iter().find(|c| c.idempotency_key == order.id);
        match (stored.status, charge) {
            (OrderStatus::Paid, Some(charge)) => {
                assert!(!charge.refunded, "{charge:?}");
                assert_eq!(stored.transaction_id, charge.transaction_id);
                paid = paid.checked_add(stored.price).unwrap();
            }
            (OrderStatus::Cancelled, Some(charge)) => {
                assert!(charge.refunded, "{charge:?}");
                assert_eq!(stored.refund_status, Some(RefundStatus::Refunded));
            }
            other => panic!("order {} ended as {other:?}", order.id),
        }
        if let Some(charge) = charge.filter(|c| !c.refunded) {
            kept = kept.checked_add(charge.amount).unwrap();
        }
    }
    assert_eq!(kept, paid, "the provider kept exactly what the ledger calls paid");
}

#[tokio::test]
async fn pays_killed_after_the_charge_end_paid_if_the_order_is_open_and_refunded_if_it_timed_out() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let (open_sku, open) = pending_orders(&t, &admin, "keeps", 900).await;
    let (closing_sku, closing) = pending_orders(&t, &admin, "misses", 60).await;
    pay_and_die(&t, &open).await;
    pay_and_die(&t, &closing).await;
    for order in open.iter().chain(&closing) {
        let stored = t.order(&order.id).await;
        assert_eq!(
            (stored.status, stored.payment_unsettled()),
            (OrderStatus::PendingPayment, true)
        );
    }

    // The second sale's deadline passes before the job runs: its orders
    // time out and their units go back on sale, money taken or not.
    let swept_at = Utc::now() + Duration::seconds(120);
    let swept = flash_sale::sweep(t.app.ports(), swept_at, 1000).await.unwrap();
    assert_eq!(swept.timed_out as usize, SHOPPERS, "{swept:?}");
    assert_eq!(t.remaining(&closing_sku).await, SHOPPERS as i64);

    let report = settle_twice_at_once(
        t.app.ports(),
        swept_at + Duration::seconds(PAYMENT_IN_FLIGHT_SECONDS + 1),
    )
    .await;
    println!("killed pays settled by two overlapping runs: {report:?}");
    assert_eq!(
        (report.paid as usize, report.refunded as usize, report.failed),
        (SHOPPERS, SHOPPERS, 0),
        "each order settled once: {report:?}"
    );
    assert_every_yuan_reconciled(&t, &open).await;
    assert_every_yuan_reconciled(&t, &closing).await;
    assert_eq!(
        t.holds(&open_sku, swept_at + Duration::days(1)).await,
        0,
        "paid units confirmed"
    );
    assert_eq!(t.remaining(&open_sku).await, 0);
}

#[tokio::test]
async fn refunds_the_provider_refuses_twice_are_retried_until_they_succeed() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let (_, orders) = pending_orders(&t, &admin, "refunded", 60).await;
    pay_and_die(&t, &orders).await;
    let swept_at = Utc::now() + Duration::seconds(120);
    flash_sale::sweep(t.app.ports(), swept_at, 1000).await.unwrap();

    let flaky = RefusesRefundsTwice {
        provider: &t.app.payments,
        refused: Mutex::default(),
    };
    let ports = Ports {
        gate: &t.app.gate,
        ledger: &t.app.ledger,
        payments: &flaky,
    };
    let at = swept_at + Duration::seconds(PAYMENT_IN_FLIGHT_SECONDS + 1);
    let mut refunded = 0;
    for run in 1..=3 {
        let report = payments::settle_payments(ports, at, 1000).await.unwrap();
        println!("run {run}: {report:?}");
        let expected = if run < 3 { (0, SHOPPERS) } else { (SHOPPERS, 0) };
        assert_eq!(
            (report.refunded as usize, report.failed as usize),
            expected,
            "run {run}"
        );
        refunded += report.refunded;
    }
    assert_eq!(refunded as usize, SHOPPERS);
    assert!(flaky.refused.lock().unwrap().values().all(|&refusals| refusals == 2));
    assert_every_yuan_reconciled(&t, &orders).await;
    let again = payments::settle_payments(ports, at, 1000).await.unwrap();
    assert_eq!(again, PaymentsReport::default(), "nothing left to settle");
}

/// A trade of 5 yuan for `order_id`, open for a quarter of an hour.
fn trade(order_id: &str) -> ChargeRequest<'_> {
    ChargeRequest {
        order_id,
        amount_cents: 500,
        subject: "a sandbox trade",
        expires: Utc::now() + Duration::minutes(15),
        trade_id: None,
    }
}

#[tokio::test]
async fn the_sandbox_keeps_a_refund_by_its_key() {
    let t = TestApp::start().await;
    let sandbox = &t.app.payments.sandbox;
    let order_id = format!("refund-key-{}", Utc::now().timestamp_micros());
    let ChargeOutcome::Approved { transaction_id } = sandbox.charge(&trade(&order_id)).await.unwrap() else {
        panic!("the sandbox approves a positive charge");
    };
    sandbox.refund(&transaction_id, "R1").await.unwrap();
    sandbox.refund(&transaction_id, "R1").await.unwrap();
    let another = sandbox.refund(&transaction_id, "R2").await;
    assert!(matches!(another, Err(PortError::Unavailable(_))), "{another:?}");
    let books = sandbox.statement().await.unwrap();
    let charge = books.iter().find(|c| c.idempotency_key == order_id).unwrap();
    assert_eq!((charge.refunded, charge.refund_key.as_deref()), (true, Some("R1")));
}

#[tokio::test]
async fn a_closed_sandbox_trade_is_never_charged() {
    let t = TestApp::start().await;
    let sandbox = &t.app.payments.sandbox;
    let order_id = format!("closed-{}", Utc::now().timestamp_micros());
    assert_eq!(sandbox.close(&order_id).await.unwrap(), ChargeLookup::NotCharged);
    let refused = sandbox.charge(&trade(&order_id)).await.unwrap();
    assert!(matches!(refused, ChargeOutcome::Declined(_)), "{refused:?}");
    assert_eq!(sandbox.lookup(&order_id).await.unwrap(), ChargeLookup::NotCharged);
}

/// Where money is real the sandbox, which approves without moving any, is
/// switched off: nobody is "paid" by it, and the shop is not offered it.
#[tokio::test]
async fn where_money_is_real_the_sandbox_is_not_offered() {
    let t = TestApp::start_tuned(&integration_tests::services().redis, |config| {
        config.sandbox_payments = false;
    })
    .await;
    let (order, token) = t.grabbed_by("real-money", 900).await;
    for body in [Some(serde_json::json!({"method": "sandbox"})), None] {
        let reply = t.post(&format!("/orders/{}/pay", order.id), Some(&token), body).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "VALIDATION"),
            "{}",
            reply.body
        );
    }
    assert_eq!(t.order(&order.id).await.status, OrderStatus::PendingPayment);
    let methods = t.get("/payments/methods", None).await;
    assert_eq!(methods.body["methods"], serde_json::json!(["cod"]), "{}", methods.body);
    let cash = t.pay_with(&order.id, &token, "cod").await;
    assert_eq!(cash.body["status"], "CONFIRMED");
}
