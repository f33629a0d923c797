//! Red-packet rain end to end: campaigns, atomic claims under a crowd,
//! and exactly-once payout even when the payout job dies mid-batch.
//!
//! Cluster pass: `scripts/test.sh` runs this suite again on a three-master
//! Redis Cluster (`REDIS_CLUSTER=true`), as deployed.

use std::{
    collections::{HashMap, HashSet},
    time::Instant,
};

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use futures::{StreamExt, future::join_all};
use integration_tests::{Reply, TestApp, conflicting::ConflictingDynamo, services};
use serde_json::{Value, json};
use shared::{
    config::Config,
    domain::red_packet,
    ports::{CampaignStore, CreditOutcome, PacketPool},
    ts,
};

async fn stats(t: &TestApp, admin: &str, id: &str) -> Value {
    t.get(&format!("/admin/red-packets/{id}"), Some(admin)).await.body
}

#[tokio::test]
async fn claim_and_get_paid() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let id = t.open_campaign(&admin, 1_000, 3).await;
    let s = stats(&t, &admin, &id).await;
    assert_eq!(
        (s["total_amount"].as_i64(), s["count"].as_i64(), s["remaining"].as_i64()),
        (Some(1_000), Some(3), Some(3))
    );

    let alice = t.user_token("alice");
    let path = format!("/red-packets/{id}/claim");
    let got = t.post(&path, Some(&alice), None).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    let amount = got.body["amount"].as_i64().unwrap();
    assert!(got.str("red_packet_id").starts_with(&id));
    let again = t.post(&path, Some(&alice), None).await;
    again.assert_problem(409, "ALREADY_CLAIMED");
    assert_eq!(
        (again.str("red_packet_id"), again.body["amount"].as_i64()),
        (got.str("red_packet_id"), Some(amount))
    );

    assert_eq!(
        t.get("/me/balance", Some(&alice)).await.body["balance"],
        0,
        "not paid out yet"
    );
    let report = payout::run_once(&t.app).await.unwrap();
    assert_eq!(report.credited, 1);
    let balance = t.get("/me/balance", Some(&alice)).await;
    assert_eq!(balance.body["balance"].as_i64(), Some(amount));
    let credits = balance.body["credits"].as_array().unwrap();
    assert_eq!(credits.len(), 1);
    assert_eq!(credits[0]["campaign_id"], id.as_str());
    assert!(credits[0]["credited_at"].is_string());

    let s = stats(&t, &admin, &id).await;
    assert_eq!(
        (s["remaining"].as_i64(), s["claimed"].as_i64(), s["credited"].as_i64()),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(s["credited_amount"].as_i64(), Some(amount));

    for user in ["bob", "carol"] {
        assert_eq!(
            t.post(&path, Some(&t.user_token(user)), None).await.status,
            StatusCode::OK
        );
    }
    t.post(&path, Some(&t.user_token("dave")), None)
        .await
        .assert_problem(409, "EXHAUSTED");
    payout::run_once(&t.app).await.unwrap();
    let s = stats(&t, &admin, &id).await;
    assert_eq!(
        (s["credited"].as_i64(), s["credited_amount"].as_i64()),
        (Some(3), Some(1_000))
    );
}

