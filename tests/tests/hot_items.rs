//! Hot items on a three-master Redis Cluster: a hot SKU's stock split over
//! the masters sells exactly and completely under a crowd, with cancels and
//! timeouts and without (every unit to the crowd, nothing left when it
//! ends), splitting mid-sale keeps every order, and discovery marks the
//! SKU that draws the traffic and lets it cool when the traffic stops.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    http::{Method, Request, StatusCode, header},
};
use chrono::Utc;
use futures::{StreamExt, future::join_all};
use integration_tests::{Reply, TestApp};
use local_server::services::{Cache, RedisCluster};
use shared::{
    domain::{flash_sale, hot},
    gate::home_shard,
    ports::StockGate,
};

const UNITS: i64 = 300;
const SHOPPERS: usize = 1_500;
const ATTEMPTS_PER_SHOPPER: usize = 2;

fn cluster() -> Cache {
    Cache::Cluster(RedisCluster::start().expect("start a three-master Redis Cluster"))
}

async fn mark_hot(t: &TestApp, admin: &str, sku: &str) -> Reply {
    let reply = t
        .call(Method::PUT, &format!("/admin/hot-items/{sku}"), Some(admin), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply
}

/// `SHOPPERS` shoppers tap grab `ATTEMPTS_PER_SHOPPER` times each, all at
/// once; meanwhile every tenth winner cancels, and the timeout job runs
/// once as if the holds of the crowd's first 300 ms were past their
/// deadline (their orders long written by then, as in a real timeout).
async fn crowd(t: &Arc<TestApp>, sku: &str) -> (usize, usize) {
    let path = format!("/seckill/items/{sku}/grab");
    let shoppers: Vec<(String, String)> = (0..SHOPPERS)
        .map(|i| {
            let username = format!("crowd{i:04}");
            (t.user_token(&username), username)
        })
        .collect();
    let started = Utc::now();
    let timeouts = {
        let t = t.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let past_early_deadlines = started + chrono::Duration::milliseconds(900_300);
            let report = flash_sale::sweep(t.app.ports(), past_early_deadlines, 10_000)
                .await
                .unwrap();
            assert_eq!(report.failed, 0, "{report:?}");
            report.timed_out
        })
    };
    let taps = (0..ATTEMPTS_PER_SHOPPER)
        .flat_map(|_| shoppers.iter())
        .enumerate()
        .map(|(i, (token, _))| {
            let (t, path) = (t.clone(), path.clone());
            async move {
                let reply = tap(&t, &path, token).await;
                match (reply.status, reply.code()) {
                    (StatusCode::CREATED, _) if i % 10 == 0 => {
                        let order = reply.str("order_id");
                        let cancelled = t.post(&format!("/orders/{order}/cancel"), Some(token), None).await;
                        // A cancel may lose to the timeout job; either gives the unit back.
                        assert!(
                            cancelled.status == StatusCode::OK || cancelled.code() == "INVALID_STATE",
                            "{}",
                            cancelled.body
                        );
                        1
                    }
                    (StatusCode::CREATED, _) => 0,
                    (StatusCode::CONFLICT, "SOLD_OUT" | "ALREADY_PURCHASED") => 0,
                    _ => panic!("unexpected reply: {} {}", reply.status, reply.body),
                }
            }
        });
    let cancelled = join_all(taps).await.into_iter().sum();
    let timed_out = timeouts.await.unwrap();
    (cancelled, timed_out as usize)
}

/// One shopper's tap, sent again after a 503 as a client does: while the
/// last units of a split SKU are on the move (given back by cancels and
/// timeouts and borrowed between shards) a grab that can neither get one
/// nor vouch that none is left says so rather than answer SOLD_OUT.
async fn tap(t: &TestApp, path: &str, token: &str) -> Reply {
    for _ in 0..20 {
        let reply = t.post(path, Some(token), None).await;
        if reply.status != StatusCode::SERVICE_UNAVAILABLE {
            return reply;
        }
    }
    panic!("a tap kept answering 503");
}

