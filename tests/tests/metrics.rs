//! What operators watch, as the local server shows it at `GET /metrics`:
//! the figures a sale moves, in Prometheus text.

use axum::http::StatusCode;
use integration_tests::TestApp;

/// The value of the series `name{labels}` (or `name` without labels).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no `{series}` in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_moves_the_figures_operators_watch() {
    shared::metrics::record_for_prometheus().unwrap();
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let sku = t.open_sale(&admin, 1, 900).await;
    let path = format!("/seckill/items/{sku}/grab");
    let won = t.post(&path, Some(&t.user_token("first")), None).await;
    assert_eq!(won.status, StatusCode::CREATED);
    t.post(&path, Some(&t.user_token("second")), None)
        .await
        .assert_problem(409, "SOLD_OUT");
    let campaign = t.open_campaign(&admin, 100, 2).await;
    let claimed = t
        .post(
            &format!("/red-packets/{campaign}/claim"),
            Some(&t.user_token("first")),
            None,
        )
        .await;
    assert_eq!(claimed.status, StatusCode::OK);
    shared::job::finished("payout", payout::run_once(&t.app).await).unwrap();

    let reply = t
        .send(
            axum::http::Request::get("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.content_type.starts_with("text/plain"), "{}", reply.content_type);
    let text = reply.body.as_str().unwrap_or_default().to_owned();
    println!("{text}");
    assert_eq!(value(&text, r#"grabs{code="CREATED"}"#), 1.0);
    assert_eq!(value(&text, r#"grabs{code="SOLD_OUT"}"#), 1.0);
    assert_eq!(value(&text, r#"claims{code="CLAIMED"}"#), 1.0);
    assert!(value(&text, r#"latency_ms_count{route="grab"}"#) >= 2.0);
    assert_eq!(value(&text, "payout_credited"), 1.0);
    assert_eq!(value(&text, "payout_backlog"), 0.0);
    assert_eq!(value(&text, r#"job_runs{job="payout",outcome="ok"}"#), 1.0);
}