#[tokio::test]
async fn campaign_refusals() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let now = Utc::now();
    let upcoming = t
        .campaign(&admin, 100, 1, now + Duration::hours(1), now + Duration::hours(2))
        .await;
    let ended = t
        .campaign(&admin, 100, 1, now - Duration::hours(2), now - Duration::hours(1))
        .await;
    let user = t.user_token("erin");
    t.post(&format!("/red-packets/{upcoming}/claim"), Some(&user), None)
        .await
        .assert_problem(403, "NOT_STARTED");
    t.post(&format!("/red-packets/{ended}/claim"), Some(&user), None)
        .await
        .assert_problem(403, "ENDED");
    t.post("/red-packets/01NOSUCHCAMPAIGN/claim", Some(&user), None)
        .await
        .assert_problem(404, "NOT_FOUND");
    t.post(&format!("/red-packets/{upcoming}/claim"), None, None)
        .await
        .assert_problem(401, "UNAUTHORIZED");
    t.get("/admin/red-packets/01NOSUCHCAMPAIGN", Some(&admin))
        .await
        .assert_problem(404, "NOT_FOUND");
    t.get(&format!("/admin/red-packets/{upcoming}"), Some(&user))
        .await
        .assert_problem(403, "FORBIDDEN");

    let valid = json!({"name": "Rain", "total_amount": 1000, "count": 10,
                       "begin": ts::format(&now), "end": ts::format(&(now + Duration::hours(1)))});
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    for body in [
        with("total_amount", json!(9)),
        with("min_amount", json!(101)),
        with("min_amount", json!(0)),
        with("count", json!(0)),
        with("count", json!(100_001)),
        with("count", json!(-1)),
        with("total_amount", json!(-100)),
        with("end", json!(ts::format(&(now - Duration::hours(1))))),
        with("name", json!("")),
        with("bonus", json!(1)),
    ] {
        let reply = t.post("/admin/red-packets", Some(&admin), Some(body.clone())).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (400, "VALIDATION"),
            "{body} → {}",
            reply.body
        );
    }
    // The exact fit is fine: every packet gets the minimum.
    let exact = t
        .post("/admin/red-packets", Some(&admin), Some(with("min_amount", json!(100))))
        .await;
    assert_eq!(exact.status, StatusCode::CREATED, "{}", exact.body);
}

