//! The whole API on one local port, as API Gateway would route it: every
//! function's own router (the same code its Lambda runs) merged into one,
//! plus the scheduled functions on timers, as EventBridge would run them.

pub mod alipay;
pub mod edge;
mod ledger;
pub mod services;
pub mod stripe_js;
pub mod wechat;

use std::{
    future::Future,
    sync::{Arc, LazyLock},
    time::Duration,
};

use axum::{Json, Router, response::Redirect, routing::get};
use chrono::Utc;
use shared::{
    App, Error,
    domain::{
        accounts, catalog, flash_sale,
        red_packet::{self, NewCampaign},
        storefront,
    },
    http::Routes,
    ledger::tables,
    model::{Guard, SkuFields},
    pages::Pages,
};
use tower_http::services::{ServeDir, ServeFile};

/// Every route of every HTTP function, as API Gateway routes them.
pub fn routes() -> Routes<Arc<App>> {
    ::accounts::routes()
        .merge(admin::routes())
        .merge(::catalog::routes())
        .merge(grab::routes())
        .merge(order::routes())
        .merge(pay::routes())
        .merge(payment_notify::routes())
        .merge(red_packet_claim::routes())
}

/// The OpenAPI document of the whole API (`openapi.yaml` at the repo root),
/// parsed once and served as JSON at `GET /openapi.json`.
pub static OPENAPI: LazyLock<serde_json::Value> = LazyLock::new(|| {
    serde_norway::from_str(include_str!("../../openapi.yaml")).expect("openapi.yaml is a valid YAML document")
});

/// The whole API on one router, plus `GET /health`, `GET /openapi.json`,
/// `GET /metrics` (every function's figures in Prometheus text; recorded
/// once [`shared::metrics::record_for_prometheus`] ran), the web console
/// at `/console/` (the files of `console/`, as CloudFront serves them in
/// the cloud) and the rendered item pages at `/items/{sku_id}.html`.
pub fn api(app: Arc<App>) -> Router {
    let pages = match &app.pages {
        Pages::Folder(folder) => Router::new().nest_service("/items", ServeDir::new(folder.root.join("items"))),
        Pages::FromTableStream => Router::new(),
    };
    let health = Router::new()
        .route("/health", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/openapi.json", get(|| async { Json(&*OPENAPI) }))
        .route("/metrics", get(prometheus_text))
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route_service("/console/", ServeFile::new(format!("{CONSOLE}/index.html")))
        // The whole path is looked up under the repo root, so only files
        // under `console/` are reachable (ServeDir refuses `..`).
        .route_service("/console/{*file}", ServeDir::new(REPO_ROOT));
    shared::http::finish(routes().into_router(app).merge(health).merge(pages))
}

const REPO_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const CONSOLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../console");

async fn prometheus_text() -> axum::response::Response {
    use axum::{http::header, response::IntoResponse};
    let text = shared::metrics::render().unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Creates the tables, retrying while DynamoDB Local finishes starting.
pub async fn create_tables(app: &App, prefix: &str) -> Result<(), shared::BoxError> {
    let mut attempt = 0;
    loop {
        match tables::create_all(app.ledger.client(), prefix).await {
            Ok(()) => return Ok(()),
            Err(error) if attempt < 40 => {
                attempt += 1;
                tracing::debug!(%error, "DynamoDB not ready yet");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Runs a scheduled function's job every `period`, as its EventBridge
/// schedule does in the cloud.
pub fn schedule<Job, Run, Report>(name: &'static str, period: Duration, job: Job) -> tokio::task::JoinHandle<()>
where
    Job: Fn() -> Run + Send + 'static,
    Run: Future<Output = Result<Report, Error>> + Send,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let run = job().await;
            shared::metrics::job_run(name, &run);
            if let Err(error) = run {
                tracing::warn!(%error, "{name} run failed");
            }
        }
    })
}

/// How often each scheduled function runs locally.
#[derive(Debug, Clone, Copy)]
pub struct JobPeriods {
    pub order_timeout: Duration,
    pub payout: Duration,
    pub reconcile: Duration,
    pub payments: Duration,
    pub hot_sweep: Duration,
}

/// The scheduled functions, on their local periods.
pub fn schedule_jobs(app: &Arc<App>, periods: JobPeriods) {
    let timeouts = app.clone();
    schedule("order-timeout", periods.order_timeout, move || {
        let app = timeouts.clone();
        async move { order_timeout::run_once(&app).await }
    });
    let payouts = app.clone();
    schedule("payout", periods.payout, move || {
        let app = payouts.clone();
        async move { payout::run_once(&app).await }
    });
    let reconciles = app.clone();
    schedule("reconcile", periods.reconcile, move || {
        let app = reconciles.clone();
        async move { reconcile::run_once(&app).await }
    });
    let settlements = app.clone();
    schedule("payments", periods.payments, move || {
        let app = settlements.clone();
        async move { payments::run_once(&app).await }
    });
    let discoveries = app.clone();
    schedule("hot-sweep", periods.hot_sweep, move || {
        let app = discoveries.clone();
        async move { hot_sweep::run_once(&app).await }
    });
}

/// What `seed` made, for the start-up banner.
pub struct Seeded {
    pub sku_id: String,
    pub campaign_id: String,
}

/// The first operator, a demo flash sale and a demo red-packet rain, both
/// open now for a day.
pub async fn seed(app: &App, admin_password: &str) -> Result<Seeded, Error> {
    accounts::ensure_admin(&app.ledger, "admin", admin_password).await?;
    let now = Utc::now();
    let window = (now - chrono::Duration::minutes(1), now + chrono::Duration::days(1));
    let fields = SkuFields {
        num: Some(1000),
        category1_name: Some("Phones".into()),
        brand_name: Some("Demo".into()),
        ..SkuFields::new("Demo phone 256GB", (599_900, 99_900), 100, window)
    };
    let sku = catalog::create_sku(&app.ledger, fields, now).await?;
    let published = flash_sale::publish(app.ports(), &sku.id, now).await?;
    storefront::refresh_item_page(&app.pages, &published.sku).await?;
    let rain = NewCampaign {
        name: "Demo red-packet rain".into(),
        total_amount: 100_000,
        count: 200,
        begin: now - chrono::Duration::minutes(1),
        end: now + chrono::Duration::days(1),
        min_amount: 1,
        guard: Guard::default(),
    };
    let campaign = red_packet::create(app.ports(), rain, now).await?;
    Ok(Seeded {
        sku_id: sku.id,
        campaign_id: campaign.id,
    })
}
