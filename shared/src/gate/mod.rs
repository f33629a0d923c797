//! The Redis adapter behind [`StockGate`](crate::flash_sale::StockGate)
//! (`stock.rs`) and [`PacketPool`](crate::red_packet::PacketPool)
//! (`packets.rs`). Each decision is one Lua script from `lua/`, run with
//! EVALSHA (the `redis` crate loads it on NOSCRIPT). All keys of one SKU or
//! campaign share a hash tag (`{<id>}`), so every script touches one cluster
//! slot and runs unchanged on Redis Cluster.

mod packets;
mod stock;

use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::{
    Cmd, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
};

use crate::{Error, ts};

/// How long after its end a SKU or campaign stays in the live set: a grab
/// or claim from a Lambda whose clock lags may still land just after it.
const RETIRE_AFTER_END_MS: i64 = 5 * 60 * 1000;

impl From<redis::RedisError> for Error {
    fn from(error: redis::RedisError) -> Self {
        Error::Unavailable(format!("Redis: {error}"))
    }
}

impl From<redis::ParsingError> for Error {
    fn from(error: redis::ParsingError) -> Self {
        Error::Unavailable(format!("unexpected Redis reply: {error}"))
    }
}

/// One connection for either a single node (ElastiCache with cluster mode
/// off, local redis-server) or a cluster. Both multiplex every request of
/// the process over one socket per node and reconnect on their own.
#[derive(Clone)]
pub enum RedisConnection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConnection {
    /// Connects lazily: a cold start while Redis is down still serves the
    /// routes that do not need it, and grabs answer 503 until it is back.
    pub async fn open(url: &str, cluster: bool) -> Result<Self, Error> {
        if cluster {
            let client = ClusterClient::builder([url])
                .connection_timeout(Duration::from_millis(500))
                .response_timeout(Duration::from_secs(1))
                .build()?;
            Ok(RedisConnection::Cluster(client.get_async_connection().await?))
        } else {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_millis(500)))
                .set_response_timeout(Some(Duration::from_secs(1)))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(200));
            let client = redis::Client::open(url)?;
            Ok(RedisConnection::Single(ConnectionManager::new_lazy_with_config(
                client, config,
            )?))
        }
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConnection::Single(c) => c.req_packed_command(cmd),
            RedisConnection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConnection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConnection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConnection::Single(c) => c.get_db(),
            RedisConnection::Cluster(c) => c.get_db(),
        }
    }
}

#[derive(Clone)]
pub struct RedisGate {
    connection: RedisConnection,
    prefix: String,
}

impl RedisGate {
    /// `prefix` namespaces every key (tests run side by side in one Redis).
    pub fn new(connection: RedisConnection, prefix: &str) -> Self {
        RedisGate {
            connection,
            prefix: prefix.to_owned(),
        }
    }

    /// `<prefix><kind>:{<id>}:<part>`: the keys of one SKU (`sk`) or
    /// campaign (`rp`) share the hash tag `{<id>}`.
    fn key(&self, kind: &str, id: &str, part: &str) -> String {
        format!("{}{kind}:{{{id}}}:{part}", self.prefix)
    }

    /// The set of live SKUs (`sk`) or campaigns (`rp`) the scheduled jobs
    /// visit. Touched only by single commands, never inside a script, as it
    /// lives in a slot of its own.
    fn live_key(&self, kind: &str) -> String {
        format!("{}{kind}:live", self.prefix)
    }

    fn connection(&self) -> RedisConnection {
        self.connection.clone()
    }

    /// Drops `id` from the live set of `kind` once it is done: `probe`
    /// answers `[end_ms, outstanding counts…]`, and it is done when it ended
    /// a while ago and nothing is outstanding. The probe runs again after the
    /// removal, and a concurrent re-publish that reopened it puts it back.
    async fn retire_if_done(
        &self,
        kind: &str,
        id: &str,
        probe: &redis::Pipeline,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let mut connection = self.connection();
        let now = ts::millis(&now);
        let done = |values: Vec<Option<i64>>| match values.split_first() {
            Some((Some(end), outstanding)) => {
                end + RETIRE_AFTER_END_MS <= now && outstanding.iter().all(|n| n.unwrap_or(0) == 0)
            }
            _ => false,
        };
        if !done(probe.query_async(&mut connection).await?) {
            return Ok(false);
        }
        let live = self.live_key(kind);
        redis::cmd("SREM")
            .arg(&live)
            .arg(id)
            .exec_async(&mut connection)
            .await?;
        if !done(probe.query_async(&mut connection).await?) {
            redis::cmd("SADD")
                .arg(&live)
                .arg(id)
                .exec_async(&mut connection)
                .await?;
            return Ok(false);
        }
        Ok(true)
    }
}

/// A script's status word and the values after it.
pub(super) fn split_reply(reply: Value) -> Result<(String, Vec<Value>), Error> {
    let mut values = match reply {
        Value::Array(values) => values,
        single => vec![single],
    };
    if values.is_empty() {
        return Err(Error::unavailable("empty script reply"));
    }
    let status = redis::from_redis_value(values.remove(0))?;
    Ok((status, values))
}

pub(super) fn field<T: redis::FromRedisValue>(values: &[Value], index: usize) -> Result<T, Error> {
    let value = values
        .get(index)
        .cloned()
        .ok_or_else(|| Error::unavailable("short script reply"))?;
    Ok(redis::from_redis_value(value)?)
}

pub(super) fn unexpected(script: &str, status: &str) -> Error {
    Error::unavailable(format!("{script}.lua returned unknown status `{status}`"))
}