const PACKETS: u32 = 500;
const TOTAL: i64 = 1_234_567;
const USERS: usize = 2_000;
const ATTEMPTS: usize = 5_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crowd_claims_every_packet_once_and_payout_credits_each_once() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let id = t.open_campaign(&admin, TOTAL, PACKETS).await;
    let path = format!("/red-packets/{id}/claim");
    let users: Vec<(String, String)> = (0..USERS)
        .map(|i| {
            let name = format!("tapper{i:04}");
            let token = t.user_token(&name);
            (name, token)
        })
        .collect();

    // As many in flight as a fleet of Lambda instances serves at once: each
    // winner's claim is a ledger write before its answer, and DynamoDB
    // Local, one Java process on the same cores, times out past a few
    // hundred at once.
    let started = Instant::now();
    let replies: Vec<(String, Reply)> = futures::stream::iter(0..ATTEMPTS)
        .map(|i| {
            let (name, token) = &users[i % USERS];
            let (t, path) = (&t, &path);
            async move { (name.clone(), t.post(path, Some(token), None).await) }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let elapsed = started.elapsed();

    let mut won: HashMap<String, (String, i64)> = HashMap::new();
    let (mut exhausted, mut already) = (0, 0);
    for (name, reply) in &replies {
        match (reply.status, reply.code()) {
            (StatusCode::OK, _) => {
                let previous = won.insert(
                    name.clone(),
                    (reply.str("red_packet_id"), reply.body["amount"].as_i64().unwrap()),
                );
                assert!(previous.is_none(), "{name} won twice");
            }
            (StatusCode::CONFLICT, "EXHAUSTED") => exhausted += 1,
            (StatusCode::CONFLICT, "ALREADY_CLAIMED") => already += 1,
            _ => panic!("unexpected reply for {name}: {} {}", reply.status, reply.body),
        }
    }
    let packets: HashSet<&str> = won.values().map(|(p, _)| p.as_str()).collect();
    let claimed: i64 = won.values().map(|(_, a)| a).sum();
    println!(
        "claim crowd: {ATTEMPTS} attempts from {USERS} users on {PACKETS} packets in {elapsed:.2?} ({:.0} req/s): \
         {} claimed ({} distinct packets, {claimed} cents of {TOTAL}), {exhausted} EXHAUSTED, {already} ALREADY_CLAIMED",
        ATTEMPTS as f64 / elapsed.as_secs_f64(),
        won.len(),
        packets.len(),
    );
    assert_eq!(won.len(), PACKETS as usize, "every packet claimed");
    assert_eq!(packets.len(), PACKETS as usize, "no packet twice");
    assert_eq!(claimed, TOTAL, "the claimed amounts are the campaign total");
    assert_eq!(won.len() + exhausted + already, ATTEMPTS);

    let started = Instant::now();
    let report = payout::run_once(&t.app).await.unwrap();
    println!("payout: {report:?} in {:.2?}", started.elapsed());
    assert_eq!(report.credited, PACKETS);
    let s = stats(&t, &admin, &id).await;
    assert_eq!(
        (s["claimed"].as_i64(), s["credited"].as_i64()),
        (Some(PACKETS.into()), Some(PACKETS.into()))
    );
    assert_eq!(s["credited_amount"].as_i64(), Some(TOTAL), "credited == claimed");
    for (name, (packet, amount)) in &won {
        let balance = t.app.ledger.balance(name).await.unwrap();
        let credits = t.app.ledger.credits_of_user(name, 100, None).await.unwrap().items;
        assert_eq!(balance, *amount, "{name}'s balance is their packet");
        assert_eq!(
            credits.iter().map(|c| c.amount).sum::<i64>(),
            balance,
            "balance == sum of credits"
        );
        assert_eq!(credits.len(), 1);
        assert_eq!(&credits[0].red_packet_id, packet);
    }
    // A second run finds nothing to do.
    assert_eq!(payout::run_once(&t.app).await.unwrap().credited, 0);
}

/// Claims `n` packets for `payer0..payer{n-1}`.
async fn claimed(t: &TestApp, admin: &str, total: i64, n: u32) -> (String, HashMap<String, i64>) {
    let id = t.open_campaign(admin, total, n).await;
    let mut amounts = HashMap::new();
    for i in 0..n {
        let name = format!("payer{i}");
        let packet = red_packet::claim(t.app.ports(), &id, &name, Utc::now()).await.unwrap();
        amounts.insert(name, packet.amount);
    }
    (id, amounts)
}

async fn assert_paid_exactly_once(t: &TestApp, id: &str, amounts: &HashMap<String, i64>, total: i64) {
    for (name, amount) in amounts {
        assert_eq!(
            t.app.ledger.balance(name).await.unwrap(),
            *amount,
            "{name} credited exactly once"
        );
    }
    let campaign = t.app.ledger.get_campaign(id).await.unwrap().unwrap();
    assert_eq!(
        (campaign.credited as usize, campaign.credited_amount),
        (amounts.len(), total)
    );
    assert_eq!(t.app.ledger.owed_count().await.unwrap().records, 0, "nothing owed");
}

#[tokio::test]
async fn payout_killed_half_way_leaves_the_rest_owed_and_pays_nothing_twice() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let (id, amounts) = claimed(&t, &admin, 10_000, 30).await;

    // A run read twelve owed claims, credited seven, then died.
    let read = t.app.ledger.owed(12).await.unwrap();
    assert_eq!(read.len(), 12);
    for record in &read[..7] {
        assert_eq!(
            t.app.ledger.credit(record, Utc::now()).await.unwrap(),
            CreditOutcome::Credited
        );
    }

    let report = payout::run_once(&t.app).await.unwrap();
    assert_eq!(report.credited, 23, "{report:?}");
    assert_paid_exactly_once(&t, &id, &amounts, 10_000).await;
}

