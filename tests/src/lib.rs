//! Test harness: one redis-server and one DynamoDB Local per test binary,
//! and per test a fresh namespace in both (its own table prefix and Redis
//! key prefix), so tests run side by side without seeing each other.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    http::{Method, Request, StatusCode, header},
};
use chrono::{DateTime, Utc};
use local_server::services::{Cache, Stack};
use serde_json::{Value, json};
use shared::{
    App,
    config::Config,
    domain::{accounts, admission::Limits, auth::Role, flash_sale, payments},
    model::{Order, PayMethod},
    ports::{OrderStore, StockGate},
    ts,
};
use tower::ServiceExt;

pub mod conflicting;

/// The repository's root, for the tests that read its files.
pub const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// `infra/template.yaml`, parsed.
pub fn template_yaml() -> serde_norway::Value {
    let path = std::path::Path::new(WORKSPACE).join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).expect("read infra/template.yaml");
    serde_norway::from_str(&text).expect("infra/template.yaml is YAML")
}

pub const SECRET: &str = "integration-test-secret-of-at-least-32-bytes";
pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// `REDIS_CLUSTER=true` runs the suites on a three-master Redis Cluster
/// (`scripts/test.sh` runs them both ways).
pub fn cluster_mode() -> bool {
    std::env::var("REDIS_CLUSTER").is_ok_and(|v| v == "true")
}

/// Started on first use, killed when the test process exits.
pub fn services() -> &'static Stack {
    static SERVICES: OnceLock<Stack> = OnceLock::new();
    SERVICES.get_or_init(|| Stack::start(cluster_mode()).expect("start redis-server and DynamoDB Local"))
}

/// A Redis of the test's own, in the mode the suite runs in.
pub fn own_cache() -> Cache {
    Cache::start(cluster_mode()).expect("start redis")
}

/// The status and JSON body of one call.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    pub fn str(&self, field: &str) -> String {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no string `{field}` in {}", self.body))
            .to_owned()
    }

    /// Asserts a problem+json refusal with this status and code.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!((self.status.as_u16(), self.code()), (status, code), "{}", self.body);
        assert_eq!(self.content_type, "application/problem+json");
        for field in ["type", "title", "status", "detail", "code"] {
            assert!(!self.body[field].is_null(), "problem without `{field}`: {}", self.body);
        }
    }
}

pub struct TestApp {
    pub app: Arc<App>,
    pub router: Router,
    pub config: Config,
}

impl TestApp {
    /// A fresh namespace on the shared services.
    pub async fn start() -> Self {
        Self::start_on(&services().redis).await
    }

    /// A fresh namespace on the shared services, counting what clients do
    /// against `limits`.
    pub async fn start_limited(limits: Limits) -> Self {
        Self::start_with(&services().redis, limits).await
    }

    /// A fresh namespace on the shared DynamoDB Local and the given Redis.
    pub async fn start_on(cache: &Cache) -> Self {
        Self::start_with(cache, Limits::none()).await
    }

    async fn start_with(cache: &Cache, limits: Limits) -> Self {
        Self::start_tuned(cache, |config| config.limits = limits).await
    }

    /// A fresh namespace on the shared DynamoDB Local and the given Redis,
    /// with the settings `tune` changes.
    pub async fn start_tuned(cache: &Cache, tune: impl FnOnce(&mut Config)) -> Self {
        let services = services();
        let namespace = format!("t{}-", ulid::Ulid::generate().to_string().to_lowercase());
        let mut config = Config {
            redis_key_prefix: namespace.clone(),
            table_prefix: namespace,
            token_ttl: Duration::from_secs(3600),
            redis_cluster: cache.is_cluster(),
            // Tests hammer one shopper on purpose; `start_limited` counts.
            limits: Limits::none(),
            ..Config::local(cache.url(), services.dynamo.endpoint(), SECRET.into())
        };
        tune(&mut config);
        let test = Self::with_config(config).await;
        local_server::create_tables(&test.app, &test.config.table_prefix)
            .await
            .expect("create tables");
        test
    }

