//! Per-client limits on real Redis (one node, or a cluster with
//! `REDIS_CLUSTER=true`): a shopper hammering a route gets its burst and
//! then `429 RATE_LIMITED` with `Retry-After`, however many of its taps
//! arrive at once; registrations are counted per address; failed logins
//! slow an account from every address, and an account that does not exist
//! alike.

use std::time::Duration;

use axum::http::header;
use futures::future::join_all;
use integration_tests::{Reply, TestApp};
use serde_json::json;
use shared::{
    domain::crowd::{Action, Limits},
    ports::Rate,
};

fn per_minute(action: Action, count: u32) -> Limits {
    let rate = Rate {
        count,
        period: Duration::from_secs(60),
    };
    Limits::none().with(action, Some(rate))
}

fn assert_limited(reply: &Reply) {
    reply.assert_problem(429, "RATE_LIMITED");
    let wait: u64 = reply.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
}

fn count(replies: &[Reply], status: u16, code: &str) -> usize {
    replies
        .iter()
        .filter(|reply| reply.status.as_u16() == status && reply.code() == code)
        .count()
}

#[tokio::test]
async fn one_shopper_hammering_grab_gets_its_burst_then_waits() {
    let t = TestApp::start_limited(per_minute(Action::Grab, 5)).await;
    let admin = t.admin_token().await;
    let sku = t.open_sale(&admin, 100, 900).await;
    let alice = t.user_token("alice");
    let path = format!("/seckill/items/{sku}/grab");
    let replies = join_all((0..40).map(|_| t.post(&path, Some(&alice), None))).await;

    assert_eq!(count(&replies, 201, ""), 1, "one unit for alice");
    assert_eq!(count(&replies, 409, "ALREADY_PURCHASED"), 4, "the rest of her burst");
    let limited: Vec<&Reply> = replies.iter().filter(|r| r.status.as_u16() == 429).collect();
    assert_eq!(limited.len(), 35);
    limited.into_iter().for_each(assert_limited);
    assert_eq!(t.remaining(&sku).await, 99);
    assert_eq!(t.live_orders(&sku).await.len(), 1);
}

#[tokio::test]
async fn each_shopper_of_a_crowd_is_counted_on_their_own() {
    let t = TestApp::start_limited(per_minute(Action::Grab, 2)).await;
    let admin = t.admin_token().await;
    let sku = t.open_sale(&admin, 100, 900).await;
    let path = format!("/seckill/items/{sku}/grab");
    let tokens: Vec<String> = (0..60).map(|i| t.user_token(&format!("shopper{i}"))).collect();
    let taps = tokens.iter().flat_map(|token| [token, token, token]);
    let replies = join_all(taps.map(|token| t.post(&path, Some(token), None))).await;

    assert_eq!(count(&replies, 201, ""), 60, "each shopper's one unit");
    assert_eq!(count(&replies, 409, "ALREADY_PURCHASED"), 60);
    assert_eq!(count(&replies, 429, "RATE_LIMITED"), 60, "each shopper's third tap");
    assert_eq!(t.remaining(&sku).await, 40);
    assert_eq!(t.live_orders(&sku).await.len(), 60);
}

#[tokio::test]
async fn registrations_are_counted_per_address() {
    let t = TestApp::start_limited(per_minute(Action::Register, 3)).await;
    let forms = (0..5).map(|i| json!({"username": format!("newcomer{i}"), "password": "correct horse"}));
    let replies = join_all(forms.map(|form| t.post("/auth/register", None, Some(form)))).await;
    assert_eq!(count(&replies, 201, ""), 3);
    replies
        .iter()
        .filter(|r| r.status.as_u16() == 429)
        .for_each(assert_limited);
}

#[tokio::test]
async fn failed_logins_slow_an_account_whether_or_not_it_exists() {
    let t = TestApp::start_limited(per_minute(Action::FailedLogin, 3)).await;
    let form = json!({"username": "alice", "password": "correct horse"});
    assert_eq!(t.post("/auth/register", None, Some(form.clone())).await.status, 201);

    let mut refusals = Vec::new();
    for username in ["alice", "mallory"] {
        let guess = json!({"username": username, "password": "a guess"});
        let wrong = join_all((0..3).map(|_| t.post("/auth/login", None, Some(guess.clone())))).await;
        wrong.iter().for_each(|reply| reply.assert_problem(401, "UNAUTHORIZED"));
        let right = json!({"username": username, "password": "correct horse"});
        let refused = t.post("/auth/login", None, Some(right)).await;
        assert_limited(&refused);
        refusals.push(refused.body);
    }
    assert_eq!(
        refusals[0], refusals[1],
        "the refusal does not tell which account exists"
    );

    let admin = json!({"login_name": "admin", "password": "a guess"});
    let guesses = join_all((0..20).map(|_| t.post("/admin/login", None, Some(admin.clone())))).await;
    assert_eq!(
        count(&guesses, 401, "UNAUTHORIZED"),
        3,
        "guesses sent at once are counted alike"
    );
    assert_eq!(count(&guesses, 429, "RATE_LIMITED"), 17);
}

#[tokio::test]
async fn a_successful_login_clears_the_failures() {
    let t = TestApp::start_limited(per_minute(Action::FailedLogin, 2)).await;
    let form = json!({"username": "bob", "password": "correct horse"});
    assert_eq!(t.post("/auth/register", None, Some(form.clone())).await.status, 201);
    let guess = json!({"username": "bob", "password": "a guess"});
    for _ in 0..3 {
        t.post("/auth/login", None, Some(guess.clone()))
            .await
            .assert_problem(401, "UNAUTHORIZED");
        assert_eq!(t.post("/auth/login", None, Some(form.clone())).await.status, 200);
    }
}
