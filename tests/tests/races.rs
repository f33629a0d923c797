//! Writers racing for the same order, and a grab that dies half-way.
//! Each race ends with exactly one outcome and the stock accounted for:
//! remaining + units held by live orders == seckill_num.
//!
//! Cluster pass: `scripts/test.sh` runs this suite again on a three-master
//! Redis Cluster (`REDIS_CLUSTER=true`), as deployed.

use std::collections::HashMap;

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use futures::future::join_all;
use integration_tests::TestApp;
use shared::{
    Error,
    domain::{
        flash_sale::{self, Settled, SweepReport},
        payments,
    },
    model::{CloseReason, OrderStatus, PayMethod, RefundStatus},
    ports::{OrderStore, Reservation, StockGate},
};

const ROUNDS: usize = 40;

/// `ROUNDS` shoppers each hold one pending order of a fresh sale.
async fn pending_orders(t: &TestApp, admin: &str) -> (String, Vec<(String, String)>) {
    let sku = t.open_sale(admin, ROUNDS as i64, 900).await;
    let mut orders = Vec::new();
    for i in 0..ROUNDS {
        let username = format!("racer{i}");
        let reply = t
            .post(
                &format!("/seckill/items/{sku}/grab"),
                Some(&t.user_token(&username)),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        orders.push((username, reply.str("order_id")));
    }
    (sku, orders)
}

async fn assert_stock_consistent(t: &TestApp, sku: &str) {
    let live = t.live_orders(sku).await.len() as i64;
    assert_eq!(
        t.remaining(sku).await + live,
        ROUNDS as i64,
        "sold + remaining == seckill_num"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pay_racing_the_timeout_has_exactly_one_winner() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let (sku, orders) = pending_orders(&t, &admin).await;
    let first_deadline = t.order(&orders[0].1).await.pay_deadline;
    let last_deadline = t.order(&orders[ROUNDS - 1].1).await.pay_deadline;

    // Both sides act at the deadline: the payers just before every order's
    // (so they may pay), the sweep just after (so it may cancel them all).
    let payer_now = first_deadline - Duration::milliseconds(1);
    let sweeper_now = last_deadline + Duration::milliseconds(1);
    // For every order, the payer and the timeout job start at once.
    let holds = t.app.gate.overdue(&sku, sweeper_now, 1000).await.unwrap();
    assert_eq!(holds.len(), ROUNDS);
    let holds: HashMap<_, _> = holds.iter().map(|hold| (hold.order_id.clone(), hold)).collect();
    let races = orders.iter().map(|(username, order_id)| {
        let app = &t.app;
        let hold = holds[order_id];
        async move {
            tokio::join!(
                payments::pay(app.ports(), username, order_id, PayMethod::Sandbox, None, payer_now),
                flash_sale::settle(app.ports(), hold, sweeper_now),
            )
        }
    });
    let (paid, settled): (Vec<_>, Vec<_>) = join_all(races).await.into_iter().unzip();
    let swept: Vec<Settled> = settled.into_iter().map(Result::unwrap).collect();

    let mut outcome = (0, 0);
    for ((_, order_id), result) in orders.iter().zip(&paid) {
        let order = t.order(order_id).await;
        match (result, order.status) {
            (Ok(_), OrderStatus::Paid) => outcome.0 += 1,
            (Err(Error::InvalidState(_) | Error::PayDeadlinePassed), OrderStatus::Cancelled) => {
                assert_eq!(order.close_reason, Some(CloseReason::PaymentTimeout));
                // A payment that was charged and then lost is owed back.
                if order.transaction_id.is_none() && order.refund_transaction_id.is_some() {
                    assert_eq!(order.refund_status, Some(RefundStatus::Refunded));
                }
                outcome.1 += 1;
            }
            other => panic!(
                "order {order_id}: pay returned {:?} but the order is {:?}",
                other.0, other.1
            ),
        }
    }
    println!("pay vs timeout: {} paid, {} timed out", outcome.0, outcome.1);
    assert_eq!(outcome.0 + outcome.1, ROUNDS);
    let timed_out = swept.iter().filter(|s| **s == Settled::TimedOut).count();
    assert_eq!(
        timed_out, outcome.1,
        "the timeout job cancelled exactly the orders that ended cancelled"
    );

    // Whatever the sweep did not see (payments confirmed after it read the
    // ledger) the next run settles; afterwards nothing is held any more.
    flash_sale::sweep(t.app.ports(), sweeper_now, 1000).await.unwrap();
    assert_eq!(t.holds(&sku, sweeper_now + Duration::days(1)).await, 0);
    assert_eq!(t.live_orders(&sku).await.len(), outcome.0);
    assert_stock_consistent(&t, &sku).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pay_racing_cancel_has_exactly_one_winner() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let (sku, orders) = pending_orders(&t, &admin).await;

    let races = orders.iter().map(|(username, order_id)| {
        let t = &t;
        async move {
            let token = t.user_token(username);
            let (pay_path, cancel_path) = (format!("/orders/{order_id}/pay"), format!("/orders/{order_id}/cancel"));
            let (pay, cancel) = tokio::join!(
                t.post(&pay_path, Some(&token), None),
                t.post(&cancel_path, Some(&token), None)
            );
            (order_id, pay, cancel)
        }
    });
    let (mut paid, mut cancelled) = (0, 0);
    for (order_id, pay, cancel) in join_all(races).await {
        let order = t.order(order_id).await;
        match order.status {
            OrderStatus::Paid => {
                assert_eq!(pay.status, StatusCode::OK, "{}", pay.body);
                cancel.assert_problem(409, "INVALID_STATE");
                paid += 1;
            }
            OrderStatus::Cancelled => {
                assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.body);
                pay.assert_problem(409, "INVALID_STATE");
                if order.refund_transaction_id.is_some() {
                    assert_eq!(order.refund_status, Some(RefundStatus::Refunded));
                }
                cancelled += 1;
            }
            other => panic!("order {order_id} ended {other:?}"),
        }
    }
    println!("pay vs cancel: {paid} paid, {cancelled} cancelled");
    assert_eq!(paid + cancelled, ROUNDS);
    assert_eq!(t.remaining(&sku).await, cancelled as i64);
    assert_stock_consistent(&t, &sku).await;
}

#[tokio::test]
async fn a_grab_that_dies_after_reserving_is_settled_after_the_deadline() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let sku = t.open_sale(&admin, 3, 60).await;
    let now = Utc::now();

    // The grab function reserved in Redis, then died before writing the order.
    let order_id = "01CRASHEDBEFOREWRITE0000000";
    let reservation = t.app.gate.reserve(&sku, "ghost", order_id, now).await.unwrap();
    let Reservation::Reserved(unit) = reservation else {
        panic!("expected a reservation, got {reservation:?}")
    };
    assert_eq!(t.remaining(&sku).await, 2);
    let ghost = t.user_token("ghost");
    t.post(&format!("/seckill/items/{sku}/grab"), Some(&ghost), None)
        .await
        .assert_problem(409, "ALREADY_PURCHASED");

    // Before the deadline the sweep leaves it alone.
    let early = flash_sale::sweep(t.app.ports(), now, 100).await.unwrap();
    assert_eq!(early, SweepReport::default());

    let after = unit.pay_deadline + Duration::seconds(1);
    let report = flash_sale::sweep(t.app.ports(), after, 100).await.unwrap();
    assert_eq!(report.abandoned, 1, "{report:?}");
    assert_eq!(t.remaining(&sku).await, 3, "the unit is back");
    let tombstone = t.order(order_id).await;
    assert_eq!(
        (tombstone.status, tombstone.close_reason),
        (OrderStatus::Cancelled, Some(CloseReason::OrderWriteFailed))
    );

    // Nothing is counted twice: a second sweep does nothing, and the dead
    // function's late write (had it been only slow) can no longer land.
    let again = flash_sale::sweep(t.app.ports(), after, 100).await.unwrap();
    assert_eq!((again.abandoned, again.released, again.timed_out), (0, 0, 0));
    assert_eq!(t.remaining(&sku).await, 3);
    let mut late = tombstone.clone();
    late.status = OrderStatus::PendingPayment;
    assert!(t.app.ledger.insert_order(&late).await.is_err());

    // And the shopper may buy again.
    let retry = t.post(&format!("/seckill/items/{sku}/grab"), Some(&ghost), None).await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.body);
    assert_eq!(t.remaining(&sku).await, 2);
    assert_eq!(t.live_orders(&sku).await.len(), 1);
}

#[tokio::test]
async fn unpaid_orders_time_out_on_the_real_clock_and_the_shopper_may_buy_again() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let sku = t.open_sale(&admin, 1, 1).await;
    let frank = t.user_token("frank");
    let order_id = t
        .post(&format!("/seckill/items/{sku}/grab"), Some(&frank), None)
        .await
        .str("order_id");
    assert_eq!(t.remaining(&sku).await, 0);

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    t.post(&format!("/orders/{order_id}/pay"), Some(&frank), None)
        .await
        .assert_problem(409, "PAY_DEADLINE_PASSED");
    let report = order_timeout::run_once(&t.app).await.unwrap();
    assert_eq!(report.timed_out, 1, "{report:?}");
    let order = t.get(&format!("/orders/{order_id}"), Some(&frank)).await;
    assert_eq!(
        (order.str("status"), order.str("close_reason")),
        ("CANCELLED".into(), "PAYMENT_TIMEOUT".into())
    );
    assert!(order.body["close_time"].is_string());
    assert_eq!(t.remaining(&sku).await, 1);
    let again = t.post(&format!("/seckill/items/{sku}/grab"), Some(&frank), None).await;
    assert_eq!(again.status, StatusCode::CREATED);
}