    /// The same namespace with other settings (another Redis, a broken
    /// DynamoDB endpoint): a second Lambda instance of the same stack.
    pub async fn with_config(config: Config) -> Self {
        let app = App::connect(&config).await.expect("connect");
        TestApp {
            router: local_server::api(app.clone()),
            app,
            config,
        }
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).unwrap()).await
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply {
            status,
            content_type,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        self.call(Method::POST, path, token, body).await
    }

    /// A token for a shopper, signed as `POST /auth/login` would sign it
    /// (registering thousands of users through Argon2 would only slow the
    /// tests; the register/login routes have tests of their own).
    pub fn user_token(&self, username: &str) -> String {
        self.app.tokens.issue(username, Role::User, Utc::now()).token
    }

    /// Seeds the operator and logs in through the API.
    pub async fn admin_token(&self) -> String {
        accounts::ensure_admin(&self.app.ledger, "admin", ADMIN_PASSWORD)
            .await
            .unwrap();
        let reply = self
            .post(
                "/admin/login",
                None,
                Some(json!({"login_name": "admin", "password": ADMIN_PASSWORD})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.str("token")
    }

    /// Creates and publishes a SKU through the admin API; returns its id.
    pub async fn published_sku(
        &self,
        admin: &str,
        seckill_num: i64,
        begin: DateTime<Utc>,
        end: DateTime<Utc>,
        pay_timeout_seconds: u32,
    ) -> String {
        let created = self
            .post(
                "/admin/skus",
                Some(admin),
                Some(json!({
                    "name": "Test phone",
                    "price": 10000,
                    "seckill_price": 990,
                    "seckill_num": seckill_num,
                    "seckill_begin": ts::format(&begin),
                    "seckill_end": ts::format(&end),
                    "pay_timeout_seconds": pay_timeout_seconds,
                })),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let sku_id = created.str("id");
        let published = self
            .post(&format!("/admin/skus/{sku_id}/publish"), Some(admin), None)
            .await;
        assert_eq!(published.status, StatusCode::OK, "{}", published.body);
        sku_id
    }

    /// A SKU on sale from a minute ago for an hour.
    /// A SKU's fields as an operator may `PUT` them back: what
    /// `GET /admin/skus/{id}` shows, less what the server keeps.
    pub async fn sku_fields(&self, admin: &str, sku_id: &str) -> Value {
        let mut fields = self.get(&format!("/admin/skus/{sku_id}"), Some(admin)).await.body;
        for kept in [
            "id",
            "status",
            "sale_num",
            "comment_num",
            "create_time",
            "update_time",
            "published_at",
        ] {
            fields.as_object_mut().expect("a SKU").remove(kept);
        }
        fields
    }

    pub async fn open_sale(&self, admin: &str, seckill_num: i64, pay_timeout_seconds: u32) -> String {
        let now = Utc::now();
        self.published_sku(
            admin,
            seckill_num,
            now - chrono::Duration::minutes(1),
            now + chrono::Duration::hours(1),
            pay_timeout_seconds,
        )
        .await
    }

    /// A fresh namespace with the settings `tune` changes, served on
    /// `listener` as well (where a provider sends its notifications).
    pub async fn serving(listener: tokio::net::TcpListener, tune: impl FnOnce(&mut Config)) -> Self {
        let t = Self::start_tuned(&services().redis, tune).await;
        let router = t.router.clone();
        tokio::spawn(async move { axum::serve(listener, router).await });
        t
    }

    /// `POST /orders/{order_id}/pay` with `method`, answered 200.
    pub async fn pay_with(&self, order_id: &str, token: &str, method: &str) -> Reply {
        let path = format!("/orders/{order_id}/pay");
        let reply = self.post(&path, Some(token), Some(json!({"method": method}))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply
    }

    /// A fresh one-unit sale with this pay timeout, grabbed by `shopper`:
    /// the order, and the shopper's token.
    pub async fn grabbed_by(&self, shopper: &str, pay_timeout_seconds: u32) -> (Order, String) {
        let admin = self.admin_token().await;
        let sku = self.open_sale(&admin, 1, pay_timeout_seconds).await;
        let token = self.user_token(shopper);
        let reply = self
            .post(&format!("/seckill/items/{sku}/grab"), Some(&token), None)
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        (self.order(&reply.str("order_id")).await, token)
    }

    /// The order once `done` says so (a provider's notification comes a
    /// moment after the payment); fails after 20 s.
    pub async fn order_once(&self, order_id: &str, done: impl Fn(&Order) -> bool) -> Order {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let order = self.order(order_id).await;
            if done(&order) {
                return order;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the notification never moved the order: {order:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates a red-packet campaign through the admin API; returns its id.
    pub async fn campaign(
        &self,
        admin: &str,
        total: i64,
        count: u32,
        begin: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> String {
        let reply = self
            .post(
                "/admin/red-packets",
                Some(admin),
                Some(json!({"name": "Rain", "total_amount": total, "count": count,
                            "begin": ts::format(&begin), "end": ts::format(&end)})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.str("id")
    }

    /// A campaign raining from a minute ago for an hour.
    pub async fn open_campaign(&self, admin: &str, total: i64, count: u32) -> String {
        let now = Utc::now();
        self.campaign(
            admin,
            total,
            count,
            now - chrono::Duration::minutes(1),
            now + chrono::Duration::hours(1),
        )
        .await
    }

    pub async fn remaining(&self, sku_id: &str) -> i64 {
        self.app
            .gate
            .remaining(sku_id)
            .await
            .unwrap()
            .expect("sku loaded in Redis")
    }

    pub async fn live_orders(&self, sku_id: &str) -> Vec<Order> {
        self.app.ledger.live_orders_of_sku(sku_id).await.unwrap()
    }

    pub async fn order(&self, order_id: &str) -> Order {
        self.app
            .ledger
            .get_order(order_id)
            .await
            .unwrap()
            .expect("order exists")
    }

    /// This test's Redis key of a SKU (`sk`) or campaign (`rp`), as the
    /// gate names it: `<prefix><kind>:{<id>}:<part>`.
    pub fn gate_key(&self, kind: &str, id: &str, part: &str) -> String {
        format!("{}{kind}:{{{id}}}:{part}", self.config.redis_key_prefix)
    }

    /// The time to live in ms of [`gate_key`](Self::gate_key) on the shared
    /// services (-1: none, -2: no such key).
    pub fn key_ttl(&self, kind: &str, id: &str, part: &str) -> i64 {
        let key = self.gate_key(kind, id, part);
        // `-c` follows a cluster's redirection to the key's master.
        let ttl = services().redis.nodes()[0].cli(&["-c", "PTTL", &key]).unwrap();
        ttl.trim().parse().unwrap_or_else(|_| panic!("PTTL {key}: {ttl}"))
    }

    /// Held units of a SKU whose pay deadline is before `until`.
    pub async fn holds(&self, sku_id: &str, until: DateTime<Utc>) -> usize {
        self.app.gate.overdue(sku_id, until, 100_000).await.unwrap().len()
    }
}

/// A loopback port to serve an app on, and the URL of `provider`'s
/// notifications there.
pub async fn notify_port(provider: &str) -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let url = format!(
        "http://{}/payments/{provider}/notify",
        listener.local_addr().expect("bound")
    );
    (listener, url)
}

/// Pays every live order, then lets the timeout job settle every hold as if
/// all deadlines had passed; returns (remaining, live orders, abandoned).
pub async fn settle_everything(t: &TestApp, sku: &str) -> (i64, usize, u32) {
    let later = Utc::now() + chrono::Duration::days(1);
    for order in t.live_orders(sku).await {
        let now = order.pay_deadline - chrono::Duration::seconds(1);
        payments::pay(t.app.ports(), &order.username, &order.id, PayMethod::Sandbox, None, now)
            .await
            .unwrap();
    }
    let report = flash_sale::sweep(t.app.ports(), later, 10_000).await.unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(t.holds(sku, later).await, 0, "every hold settled");
    (t.remaining(sku).await, t.live_orders(sku).await.len(), report.abandoned)
}

pub fn tally(replies: &[Reply]) -> HashMap<(u16, String), usize> {
    let mut counts = HashMap::new();
    for reply in replies {
        let key = (reply.status.as_u16(), reply.code().to_owned());
        assert!(
            matches!(key.0, 201 | 409 | 503),
            "only sales, clean refusals and 503s: {} {}",
            reply.status,
            reply.body
        );
        if key.0 == 503 {
            reply.assert_problem(503, "UNAVAILABLE");
        }
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// 300 shoppers grab one SKU of `units`, 3 ms apart, while `outage` runs;
/// those who got a 503 try again once it is over. Checks that the outage was
/// seen and is over, that every 201 is exactly one order, and that once
/// everything is settled sold + remaining == `units`. `label` names the
/// printout.
pub async fn grab_through_outage(t: &TestApp, sku: &str, units: i64, label: &str, outage: impl Future<Output = ()>) {
    let path = format!("/seckill/items/{sku}/grab");
    let users: Vec<String> = (0..300).map(|i| t.user_token(&format!("crowd{i}"))).collect();
    let stream = futures::future::join_all(users.iter().enumerate().map(|(i, token)| {
        let path = &path;
        async move {
            tokio::time::sleep(Duration::from_millis(i as u64 * 3)).await;
            t.post(path, Some(token), None).await
        }
    }));
    let (replies, ()) = tokio::join!(stream, outage);
    let during = tally(&replies);
    println!("{label}, during: {during:?}");
    assert!(
        during.get(&(503, "UNAVAILABLE".into())).is_some_and(|n| *n > 0),
        "the outage was seen"
    );

    let retried: Vec<Reply> = futures::future::join_all(
        replies
            .iter()
            .zip(&users)
            .filter(|(reply, _)| reply.status == StatusCode::SERVICE_UNAVAILABLE)
            .map(|(_, token)| t.post(&path, Some(token), None)),
    )
    .await;
    let after = tally(&retried);
    println!("{label}, retries: {after:?}");
    assert!(!after.contains_key(&(503, "UNAVAILABLE".into())), "the outage is over");
    let created = replies
        .iter()
        .chain(&retried)
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(
        t.live_orders(sku).await.len(),
        created,
        "every 201 is exactly one order"
    );
    let (remaining, live, abandoned) = settle_everything(t, sku).await;
    println!("{label}, settled: {live} sold, {remaining} remaining, {abandoned} abandoned holds returned");
    assert_eq!(remaining + live as i64, units, "sold + remaining == seckill_num");
}
