//! Wiring: the adapters every handler shares, built once per cold start
//! (Lambda) or once per process (local server) and captured by handlers.

use std::{sync::Arc, time::Duration};

use aws_config::{BehaviorVersion, Region, retry::RetryConfig, timeout::TimeoutConfig};
use aws_sdk_dynamodb::config::Credentials;

use chrono::FixedOffset;

use crate::{
    config::{Config, Secret},
    domain::{
        admission::{CrowdControl, SoldOutMemo},
        auth::Tokens,
        hot::{self, Hit, Hits, HotSettings},
        storefront::CatalogCache,
    },
    gate::{RedisConnection, RedisGate},
    http::identity::Identities,
    ledger::{self, Dynamo},
    pages::Pages,
    payments::{Alipay, Providers, SandboxPayments, Stripe, Wechat},
    ports::Ports,
};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub struct App {
    pub gate: RedisGate,
    pub ledger: Dynamo,
    pub tokens: Tokens,
    pub payments: Providers,
    /// The rendered item pages.
    pub pages: Pages,
    pub catalog_cache: CatalogCache,
    pub admission: CrowdControl,
    pub slot_offset: FixedOffset,
    pub hits: Hits,
    pub hot: HotSettings,
    /// See `config::EDGE_KEY`.
    pub edge_key: Option<Secret>,
}

impl App {
    /// The ports the domain flows take, each by its name.
    pub fn ports(&self) -> Ports<'_, RedisGate, Dynamo, Providers> {
        Ports {
            gate: &self.gate,
            ledger: &self.ledger,
            payments: &self.payments,
        }
    }
}

/// Counts a request toward hot-item discovery. The counts go out (with a
/// look at which SKUs are hot) within about a second and at most once a
/// second, on a task of their own: no request waits on counting.
pub fn count(app: &Arc<App>, hit: Hit, id: &str) {
    app.hits.count(hit, id);
    flush_soon(app);
}

/// Counts a request's answer (`CREATED`, `SOLD_OUT`, …) for the sale's live
/// board, going out as [`count`]s do.
pub fn answered(app: &Arc<App>, hit: Hit, id: &str, code: &'static str) {
    app.hits.answered(hit, id, code);
    flush_soon(app);
}

fn flush_soon(app: &Arc<App>) {
    if let Some(wait) = app.hits.reserve_flush() {
        let app = app.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let counts = app.hits.take();
            hot::flush(&app.gate, &app.hits, counts, chrono::Utc::now()).await
        });
    }
}

impl Identities for Arc<App> {
    type Accounts = Dynamo;

    fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    fn accounts(&self) -> &Dynamo {
        &self.ledger
    }

    fn edge_key(&self) -> Option<&str> {
        self.edge_key.as_ref().map(|key| key.0.as_str())
    }
}

/// How long an instance serves catalog records and listing pages from
/// memory.
pub const CATALOG_CACHE_TTL: Duration = Duration::from_secs(5);

impl App {
    /// A Lambda's wiring: settings from its environment, and its metrics
    /// written out as CloudWatch Embedded Metric Format.
    pub async fn from_env() -> Result<Arc<App>, BoxError> {
        crate::metrics::emit_to_cloudwatch()?;
        let app = Self::connect(&Config::from_env().await?).await?;
        if let Err(error) = app.gate.connect_now().await {
            tracing::warn!(%error, "the cache did not answer at cold start; the first request tries again");
        }
        Ok(app)
    }

    pub async fn connect(config: &Config) -> Result<Arc<App>, BoxError> {
        let connection = RedisConnection::open(&config.redis_url, config.redis_cluster)?;
        let dynamodb = dynamodb_client(config.dynamodb_endpoint.as_deref()).await;
        let store = Dynamo::new(dynamodb, &config.table_prefix).with_listing_lag(config.order_listing_lag);
        Ok(Arc::new(App {
            gate: RedisGate::new(connection, &config.redis_key_prefix, config.redis_wait),
            payments: Providers {
                sandbox: SandboxPayments::new(store.clone()),
                sandbox_offered: config.sandbox_payments,
                stripe: config.stripe.clone().map(Stripe::new),
                alipay: config.alipay.clone().map(Alipay::new),
                wechat: config.wechat.clone().map(Wechat::new),
            },
            ledger: store,
            pages: match &config.pages {
                Some(folder) => Pages::Folder(folder.clone()),
                None => Pages::FromTableStream,
            },
            tokens: Tokens::new(config.jwt_secret.0.as_bytes(), config.token_ttl),
            catalog_cache: CatalogCache::new(CATALOG_CACHE_TTL),
            admission: CrowdControl::new(
                SoldOutMemo::new(config.sold_out_memo),
                config.limits.clone(),
                config.jwt_secret.0.as_bytes(),
            )
            .with_room_rate_cap(config.room_rate_cap),
            slot_offset: config.slot_utc_offset,
            hits: Hits::default(),
            hot: config.hot,
            edge_key: config.edge_key.clone(),
        }))
    }
}

/// A DynamoDB client with short timeouts, so an outage turns into a quick
/// 503 rather than a request hanging until API Gateway gives up. With an
/// endpoint (DynamoDB Local) and no AWS credentials in the environment it
/// uses placeholder ones, which DynamoDB Local accepts.
pub async fn dynamodb_client(endpoint: Option<&str>) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config(endpoint).await)
}

/// An S3 client as [`dynamodb_client`]'s, addressing buckets by path at an
/// endpoint (a local stand-in has no per-bucket host names).
pub async fn s3_client(endpoint: Option<&str>) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(&sdk_config(endpoint).await)
        .force_path_style(endpoint.is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The edge's ticket list's client. The store is global, and its
/// endpoint is its account's (`<account>.cloudfront-kvs.global.api.aws`);
/// an `endpoint` given (a stand-in on loopback) is taken as it is.
pub async fn key_value_store_client(endpoint: Option<&str>) -> aws_sdk_cloudfrontkeyvaluestore::Client {
    use aws_sdk_cloudfrontkeyvaluestore::config::{
        Builder,
        endpoint::{Endpoint, EndpointFuture, Params, ResolveEndpoint},
    };
    #[derive(Debug)]
    struct AsGiven(String);
    impl ResolveEndpoint for AsGiven {
        fn resolve_endpoint<'a>(&'a self, _: &'a Params) -> EndpointFuture<'a> {
            EndpointFuture::ready(Ok(Endpoint::builder().url(self.0.clone()).build()))
        }
    }
    let mut config = Builder::from(&sdk_config(endpoint).await);
    if let Some(endpoint) = endpoint {
        config = config.endpoint_resolver(AsGiven(endpoint.to_owned()));
    }
    aws_sdk_cloudfrontkeyvaluestore::Client::from_conf(config.build())
}

/// Secrets Manager's client at a stand-in's endpoint (moto, a test's), as
/// [`dynamodb_client`]'s; a function reads its secrets with
/// [`SecretsManager::from_env`](crate::secrets::SecretsManager::from_env).
pub async fn secrets_manager_client(endpoint: Option<&str>) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&sdk_config(endpoint).await)
}

/// Lambda's client, for the warm-up job.
pub async fn lambda_client(endpoint: Option<&str>) -> aws_sdk_lambda::Client {
    aws_sdk_lambda::Client::new(&sdk_config(endpoint).await)
}

async fn sdk_config(endpoint: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(500))
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(ledger::OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(20)),
        );
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader.credentials_provider(Credentials::new("local", "local", None, None, "local"));
        }
        if std::env::var_os("AWS_REGION").is_none() {
            loader = loader.region(Region::new("us-east-1"));
        }
    }
    loader.load().await
}