/// A claim whose shopper was told of it is in the ledger before the cache
/// could forget it: a shopper the cache forgot cannot claim a second
/// packet, and the packet they were told of is paid out.
#[tokio::test]
async fn a_claim_the_cache_forgot_is_the_ledgers_and_never_doubled() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let id = t.open_campaign(&admin, 300, 3).await;
    let path = format!("/red-packets/{id}/claim");
    let ann = t.user_token("ann");
    let first = t.post(&path, Some(&ann), None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    // The cache forgets ann's claim, as a failover to a replica that
    // missed it does: the packet back on the pool, ann unknown there.
    let packet = serde_json::json!({"red_packet_id": first.str("red_packet_id"), "amount": first.body["amount"]});
    let claimed = t.gate_key("rp", &id, "claimed");
    let pool = t.gate_key("rp", &id, "pool");
    let node = &services().redis.nodes()[0];
    node.cli(&["-c", "HDEL", &claimed, "ann"]).unwrap();
    node.cli(&["-c", "LPUSH", &pool, &packet.to_string()]).unwrap();

    let again = t.post(&path, Some(&ann), None).await;
    again.assert_problem(409, "ALREADY_CLAIMED");
    assert_eq!(again.str("red_packet_id"), first.str("red_packet_id"));
    for shopper in ["bob", "cat"] {
        assert_eq!(
            t.post(&path, Some(&t.user_token(shopper)), None).await.status,
            StatusCode::OK
        );
    }
    t.post(&path, Some(&t.user_token("dan")), None)
        .await
        .assert_problem(409, "EXHAUSTED");
    payout::run_once(&t.app).await.unwrap();
    assert_eq!(
        t.app.ledger.balance("ann").await.unwrap(),
        first.body["amount"].as_i64().unwrap()
    );
    let campaign = t.app.ledger.get_campaign(&id).await.unwrap().unwrap();
    assert_eq!((campaign.credited, campaign.credited_amount), (3, 300));
}

#[tokio::test]
async fn a_payout_whose_transactions_conflict_pays_them_later_never_counts_them_paid() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let (id, amounts) = claimed(&t, &admin, 10_000, 30).await;

    // Another run's transactions hold the items for the whole of this run.
    let dynamo = ConflictingDynamo::start(&services().dynamo.endpoint()).await;
    let contended = TestApp::with_config(Config {
        dynamodb_endpoint: Some(dynamo.endpoint().to_owned()),
        ..t.config.clone()
    })
    .await;
    let report = payout::run_once(&contended.app).await.unwrap();
    assert!(dynamo.conflicts() > 0);
    assert_eq!(
        (report.credited, report.already_credited, report.deferred),
        (0, 0, 30),
        "{report:?}"
    );
    for name in amounts.keys() {
        assert_eq!(t.app.ledger.balance(name).await.unwrap(), 0, "{name}");
    }

    dynamo.conflict(false);
    let report = payout::run_once(&contended.app).await.unwrap();
    assert_eq!(report.credited, 30, "{report:?}");
    assert_paid_exactly_once(&t, &id, &amounts, 10_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_payout_runs_credit_each_packet_once() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let (id, amounts) = claimed(&t, &admin, 50_000, 120).await;

    let runs = join_all((0..3).map(|_| payout::run_once(&t.app))).await;
    let credited: u32 = runs.into_iter().map(|r| r.unwrap().credited).sum();
    assert_eq!(credited, 120, "each packet credited by exactly one run");
    assert_paid_exactly_once(&t, &id, &amounts, 50_000).await;
}

#[tokio::test]
async fn a_rain_paid_out_in_full_lets_its_keys_expire() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let id = t.open_campaign(&admin, 100, 2).await;
    let got = t
        .post(&format!("/red-packets/{id}/claim"), Some(&t.user_token("last")), None)
        .await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);

    // Over, but a claim is still to be paid: that run pays it, then retires.
    let later = Utc::now() + Duration::days(1);
    let report = red_packet::payout(t.app.ports(), later, red_packet::PayoutLimits::default())
        .await
        .unwrap();
    assert_eq!((report.credited, report.retired), (1, 1), "{report:?}");
    for part in ["meta", "pool", "claimed"] {
        let ttl = t.key_ttl("rp", &id, part);
        assert!(0 < ttl && ttl <= 2 * 24 * 3600 * 1000, "{part}: {ttl}");
    }
    assert!(!t.app.gate.live_campaigns().await.unwrap().contains(&id));
}
