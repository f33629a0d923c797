//! The live boards operators watch a sale and a rain on, and the rains
//! shoppers and operators list, against real Redis and DynamoDB Local: every
//! answer the crowd got shows under its code, from every instance's counts.
//! (Apart from `metrics`: that test reads the process's one recorder.)
//!
//! Cluster pass: `scripts/test.sh` runs this suite again on a three-master
//! Redis Cluster (`REDIS_CLUSTER=true`), as deployed.

use std::{collections::BTreeMap, time::Duration};

use axum::http::StatusCode;
use futures::future::join_all;
use integration_tests::{TestApp, tally};
use serde_json::Value;

/// Reads a board until its minute holds `taps` answers (each instance sends
/// its counts within about a second), or gives up after 10 s.
async fn board_with(t: &TestApp, admin: &str, path: &str, taps: u64) -> Value {
    for _ in 0..50 {
        let board = t.get(path, Some(admin)).await;
        assert_eq!(board.status, StatusCode::OK, "{}", board.body);
        let answered: u64 = board.body["answers_60s"]
            .as_object()
            .map(|answers| answers.values().filter_map(Value::as_u64).sum())
            .unwrap_or_default();
        if answered >= taps {
            return board.body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{path} never showed {taps} answered taps");
}

fn answers(board: &Value) -> BTreeMap<String, u64> {
    serde_json::from_value(board["answers_60s"].clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sales_live_board_shows_its_stock_and_every_answer_by_code() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let sku = t.open_sale(&admin, 3, 900).await;
    let path = format!("/seckill/items/{sku}/grab");
    // 8 shoppers, one of them twice, at once, for 3 units.
    let shoppers: Vec<String> = (0..8).map(|n| format!("crowd-{n}")).chain(["crowd-0".into()]).collect();
    let tokens: Vec<String> = shoppers.iter().map(|shopper| t.user_token(shopper)).collect();
    let replies = join_all(tokens.iter().map(|token| t.post(&path, Some(token), None))).await;
    let counts = tally(&replies);
    assert_eq!(counts[&(201, String::new())], 3);

    let board = board_with(&t, &admin, &format!("/admin/skus/{sku}/live"), 9).await;
    println!("{board:#}");
    assert_eq!(
        (board["remaining"].as_i64(), board["sold"].as_i64()),
        (Some(0), Some(3))
    );
    assert_eq!(board["state"], "sold_out");
    // Every answer the crowd got, each under its code, and nothing else.
    let mut expected = BTreeMap::new();
    for ((_, code), n) in &counts {
        let code = if code.is_empty() { "CREATED" } else { code.as_str() };
        expected.insert(code.to_owned(), *n as u64);
    }
    assert_eq!(answers(&board), expected);
    let seconds = board["seconds"].as_array().unwrap();
    assert_eq!(seconds.len(), 60);
    let taps: u64 = seconds.iter().filter_map(|second| second["taps"].as_u64()).sum();
    assert_eq!(taps, 9);
    // Another sale's board saw none of it.
    let other = t.open_sale(&admin, 5, 900).await;
    let quiet = t.get(&format!("/admin/skus/{other}/live"), Some(&admin)).await;
    assert_eq!(answers(&quiet.body), BTreeMap::new());
    assert_eq!(quiet.body["remaining"], 5);
    t.get("/admin/skus/nope/live", Some(&admin))
        .await
        .assert_problem(404, "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rain_is_listed_for_shoppers_and_its_board_shows_claims_and_payout() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let campaign = t.open_campaign(&admin, 1_000, 4).await;
    let listed = t.get("/red-packets", None).await;
    assert_eq!(listed.status, StatusCode::OK);
    let rain = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rain| rain["id"] == campaign.as_str())
        .unwrap_or_else(|| panic!("{campaign} not in {}", listed.body))
        .clone();
    assert_eq!(
        (rain["remaining"].as_u64(), rain["state"].as_str()),
        (Some(4), Some("active"))
    );

    let path = format!("/red-packets/{campaign}/claim");
    let tokens: Vec<String> = (0..6).map(|n| t.user_token(&format!("rain-{n}"))).collect();
    let replies = join_all(tokens.iter().map(|token| t.post(&path, Some(token), None))).await;
    let claimed = replies.iter().filter(|reply| reply.status == StatusCode::OK).count();
    assert_eq!(claimed, 4);
    shared::job::finished("payout", payout::run_once(&t.app).await).unwrap();

    let board = board_with(&t, &admin, &format!("/admin/red-packets/{campaign}/live"), 6).await;
    println!("{board:#}");
    assert_eq!(
        answers(&board),
        BTreeMap::from([("CLAIMED".into(), 4), ("EXHAUSTED".into(), 2)])
    );
    assert_eq!(
        (board["remaining"].as_u64(), board["claimed"].as_u64()),
        (Some(0), Some(4))
    );
    assert_eq!(
        (board["credited"].as_u64(), board["credited_amount"].as_i64()),
        (Some(4), Some(1_000))
    );

    let operators = t.get("/admin/red-packets", Some(&admin)).await;
    assert_eq!(operators.status, StatusCode::OK);
    let listed = operators.body["items"].as_array().unwrap();
    let mine = listed.iter().find(|rain| rain["id"] == campaign.as_str()).unwrap();
    assert_eq!(
        (mine["remaining"].as_u64(), mine["state"].as_str()),
        (Some(0), Some("sold_out"))
    );
    t.get("/admin/red-packets", Some(&t.user_token("rain-0")))
        .await
        .assert_problem(403, "FORBIDDEN");
}
