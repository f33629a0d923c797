//! A real failover: a primary with a replica (`replicaof`) on loopback, a
//! crowd of grabs and claims, the replica promoted (`REPLICAOF NO ONE`)
//! while the old primary, not yet known to be gone, goes on answering for a
//! moment before it is killed: the window in which asynchronous replication
//! loses writes. The gate is then pointed at the promoted replica, and every
//! acknowledged grab and claim is looked for there.
//!
//! With `REDIS_WAIT_REPLICAS=1` nothing acknowledged is missing; with
//! waiting off the printout shows what the failover forgot.

use std::{collections::HashSet, time::Duration as StdDuration};

use axum::http::StatusCode;
use chrono::Utc;
use futures::future::join_all;
use integration_tests::{Reply, TestApp, settle_everything};
use local_server::services::{Cache, Redis};
use shared::gate::ReplicaWait;

const CROWD: usize = 400;

/// What one failover run saw: acknowledged, and of those, present in the
/// promoted replica.
#[derive(Debug)]
struct Survival {
    grabs_acknowledged: usize,
    grabs_present: usize,
    claims_acknowledged: usize,
    claims_present: usize,
}

impl Survival {
    fn lost(&self) -> usize {
        (self.grabs_acknowledged - self.grabs_present) + (self.claims_acknowledged - self.claims_present)
    }
}

/// Lines `redis-cli` printed for a multi-valued reply.
fn members(node: &Redis, args: &[&str]) -> HashSet<String> {
    node.cli(args).unwrap().lines().map(str::to_owned).collect()
}

/// The stack after the failover: the gate on the promoted replica.
struct Promoted {
    survival: Survival,
    t: TestApp,
    sku: String,
    campaign: String,
    /// Each shopper told they won a packet, and which.
    told: Vec<(String, String)>,
    /// The promoted replica and the new replica ElastiCache would attach.
    _nodes: (Redis, Redis),
}

async fn failover(wait: Option<ReplicaWait>) -> Promoted {
    let mut cache = Cache::Single(Redis::start().unwrap());
    let replica = Redis::replica_of(&cache.nodes()[0]).unwrap();
    let setup = TestApp::start_on(&cache).await;
    let t = TestApp::with_config(shared::config::Config {
        redis_wait: wait,
        ..setup.config.clone()
    })
    .await;
    let admin = t.admin_token().await;
    // One unit and one packet more than the crowd, for a shopper who grabs
    // and claims first: the instance has then read both sales' terms, so
    // the crowd's first taps do not all queue behind those reads (behind
    // the crowd's order writes on DynamoDB Local) until after the failover.
    let sku = t.open_sale(&admin, CROWD as i64 + 1, 900).await;
    let campaign = t.open_campaign(&admin, (CROWD as i64 + 1) * 10, CROWD as u32 + 1).await;
    let early = t.user_token("early");
    let grabbed = t.post(&format!("/seckill/items/{sku}/grab"), Some(&early), None).await;
    let claimed = t
        .post(&format!("/red-packets/{campaign}/claim"), Some(&early), None)
        .await;
    assert_eq!((grabbed.status.as_u16(), claimed.status.as_u16()), (201, 200));
    let users: Vec<(String, String)> = (0..CROWD)
        .map(|i| {
            let name = format!("crowd{i}");
            (t.user_token(&name), name)
        })
        .collect();

    let crowd = join_all(users.iter().enumerate().map(|(i, (token, _))| {
        let (t, sku, campaign) = (&t, &sku, &campaign);
        async move {
            tokio::time::sleep(StdDuration::from_millis(i as u64 * 2)).await;
            // At once, so that a claim does not wait for its grab's order
            // write and land after the failover every time.
            let (grab_path, claim_path) = (
                format!("/seckill/items/{sku}/grab"),
                format!("/red-packets/{campaign}/claim"),
            );
            tokio::join!(
                t.post(&grab_path, Some(token), None),
                t.post(&claim_path, Some(token), None)
            )
        }
    }));
    let failover = async {
        tokio::time::sleep(StdDuration::from_millis(400)).await;
        replica.cli(&["REPLICAOF", "NO", "ONE"]).unwrap();
        tokio::time::sleep(StdDuration::from_millis(250)).await;
        let Cache::Single(primary) = &mut cache else {
            unreachable!()
        };
        primary.kill();
    };
    let (replies, ()) = tokio::join!(crowd, failover);
    for reply in replies.iter().flat_map(|(grab, claim)| [grab, claim]) {
        assert!(
            matches!(reply.status.as_u16(), 200 | 201 | 503),
            "{} {}",
            reply.status,
            reply.body
        );
    }

    let buyers = members(&replica, &["SMEMBERS", &t.gate_key("sk", &sku, "buyers")]);
    let claimers = members(&replica, &["HKEYS", &t.gate_key("rp", &campaign, "claimed")]);
    let acknowledged = |pick: fn(&(Reply, Reply)) -> &Reply, ok: StatusCode| {
        replies
            .iter()
            .zip(&users)
            .filter(move |(pair, _)| pick(pair).status == ok)
            .map(|(_, (_, name))| name)
    };
    let grabs: Vec<&String> = acknowledged(|(grab, _)| grab, StatusCode::CREATED).collect();
    let claims: Vec<&String> = acknowledged(|(_, claim)| claim, StatusCode::OK).collect();
    let told = replies
        .iter()
        .zip(&users)
        .filter(|((_, claim), _)| claim.status == StatusCode::OK)
        .map(|((_, claim), (_, name))| (name.clone(), claim.str("red_packet_id")))
        .collect();
    let survival = Survival {
        grabs_acknowledged: grabs.len(),
        grabs_present: grabs.iter().filter(|name| buyers.contains(**name)).count(),
        claims_acknowledged: claims.len(),
        claims_present: claims.iter().filter(|name| claimers.contains(**name)).count(),
    };

    // Every instance now talks to the promoted replica, which gets a
    // replica of its own, as ElastiCache replaces the lost node.
    let new_replica = Redis::replica_of(&replica).unwrap();
    let promoted = TestApp::with_config(shared::config::Config {
        redis_url: replica.url(),
        ..t.config.clone()
    })
    .await;
    Promoted {
        survival,
        t: promoted,
        sku,
        campaign,
        told,
        _nodes: (replica, new_replica),
    }
}

