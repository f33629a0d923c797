//! Settings, read once per cold start from the environment.

use std::time::Duration;

use crate::{gate::ReplicaWait, store::LISTING_LAG};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A value that must not show up in logs.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `REDIS_URL`, e.g. `redis://127.0.0.1:6379` or `rediss://…` with TLS.
    pub redis_url: String,
    /// `REDIS_CLUSTER=true` for Redis Cluster (ElastiCache cluster mode).
    pub redis_cluster: bool,
    /// `REDIS_WAIT_REPLICAS` (default 0, off) and `REDIS_WAIT_TIMEOUT_MS`
    /// (default 100): after every script the gate waits until this many
    /// replicas have its writes, and fails the call if they do not in time.
    pub redis_wait: Option<ReplicaWait>,
    /// `REDIS_KEY_PREFIX`, prepended to every key; empty by default.
    pub redis_key_prefix: String,
    /// `DYNAMODB_ENDPOINT`, set only for DynamoDB Local.
    pub dynamodb_endpoint: Option<String>,
    /// `TABLE_PREFIX`, prepended to every table's logical name.
    pub table_prefix: String,
    /// `ORDER_LISTING_LAG_MS`: how long after a grab's order write began
    /// it surely shows in a SKU's order listing (the write's timeout plus
    /// the index's propagation; see `store::LISTING_LAG`). A rebuild of a
    /// SKU the gate lost waits this long before reading the ledger.
    pub order_listing_lag: Duration,
    /// `JWT_SECRET`, at least 32 bytes; signs every bearer token.
    pub jwt_secret: Secret,
    /// `TOKEN_TTL_SECONDS`, how long a login lasts (default 2 hours).
    pub token_ttl: Duration,
    /// `SLOT_UTC_OFFSET`, the time zone the timetable's times of day are in
    /// (default `+08:00`, China Standard Time, as the seed's timetable).
    pub slot_utc_offset: chrono::FixedOffset,
}

/// China Standard Time, the seed data's zone.
pub fn default_slot_offset() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset")
}

pub const MIN_SECRET_BYTES: usize = 32;

fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A setting that must be present and non-empty.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    var(name).ok_or(ConfigError::Missing(name))
}

/// `JWT_SECRET`, refused if too short to be a real key.
pub fn jwt_secret() -> Result<Secret, ConfigError> {
    let secret = required("JWT_SECRET")?;
    if secret.len() < MIN_SECRET_BYTES {
        return Err(ConfigError::Invalid {
            name: "JWT_SECRET",
            reason: format!("must be at least {MIN_SECRET_BYTES} bytes"),
        });
    }
    Ok(Secret(secret))
}

fn parse<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    var(name).map_or(Ok(default), |v| {
        v.parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            reason: e.to_string(),
        })
    })
}

impl Config {
    /// A local stack (local server, tests, benchmarks): DynamoDB Local and a
    /// loopback Redis, no prefixes, the given signing key.
    pub fn local(redis_url: String, dynamodb_endpoint: String, jwt_secret: String) -> Self {
        Config {
            redis_url,
            redis_cluster: false,
            redis_wait: None,
            redis_key_prefix: String::new(),
            dynamodb_endpoint: Some(dynamodb_endpoint),
            table_prefix: String::new(),
            // DynamoDB Local on loopback answers writes in milliseconds and
            // updates its indexes with the table.
            order_listing_lag: Duration::from_secs(1),
            jwt_secret: Secret(jwt_secret),
            token_ttl: Duration::from_secs(7200),
            slot_utc_offset: default_slot_offset(),
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Config {
            redis_url: required("REDIS_URL")?,
            redis_cluster: parse("REDIS_CLUSTER", false)?,
            redis_wait: match parse("REDIS_WAIT_REPLICAS", 0)? {
                0 => None,
                replicas => Some(ReplicaWait {
                    replicas,
                    timeout: Duration::from_millis(parse("REDIS_WAIT_TIMEOUT_MS", 100)?),
                }),
            },
            redis_key_prefix: var("REDIS_KEY_PREFIX").unwrap_or_default(),
            dynamodb_endpoint: var("DYNAMODB_ENDPOINT"),
            table_prefix: var("TABLE_PREFIX").unwrap_or_default(),
            order_listing_lag: Duration::from_millis(parse(
                "ORDER_LISTING_LAG_MS",
                u64::try_from(LISTING_LAG.as_millis()).unwrap_or(u64::MAX),
            )?),
            jwt_secret: jwt_secret()?,
            token_ttl: Duration::from_secs(parse("TOKEN_TTL_SECONDS", 7200)?),
            slot_utc_offset: parse("SLOT_UTC_OFFSET", default_slot_offset())?,
        })
    }
}
