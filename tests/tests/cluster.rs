//! The gate on a three-master Redis Cluster, as ElastiCache Serverless runs
//! it: where the keys land, a cold start while the cluster is down, and a
//! master killed mid-sale. (The other suites also run in cluster mode:
//! `scripts/test.sh` runs them with `REDIS_CLUSTER=true`.)

use std::{
    collections::{BTreeSet, HashMap},
    time::Duration as StdDuration,
};

use axum::http::StatusCode;
use integration_tests::{TestApp, grab_through_outage};
use local_server::services::{Cache, RedisCluster};
use serde_json::json;
use shared::{config::Config, gate::ReplicaWait};

fn cluster() -> Cache {
    Cache::Cluster(RedisCluster::start().expect("start a three-master Redis Cluster"))
}

/// `{id}` of a key `<prefix><kind>:{<id>}:<part>`.
fn hash_tag(key: &str) -> &str {
    let open = key.find('{').expect("every key has a hash tag");
    let close = key[open..].find('}').expect("the tag is closed") + open;
    &key[open + 1..close]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keys_of_one_sku_or_campaign_share_a_slot_and_skus_spread_over_the_masters() {
    let cache = cluster();
    let t = TestApp::start_on(&cache).await;
    let admin = t.admin_token().await;
    let mut skus = Vec::new();
    for _ in 0..12 {
        let sku = t.open_sale(&admin, 5, 900).await;
        let grabbed = t
            .post(&format!("/seckill/items/{sku}/grab"), Some(&t.user_token("keys")), None)
            .await;
        assert_eq!(grabbed.status, StatusCode::CREATED, "{}", grabbed.body);
        skus.push(sku);
    }
    let campaign = t.open_campaign(&admin, 1000, 10).await;
    let claimed = t
        .post(
            &format!("/red-packets/{campaign}/claim"),
            Some(&t.user_token("keys")),
            None,
        )
        .await;
    assert_eq!(claimed.status, StatusCode::OK, "{}", claimed.body);

    // Where each key of this test's namespace actually lives.
    let pattern = format!("{}*", t.config.redis_key_prefix);
    let mut homes: HashMap<String, BTreeSet<(usize, u16)>> = HashMap::new();
    for (index, master) in cache.nodes().iter().enumerate() {
        let keys = master.cli(&["--scan", "--pattern", &pattern]).unwrap();
        for key in keys.lines().filter(|k| k.contains('{')) {
            let slot = master
                .cli(&["CLUSTER", "KEYSLOT", key])
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            homes.entry(hash_tag(key).to_owned()).or_default().insert((index, slot));
        }
    }
    for id in skus.iter().chain([&campaign]) {
        let home = &homes[id.as_str()];
        assert_eq!(home.len(), 1, "every key of {id} in one slot on one master: {home:?}");
    }
    let masters: BTreeSet<usize> = skus.iter().map(|id| homes[id.as_str()].first().unwrap().0).collect();
    println!("12 SKUs over masters {masters:?}");
    assert!(masters.len() > 1, "SKUs spread over the masters, not one hot node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_while_the_cluster_is_down_serves_what_needs_no_redis() {
    let mut cache = cluster();
    let t = TestApp::start_on(&cache).await;
    let admin = t.admin_token().await;
    let sku = t.open_sale(&admin, 5, 900).await;
    cache.stop();

    // A new instance starts while every master is down.
    let cold = TestApp::with_config(t.config.clone()).await;
    let login = cold
        .post(
            "/admin/login",
            None,
            Some(json!({"login_name": "admin", "password": integration_tests::ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let orders = cold.get("/orders", Some(&cold.user_token("early"))).await;
    assert_eq!(orders.status, StatusCode::OK, "{}", orders.body);
    let grab = format!("/seckill/items/{sku}/grab");
    cold.post(&grab, Some(&cold.user_token("early")), None)
        .await
        .assert_problem(503, "UNAVAILABLE");

    cache.restart().unwrap();
    let reply = cold.post(&grab, Some(&cold.user_token("early")), None).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(cold.remaining(&sku).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_master_killed_mid_sale_and_restarted_keeps_the_books_straight() {
    const UNITS: i64 = 150;
    let mut cache = cluster();
    let t = TestApp::start_on(&cache).await;
    let admin = t.admin_token().await;
    let sku = t.open_sale(&admin, UNITS, 900).await;
    let other = t.open_sale(&admin, UNITS, 900).await;
    let Cache::Cluster(nodes) = &mut cache else {
        unreachable!("started as a cluster")
    };
    let victim = nodes.master_of(&t.gate_key("sk", &sku, "stock")).unwrap();
    let other_on_another_master = nodes.master_of(&t.gate_key("sk", &other, "stock")).unwrap() != victim;
    let bystander_shopper = t.user_token("bystander");
    let outage = async {
        tokio::time::sleep(StdDuration::from_millis(150)).await;
        let before = t.remaining(&sku).await;
        assert!(0 < before && before < UNITS, "the kill comes mid-sale ({before} left)");
        nodes.masters_mut()[victim].kill();
        // The other masters go on serving their slots meanwhile.
        if other_on_another_master {
            let grab = format!("/seckill/items/{other}/grab");
            let reply = t.post(&grab, Some(&bystander_shopper), None).await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        }
        tokio::time::sleep(StdDuration::from_millis(400)).await;
        nodes.restart(victim).unwrap();
    };
    grab_through_outage(&t, &sku, UNITS, "master killed", outage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_asks_the_replica_of_the_master_that_ran_the_script() {
    let cache = Cache::Cluster(RedisCluster::start_with(1).expect("start a cluster with replicas"));
    let Cache::Cluster(nodes) = &cache else {
        unreachable!("started as a cluster")
    };
    let setup = TestApp::start_on(&cache).await;
    let wait = ReplicaWait {
        replicas: 1,
        timeout: StdDuration::from_millis(100),
    };
    let t = TestApp::with_config(Config {
        redis_wait: Some(wait),
        ..setup.config.clone()
    })
    .await;
    let admin = t.admin_token().await;

    // Two SKUs on two different masters.
    let master_of = |sku: &str| nodes.master_of(&t.gate_key("sk", sku, "stock")).unwrap();
    let first = t.open_sale(&admin, 10, 900).await;
    let mut second = t.open_sale(&admin, 10, 900).await;
    while master_of(&second) == master_of(&first) {
        second = t.open_sale(&admin, 10, 900).await;
    }
    let t = &t;
    let grab = |sku: &str, shopper: &str| {
        let (path, token) = (format!("/seckill/items/{sku}/grab"), t.user_token(shopper));
        async move { t.post(&path, Some(&token), None).await }
    };
    assert_eq!(grab(&first, "early").await.status, StatusCode::CREATED);

    // The first SKU's master loses its replica (stalled, connected):
    // its writes cannot be confirmed, the other master's still can.
    let stalled = nodes.replicas_of(master_of(&first)).unwrap();
    stalled.iter().for_each(|replica| replica.freeze(true));
    grab(&first, "unlucky").await.assert_problem(503, "UNAVAILABLE");
    assert_eq!(grab(&second, "elsewhere").await.status, StatusCode::CREATED);

    stalled.iter().for_each(|replica| replica.freeze(false));
    let reply = grab(&first, "unlucky").await;
    assert!(
        reply.status == StatusCode::CREATED || reply.code() == "ALREADY_PURCHASED",
        "the replica is back: {}",
        reply.body
    );
}