/// Taps by shoppers who did not win yet, until the SKU answers SOLD_OUT to
/// every one of them: units given back by cancels and timeouts all sell.
/// The instance may have remembered a sold-out of the crowd's for up to the
/// memo's second (a unit given back is on sale again within it), so the
/// late shoppers come once that second is up.
async fn sell_what_came_back(t: &TestApp, sku: &str) {
    tokio::time::sleep(shared::config::MAX_SOLD_OUT_MEMO).await;
    let path = format!("/seckill/items/{sku}/grab");
    for i in 0..400 {
        let reply = tap(t, &path, &t.user_token(&format!("late{i:03}"))).await;
        match (reply.status, reply.code()) {
            (StatusCode::CREATED, _) => {}
            (StatusCode::CONFLICT, "SOLD_OUT") => return,
            _ => panic!("unexpected reply: {} {}", reply.status, reply.body),
        }
    }
    panic!("more units came back than shoppers asked for");
}

/// The books after the dust settles: every unit sold once, to distinct
/// shoppers, and nothing left on any shard.
async fn assert_sold_exactly(t: &TestApp, sku: &str) {
    let remaining = t.remaining(sku).await;
    let orders = t.live_orders(sku).await;
    let buyers: BTreeSet<&str> = orders.iter().map(|o| o.username.as_str()).collect();
    assert_eq!(
        (remaining, orders.len() as i64),
        (0, UNITS),
        "sold out completely, one live order per unit"
    );
    assert_eq!(buyers.len(), orders.len(), "no shopper holds two orders");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hot_sku_split_over_the_masters_sells_out_exactly_under_a_crowd() {
    let cache = cluster();
    let t = Arc::new(TestApp::start_on(&cache).await);
    let admin = t.admin_token().await;
    let sku = t.open_sale(&admin, UNITS, 900).await;
    let marked = mark_hot(&t, &admin, &sku).await;
    assert_eq!(marked.body["shards"], 3, "one shard per master: {}", marked.body);
    let before: Vec<u64> = cache.nodes().iter().map(|node| node.script_calls().unwrap()).collect();

    let started = Instant::now();
    let (cancelled, timed_out) = crowd(&t, &sku).await;
    let elapsed = started.elapsed();
    sell_what_came_back(&t, &sku).await;

    let calls: Vec<u64> = cache
        .nodes()
        .iter()
        .zip(&before)
        .map(|(node, before)| node.script_calls().unwrap() - before)
        .collect();
    println!(
        "split SKU: {} taps in {elapsed:.2?}, {cancelled} cancelled and {timed_out} timed out during the crowd; \
         scripts per master {calls:?}",
        SHOPPERS * ATTEMPTS_PER_SHOPPER
    );
    assert_sold_exactly(&t, &sku).await;
    assert!(cancelled > 0 && timed_out > 0, "units came back during the crowd");
    let total: u64 = calls.iter().sum();
    for (master, calls) in calls.iter().enumerate() {
        assert!(
            *calls * 10 > total,
            "master {master} ran a fair share of the scripts: {calls} of {total}"
        );
    }
}

/// The crowd of issue 22's acceptance, which once left units unsold: 300
/// units split over three masters, 3,000 grabs from 1,500 shoppers, 64 in
/// flight, nothing given back. Every unit goes to the crowd, and every
/// other tap is told SOLD_OUT or ALREADY_PURCHASED (never a 503): when the
/// crowd ends, nothing is left on any shard. Three crowds in a row.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_split_sku_sells_every_unit_to_its_crowd_and_tells_the_rest_sold_out() {
    let cache = cluster();
    let t = Arc::new(TestApp::start_on(&cache).await);
    let admin = t.admin_token().await;
    for crowd in 0..3 {
        let sku = t.open_sale(&admin, UNITS, 900).await;
        mark_hot(&t, &admin, &sku).await;
        let path = format!("/seckill/items/{sku}/grab");
        let tokens: Vec<String> = (0..SHOPPERS)
            .map(|i| t.user_token(&format!("crowd{crowd}-{i:04}")))
            .collect();
        let taps = (0..ATTEMPTS_PER_SHOPPER).flat_map(|_| tokens.iter());
        let replies: Vec<Reply> = futures::stream::iter(taps)
            .map(|token| t.post(&path, Some(token), None))
            .buffer_unordered(64)
            .collect()
            .await;
        let count = |status: u16, code: &str| {
            replies
                .iter()
                .filter(|r| r.status.as_u16() == status && r.code() == code)
                .count()
        };
        let (won, sold_out, bought) = (count(201, ""), count(409, "SOLD_OUT"), count(409, "ALREADY_PURCHASED"));
        assert_eq!(
            (won, won + sold_out + bought),
            (UNITS as usize, replies.len()),
            "crowd {crowd}: {won} won, {sold_out} sold out, {bought} bought before"
        );
        assert_eq!(
            t.remaining(&sku).await,
            0,
            "crowd {crowd}: nothing left when the crowd ended"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shard_whose_shoppers_emptied_it_borrows_from_the_others() {
    let cache = cluster();
    let t = TestApp::start_on(&cache).await;
    let admin = t.admin_token().await;
    let sku = t.open_sale(&admin, 30, 900).await;
    mark_hot(&t, &admin, &sku).await;
    // Thirty shoppers whose orders all live on the first shard, which
    // holds only a third of the units.
    let homed: Vec<String> = (0..)
        .map(|i| format!("homed{i}"))
        .filter(|name| home_shard(name, 3) == 0)
        .take(31)
        .collect();
    let path = format!("/seckill/items/{sku}/grab");
    let mut won = 0;
    for name in &homed {
        let reply = t.post(&path, Some(&t.user_token(name)), None).await;
        match (reply.status, reply.code()) {
            (StatusCode::CREATED, _) => won += 1,
            (StatusCode::CONFLICT, "SOLD_OUT") => {}
            _ => panic!("unexpected reply: {} {}", reply.status, reply.body),
        }
    }
    assert_eq!(won, 30, "every unit sold to the one shard's shoppers");
    assert_eq!(t.remaining(&sku).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn splitting_while_the_sale_runs_keeps_every_order_and_buyer() {
    let cache = cluster();
    let t = Arc::new(TestApp::start_on(&cache).await);
    let admin = t.admin_token().await;
    let sku = t.open_sale(&admin, UNITS, 900).await;
    let path = format!("/seckill/items/{sku}/grab");
    // Before the split: 40 orders, the first 10 paid, the next 10 cancelled
    // after the split (their units must come back on their home shards).
    let mut early = Vec::new();
    for i in 0..40 {
        let token = t.user_token(&format!("crowd{i:04}"));
        let reply = t.post(&path, Some(&token), None).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let order = reply.str("order_id");
        if i < 10 {
            let paid = t.post(&format!("/orders/{order}/pay"), Some(&token), None).await;
            assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
        }
        early.push((order, token));
    }
    mark_hot(&t, &admin, &sku).await;
    for (order, token) in &early[10..20] {
        let cancelled = t.post(&format!("/orders/{order}/cancel"), Some(token), None).await;
        assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    }
    // Buyers from before the split are still buyers on their home shards.
    for (_, token) in &early[20..25] {
        let again = t.post(&path, Some(token), None).await;
        again.assert_problem(409, "ALREADY_PURCHASED");
    }
    assert_eq!(t.remaining(&sku).await, UNITS - 30);

    crowd(&t, &sku).await;
    sell_what_came_back(&t, &sku).await;
    assert_sold_exactly(&t, &sku).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sku_marked_before_its_sale_is_loaded_split_and_rebuilt_split() {
    let cache = cluster();
    let t = TestApp::start_on(&cache).await;
    let admin = t.admin_token().await;
    let created = t
        .post(
            "/admin/skus",
            Some(&admin),
            Some(serde_json::json!({
                "name": "Hot phone", "price": 10000, "seckill_price": 990, "seckill_num": 90,
                "seckill_begin": shared::ts::format(&(Utc::now() - chrono::Duration::minutes(1))),
                "seckill_end": shared::ts::format(&(Utc::now() + chrono::Duration::hours(1))),
            })),
        )
        .await;
    let sku = created.str("id");
    assert_eq!(mark_hot(&t, &admin, &sku).await.body["shards"], 3);
    let published = t.post(&format!("/admin/skus/{sku}/publish"), Some(&admin), None).await;
    assert_eq!(published.body["remaining"], 90, "{}", published.body);
    let path = format!("/seckill/items/{sku}/grab");
    for i in 0..30 {
        let reply = t.post(&path, Some(&t.user_token(&format!("early{i}"))), None).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    // Redis loses everything: the rebuild loads the three shards from the
    // ledger, each with its own shoppers' orders.
    for node in cache.nodes() {
        node.cli(&["FLUSHALL"]).unwrap();
    }
    let republished = t.post(&format!("/admin/skus/{sku}/publish"), Some(&admin), None).await;
    assert_eq!(republished.status, StatusCode::OK, "{}", republished.body);
    assert_eq!(republished.body["remaining"], 60);
    for i in 0..30 {
        let again = t.post(&path, Some(&t.user_token(&format!("early{i}"))), None).await;
        again.assert_problem(409, "ALREADY_PURCHASED");
    }
    let stats = t.app.gate.remaining(&sku).await.unwrap();
    assert_eq!(stats, Some(60));
}

/// Views of `sku` at about `per_second` for `seconds`, through the router.
async fn views(t: &TestApp, sku: &str, per_second: u32, seconds: u64) {
    let path = format!("/seckill/items/{sku}");
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / per_second);
    let until = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < until {
        ticks.tick().await;
        let reply = t.get(&path, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
}

fn hot_ids(items: &serde_json::Value) -> Vec<String> {
    items["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["hot"] == true)
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn discovery_marks_the_sku_the_traffic_goes_to_and_cools_it_after() {
    let cache = cluster();
    let t = Arc::new(TestApp::start_tuned(&cache, |config| config.hot.rate = 20.0).await);
    let admin = t.admin_token().await;
    let mut skus = Vec::new();
    for _ in 0..4 {
        skus.push(t.open_sale(&admin, 10, 900).await);
    }
    let hot_sku = skus[0].clone();

    // One SKU draws ~200 views a second (ten times the threshold), the
    // others ~2 each, for 3 s; the discovery job runs every second.
    let traffic = {
        let mut load: Vec<_> = (0..4)
            .map(|_| {
                let (t, sku) = (t.clone(), hot_sku.clone());
                tokio::spawn(async move { views(&t, &sku, 50, 3).await })
            })
            .collect();
        for sku in &skus[1..] {
            let (t, sku) = (t.clone(), sku.clone());
            load.push(tokio::spawn(async move { views(&t, &sku, 2, 3).await }));
        }
        load
    };
    let started = Instant::now();
    let mut marked_after = None;
    while started.elapsed() < Duration::from_secs(4) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let report = hot::sweep(t.app.ports(), t.app.hot, Utc::now()).await.unwrap();
        assert!(
            report.became_hot.iter().all(|sku| *sku == hot_sku),
            "only the busy SKU turns hot: {report:?}"
        );
        if report.became_hot.contains(&hot_sku) {
            marked_after.get_or_insert(started.elapsed());
        }
    }
    for load in traffic {
        load.await.unwrap();
    }
    let marked_after = marked_after.expect("the busy SKU was marked hot");
    println!("marked hot {marked_after:.1?} after its traffic began");
    // Its 10 s rate reaches the threshold in its first second; counts of a
    // second are flushed within the next and read once it is over: then
    // two sweep periods at most.
    assert!(marked_after <= Duration::from_secs(3), "{marked_after:?}");

    let listed = t.get("/admin/hot-items", Some(&admin)).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(hot_ids(&listed.body), std::slice::from_ref(&hot_sku));
    let first = &listed.body["items"][0];
    assert_eq!(
        (first["id"].as_str(), first["why"].as_str()),
        (Some(hot_sku.as_str()), Some("detected"))
    );
    assert!(first["rate_10s"].as_f64().unwrap() > 20.0, "{first}");
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        4,
        "every SKU viewed is listed"
    );

    // Its page is one a CDN may cache, once the instance learned it is hot
    // (a view more than a second after its last look makes it look again).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    t.get(&format!("/seckill/items/{hot_sku}"), None).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let page = t
        .send(
            Request::get(format!("/seckill/items/{hot_sku}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(page.headers[header::CACHE_CONTROL], "public, max-age=1");
    let etag = page.headers[header::ETAG].to_str().unwrap().to_owned();
    let again = t
        .send(
            Request::get(format!("/seckill/items/{hot_sku}"))
                .header(header::IF_NONE_MATCH, &etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    let cold = t.get(&format!("/seckill/items/{}", skus[1]), None).await;
    assert!(!cold.headers.contains_key(header::ETAG));

    // Quiet: it cools once its 10 s rate is below half the threshold.
    let quiet = Instant::now();
    let mut cooled_after = None;
    while quiet.elapsed() < Duration::from_secs(20) && cooled_after.is_none() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let report = hot::sweep(t.app.ports(), t.app.hot, Utc::now()).await.unwrap();
        if report.cooled.contains(&hot_sku) {
            cooled_after = Some(quiet.elapsed());
        }
    }
    println!("cooled {cooled_after:?} after its traffic stopped");
    assert!(cooled_after.is_some(), "the SKU cooled");
    let listed = t.get("/admin/hot-items", Some(&admin)).await;
    assert!(hot_ids(&listed.body).is_empty());
    let counts: HashMap<String, f64> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["id"].as_str().unwrap().to_owned(),
                item["rate_60s"].as_f64().unwrap(),
            )
        })
        .collect();
    assert!(counts[&hot_sku] > counts[&skus[1]], "{counts:?}");
}

#[tokio::test]
async fn hot_item_routes_need_an_operator_and_a_known_sku() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let shopper = t.user_token("nosy");
    t.get("/admin/hot-items", Some(&shopper))
        .await
        .assert_problem(403, "FORBIDDEN");
    t.call(Method::PUT, "/admin/hot-items/no-such-sku", Some(&admin), None)
        .await
        .assert_problem(404, "NOT_FOUND");
    let sku = t.open_sale(&admin, 10, 900).await;
    mark_hot(&t, &admin, &sku).await;
    let listed = t.get("/admin/hot-items", Some(&admin)).await;
    assert_eq!(hot_ids(&listed.body), std::slice::from_ref(&sku));
    assert_eq!(listed.body["items"][0]["why"], "marked");
    let unmarked = t
        .call(Method::DELETE, &format!("/admin/hot-items/{sku}"), Some(&admin), None)
        .await;
    assert_eq!(unmarked.status, StatusCode::NO_CONTENT);
    let listed = t.get("/admin/hot-items", Some(&admin)).await;
    assert!(hot_ids(&listed.body).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shard_lost_with_its_master_is_rebuilt_with_its_orders_and_nothing_resold() {
    let cache = cluster();
    let Cache::Cluster(nodes) = &cache else {
        unreachable!("a cluster")
    };
    let t = TestApp::start_on(&cache).await;
    let admin = t.admin_token().await;
    let sku = t.open_sale(&admin, 90, 900).await;
    mark_hot(&t, &admin, &sku).await;
    let path = format!("/seckill/items/{sku}/grab");
    let early: Vec<String> = (0..30).map(|i| t.user_token(&format!("early{i}"))).collect();
    for token in &early {
        let reply = t.post(&path, Some(token), None).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }

    // A master holding another shard than the first loses its data.
    let prefix = &t.config.redis_key_prefix;
    let keys = |node: &local_server::services::Redis, pattern: String| {
        node.cli(&["--scan", "--pattern", &pattern]).unwrap().trim().to_owned()
    };
    let lost = nodes
        .masters()
        .iter()
        .find(|node| {
            !keys(node, format!("{prefix}sk:{{{sku}~*}}:stock")).is_empty()
                && keys(node, format!("{prefix}sk:{{{sku}}}:stock")).is_empty()
        })
        .expect("the shards are on distinct masters");
    let stranded: i64 = lost
        .cli(&["GET", &keys(lost, format!("{prefix}sk:{{{sku}~*}}:stock"))])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let before = t.remaining(&sku).await;
    lost.cli(&["FLUSHALL"]).unwrap();

    let report = shared::domain::reconcile::reconcile(t.app.ports(), Utc::now())
        .await
        .unwrap();
    assert_eq!(report.skus_rebuilt, 1, "{report:?}");
    assert_eq!(
        t.remaining(&sku).await,
        before - stranded,
        "the lost shard's units are not sold again"
    );
    for token in &early {
        t.post(&path, Some(token), None)
            .await
            .assert_problem(409, "ALREADY_PURCHASED");
    }
    // What is left sells, and nothing more.
    let mut won = 0;
    for i in 0..100 {
        let reply = t.post(&path, Some(&t.user_token(&format!("after{i}"))), None).await;
        match (reply.status, reply.code()) {
            (StatusCode::CREATED, _) => won += 1,
            (StatusCode::CONFLICT, "SOLD_OUT") => break,
            _ => panic!("unexpected reply: {} {}", reply.status, reply.body),
        }
    }
    println!("lost shard: {stranded} units stranded; {won} sold after the rebuild");
    assert_eq!(won, before - stranded);
    let orders = t.live_orders(&sku).await;
    let buyers: BTreeSet<&str> = orders.iter().map(|o| o.username.as_str()).collect();
    assert_eq!((orders.len() as i64, buyers.len()), (30 + won, orders.len()));
}
