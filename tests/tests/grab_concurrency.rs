//! The flash-sale invariants under a real crowd, through the HTTP router
//! the local server serves: never oversell, one unit per shopper, one order
//! per sold unit.
//!
//! Cluster pass: `scripts/test.sh` runs this suite again on a three-master
//! Redis Cluster (`REDIS_CLUSTER=true`), as deployed.

use std::{collections::HashSet, time::Instant};

use axum::http::StatusCode;
use futures::future::join_all;
use integration_tests::TestApp;

const UNITS: i64 = 100;
const USERS: usize = 1_000;
const ATTEMPTS_PER_USER: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crowd_of_grabs_sells_exactly_the_stock_once_per_shopper() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let sku = t.open_sale(&admin, UNITS, 900).await;
    let path = format!("/seckill/items/{sku}/grab");
    let tokens: Vec<(String, String)> = (0..USERS)
        .map(|i| {
            let username = format!("shopper{i:04}");
            let token = t.user_token(&username);
            (username, token)
        })
        .collect();

    // Every user's attempts are interleaved with everyone else's.
    let started = Instant::now();
    let attempts = (0..ATTEMPTS_PER_USER)
        .flat_map(|_| tokens.iter())
        .map(|(username, token)| {
            let t = &t;
            let path = &path;
            async move { (username.clone(), t.post(path, Some(token), None).await) }
        });
    let replies = join_all(attempts).await;
    let elapsed = started.elapsed();

    let mut winners = Vec::new();
    let (mut sold_out, mut already) = (0, 0);
    for (username, reply) in &replies {
        match (reply.status, reply.code()) {
            (StatusCode::CREATED, _) => winners.push((username.clone(), reply.str("order_id"))),
            (StatusCode::CONFLICT, "SOLD_OUT") => sold_out += 1,
            (StatusCode::CONFLICT, "ALREADY_PURCHASED") => already += 1,
            _ => panic!("unexpected reply for {username}: {} {}", reply.status, reply.body),
        }
    }
    let remaining = t.remaining(&sku).await;
    let orders = t.live_orders(&sku).await;
    println!(
        "grab crowd: {} attempts from {USERS} users on {UNITS} units in {:.2?} ({:.0} req/s): \
         {} created, {sold_out} SOLD_OUT, {already} ALREADY_PURCHASED; remaining {remaining}, orders {}",
        replies.len(),
        elapsed,
        replies.len() as f64 / elapsed.as_secs_f64(),
        winners.len(),
        orders.len(),
    );

    assert_eq!(winners.len() as i64, UNITS, "every unit sold, none twice");
    assert_eq!(remaining, 0);
    assert_eq!(orders.len() as i64, UNITS, "one order per sold unit");
    let buyers: HashSet<_> = orders.iter().map(|o| o.username.as_str()).collect();
    assert_eq!(buyers.len(), orders.len(), "no shopper holds two orders");
    let order_ids: HashSet<_> = orders.iter().map(|o| o.id.as_str()).collect();
    assert!(
        winners.iter().all(|(_, id)| order_ids.contains(id.as_str())),
        "every 201 is a stored order"
    );
    assert!(
        orders
            .iter()
            .all(|o| buyers.contains(o.username.as_str()) && o.price == 990)
    );
    assert_eq!(sold_out + already + winners.len(), USERS * ATTEMPTS_PER_USER);
}