/// Shoppers whose claim failed try again: the packet they may have got
/// before the failover, or a fresh one, never two; and each shopper told of
/// a packet is credited that very packet (the ledger had every claim before
/// its shopper heard of it, whatever the cache forgot).
async fn every_shopper_is_paid_one_packet_and_the_one_they_were_told(promoted: &Promoted) {
    let (t, campaign) = (&promoted.t, &promoted.campaign);
    let path = format!("/red-packets/{campaign}/claim");
    let names: Vec<String> = (0..CROWD).map(|i| format!("crowd{i}")).collect();
    let tokens: Vec<String> = names.iter().map(|name| t.user_token(name)).collect();
    // A claim that kept popping packets the ledger had given away (what
    // the cache forgot) says 503, and is sent again as a client does.
    let path = &path;
    let retry = |token: String| async move {
        for _ in 0..20 {
            let reply = t.post(path, Some(&token), None).await;
            if reply.status != StatusCode::SERVICE_UNAVAILABLE {
                return reply;
            }
        }
        panic!("a claim kept answering 503");
    };
    let retries = join_all(tokens.iter().cloned().map(retry)).await;
    for retry in &retries {
        assert!(
            retry.status == StatusCode::OK || retry.code() == "ALREADY_CLAIMED",
            "{}",
            retry.body
        );
    }
    let report = payout::run_once(&t.app).await.unwrap();
    let mut credited = HashSet::new();
    for name in &names {
        let balance = t.get("/me/balance", Some(&t.user_token(name))).await;
        let credits = balance.body["credits"].as_array().unwrap();
        assert_eq!(credits.len(), 1, "{name} holds exactly one packet: {}", balance.body);
        let packet = credits[0]["red_packet_id"].as_str().unwrap().to_owned();
        if let Some((_, told)) = promoted.told.iter().find(|(who, _)| who == name) {
            assert_eq!(&packet, told, "{name} is paid the packet they were told of");
        }
        assert!(credited.insert(packet));
    }
    assert_eq!(
        report.credited as usize,
        CROWD + 1,
        "the crowd's packets and the early one"
    );
}

/// After a failover: every shopper paid the one packet they were told of,
/// and, every order settled, sold + remaining == seckill_num.
async fn the_books_balance_once_settled(promoted: &Promoted) {
    every_shopper_is_paid_one_packet_and_the_one_they_were_told(promoted).await;
    let (remaining, live, _) = settle_everything(&promoted.t, &promoted.sku).await;
    assert_eq!(
        remaining + live as i64,
        CROWD as i64 + 1,
        "sold + remaining == seckill_num"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waiting_for_a_replica_keeps_every_acknowledged_grab_and_claim_through_a_failover() {
    let wait = ReplicaWait {
        replicas: 1,
        timeout: StdDuration::from_millis(100),
    };
    let promoted = failover(Some(wait)).await;
    let survival = &promoted.survival;
    println!("REDIS_WAIT_REPLICAS=1: {survival:?}");
    assert!(survival.grabs_acknowledged > 0 && survival.claims_acknowledged > 0);
    assert_eq!(survival.lost(), 0, "nothing acknowledged is forgotten");

    the_books_balance_once_settled(&promoted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_waiting_a_failover_forgets_what_the_old_primary_acknowledged_last() {
    let promoted = failover(None).await;
    let (survival, t, sku) = (&promoted.survival, &promoted.t, &promoted.sku);
    let ledger = t.live_orders(sku).await.len();
    let held = t.holds(sku, Utc::now() + chrono::Duration::days(1)).await;
    println!(
        "REDIS_WAIT_REPLICAS=0: {survival:?}; {} lost; the ledger has {ledger} orders, the promoted gate holds {}",
        survival.lost(),
        held
    );
    assert!(
        survival.lost() > 0,
        "the old primary acknowledged writes the replica never got"
    );

    // The reconciliation job puts every forgotten grab back from the ledger.
    let report = reconcile::run_once(&t.app).await.unwrap();
    println!("REDIS_WAIT_REPLICAS=0, then reconciliation: {report:?}");
    assert_eq!(
        report.orders_restored as usize,
        survival.grabs_acknowledged - survival.grabs_present
    );
    // Every order in the ledger holds its unit again. A grab that reserved
    // but failed to write its order (the failover cut it off) may hold one
    // more until the sweep releases it; the books below are checked once
    // everything is settled.
    let held = t.holds(sku, Utc::now() + chrono::Duration::days(1)).await;
    assert!(held >= ledger, "{held} held, {ledger} orders");
    // Claims the cache forgot are the ledger's: none is lost.
    the_books_balance_once_settled(&promoted).await;
}
