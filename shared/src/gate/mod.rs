//! The gate, and its Redis adapter. [`StockGate`](crate::ports::StockGate)
//! is one protocol (`stock/`) over the stock scripts of one shard at a
//! time (`scripts.rs`), which Redis runs (`redis_stock.rs`) and the
//! in-memory gate runs the same way (`memory::stock`); where a SKU's keys
//! live is `shards.rs`. On Redis too: [`PacketPool`](crate::ports::PacketPool)
//! in `packets.rs`, [`RateLimiter`](crate::ports::RateLimiter) in
//! `limits.rs` and [`HotItems`](crate::ports::HotItems) in `hot.rs`.
//! Each decision is one Lua script of the `lua` crate, wrapped once as a
//! `redis::Script` and run with EVALSHA (the `redis` crate loads it on
//! NOSCRIPT). All keys of one SKU (or one shard of a hot SKU) or campaign
//! share a hash tag (`{<id>}`), so every script touches one cluster slot
//! and runs unchanged on Redis Cluster.

mod connection;
mod hot;
mod limits;
mod packets;
mod redis_stock;
mod room;
pub mod scripts;
pub mod shards;
mod stock;

use std::{sync::LazyLock, time::Duration};

use redis::{Cmd, Script, ScriptInvocation, ServerErrorKind, Value};

pub use connection::RedisConnection;
pub use shards::home as home_shard;

use crate::ports::{PortError, PortResult, RETIRE_AFTER_END_MS};

static RETIRE: LazyLock<Script> = LazyLock::new(|| Script::new(lua::RETIRE));

/// How long the keys of a retired SKU or campaign stay, so that late taps
/// still read ENDED from the cache rather than from the ledger. Longer than
/// the reconciliation job looks back past an end (the longest pay timeout
/// and a few minutes), with a day to spare for clocks that disagree, so it
/// never finds a finished sale's keys gone and loads it again.
const RETIRED_KEYS_KEPT_MS: i64 = 2 * 24 * 60 * 60 * 1000;

impl From<redis::RedisError> for PortError {
    fn from(error: redis::RedisError) -> Self {
        crate::metrics::redis_error();
        PortError::Unavailable(format!("Redis: {error}"))
    }
}

impl From<redis::ParsingError> for PortError {
    fn from(error: redis::ParsingError) -> Self {
        PortError::Unavailable(format!("unexpected Redis reply: {error}"))
    }
}

/// `WAIT replicas timeout` after every script (`REDIS_WAIT_REPLICAS`):
/// an answer is given only once that many replicas have the script's
/// writes, so a failover to one of them cannot forget it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaWait {
    pub replicas: u32,
    pub timeout: Duration,
}

#[derive(Clone)]
pub struct RedisGate {
    connection: RedisConnection,
    prefix: String,
    wait: Option<ReplicaWait>,
    layouts: shards::Layouts,
}

impl RedisGate {
    /// `prefix` namespaces every key (tests run side by side in one Redis).
    pub fn new(connection: RedisConnection, prefix: &str, wait: Option<ReplicaWait>) -> Self {
        RedisGate {
            connection,
            prefix: prefix.to_owned(),
            wait,
            layouts: shards::Layouts::default(),
        }
    }

    /// Runs one script over the keys of one SKU or campaign (`key` is any
    /// of them), as one pipeline on the connection to the master that
    /// serves them. A master that never ran the script (new, restarted,
    /// promoted) answers NOSCRIPT, and the script is loaded there, in the
    /// same pipeline, not on every node, so one node down does not fail
    /// the others' scripts.
    ///
    /// With [`ReplicaWait`], a `WAIT` follows the script in that pipeline,
    /// and a reply whose writes reached fewer replicas than asked is an
    /// error: the caller treats it as a failed write. Every reply waits;
    /// a reply that reports an earlier write (a retried grab or claim)
    /// comes from a script that writes it again, so the wait covers it even
    /// when another connection wrote it first.
    async fn run(&self, script: &Script, invocation: &ScriptInvocation<'_>, key: &str) -> PortResult<Value> {
        self.run_waiting(script, invocation, key, self.wait).await
    }

    /// [`RedisGate::run`] for a script that only reads: nothing to wait for.
    async fn run_read(&self, script: &Script, invocation: &ScriptInvocation<'_>, key: &str) -> PortResult<Value> {
        self.run_waiting(script, invocation, key, None).await
    }

    async fn run_waiting(
        &self,
        script: &Script,
        invocation: &ScriptInvocation<'_>,
        key: &str,
        wait: Option<ReplicaWait>,
    ) -> PortResult<Value> {
        let mut connection = self.connection();
        let pipeline = |load: bool| {
            let mut pipe = redis::pipe();
            if load {
                pipe.load_script(script);
            }
            pipe.invoke_script(invocation);
            if let Some(wait) = wait {
                pipe.cmd("WAIT").arg(wait.replicas).arg(wait.timeout.as_millis() as u64);
            }
            pipe
        };
        let mut replies = connection.pipeline_at(pipeline(false), key).await?;
        if matches!(replies.first(), Some(Value::ServerError(e)) if e.kind() == Some(ServerErrorKind::NoScript)) {
            replies = connection.pipeline_at(pipeline(true), key).await?;
            replies.drain(..1.min(replies.len()));
        }
        let mut replies = replies.into_iter();
        let reply = replies
            .next()
            .ok_or_else(|| PortError::Unavailable("no reply to a script".into()))?
            .extract_error()?;
        if let Some(wait) = wait {
            let acknowledged = replies
                .next()
                .ok_or_else(|| PortError::Unavailable("no reply to WAIT".into()))?;
            let acknowledged: u32 = redis::from_redis_value(acknowledged.extract_error()?)?;
            if acknowledged < wait.replicas {
                return Err(PortError::Unavailable(format!(
                    "the write reached {acknowledged} of {} replicas within {:?}",
                    wait.replicas, wait.timeout
                )));
            }
        }
        Ok(reply)
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

    /// Opens the connection now, in a cold start's init, so the first
    /// request does not wait for the handshake (with provisioned
    /// concurrency, init runs before the crowd arrives). A cache that does
    /// not answer is left to the first request, which tries again.
    pub async fn connect_now(&self) -> PortResult<()> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.connection())
            .await
            .map_err(PortError::from)
    }

    /// Sends `commands` at once and gathers their replies in order. Not a
    /// pipeline: a cluster takes one only within a slot, and these keys
    /// lie in many; the connection multiplexes them all the same.
    async fn each<T: redis::FromRedisValue>(&self, commands: impl IntoIterator<Item = Cmd>) -> PortResult<Vec<T>> {
        let replies = commands.into_iter().map(|command| {
            let mut connection = self.connection();
            async move { command.query_async::<T>(&mut connection).await }
        });
        Ok(futures::future::try_join_all(replies).await?)
    }

    /// Puts `id` in the live set of `kind`, which the scheduled jobs walk.
    /// Publishing and loading call it before their script, so an id whose
    /// script ran is always visited even if the caller died right after,
    /// and again after it, so a retire that ran in between cannot hide it.
    async fn mark_live_in(&self, kind: &str, id: &str) -> PortResult<()> {
        redis::cmd("SADD")
            .arg(self.live_key(kind))
            .arg(id)
            .exec_async(&mut self.connection())
            .await?;
        Ok(())
    }

    /// Retires `id` once it is over and settled (`retire.lua`): its keys
    /// expire and, given the live set of its `kind`, it leaves that set. A
    /// publish that reopens it at the same moment makes its keys persistent
    /// again, which this sees and undoes the removal; the publish's own
    /// second `mark_live_in` covers the rest of the interleavings. (A shard of
    /// a SKU other than its first passes no live set: the SKU stays live
    /// until its first shard retires.)
    async fn retire_keys(
        &self,
        live_set: Option<&str>,
        id: &str,
        keys: RetiringKeys<'_>,
        now_ms: i64,
    ) -> PortResult<bool> {
        let mut retire = RETIRE.key(keys.meta);
        retire
            .key(keys.outstanding)
            .key(keys.others)
            .arg(now_ms)
            .arg(RETIRE_AFTER_END_MS)
            .arg(keys.outstanding.len())
            .arg(RETIRED_KEYS_KEPT_MS);
        let status: String = redis::from_redis_value(self.run(&RETIRE, &retire, keys.meta).await?)?;
        match status.as_str() {
            "LIVE" => return Ok(false),
            "RETIRED" | "GONE" => {}
            other => return Err(unexpected("retire", other)),
        }
        let Some(kind) = live_set else {
            return Ok(true);
        };
        let mut connection = self.connection();
        redis::cmd("SREM")
            .arg(self.live_key(kind))
            .arg(id)
            .exec_async(&mut connection)
            .await?;
        let ttl: i64 = redis::cmd("PTTL").arg(keys.meta).query_async(&mut connection).await?;
        if ttl == -1 {
            self.mark_live_in(kind, id).await?;
            return Ok(false);
        }
        Ok(true)
    }
}

/// The keys `retire.lua` takes: the meta hash, those that must be empty,
/// and the rest.
struct RetiringKeys<'a> {
    meta: &'a str,
    outstanding: &'a [&'a str],
    others: &'a [&'a str],
}

/// A script's status word and the values after it.
fn split_reply(reply: Value) -> PortResult<(String, Vec<Value>)> {
    let mut values = match reply {
        Value::Array(values) => values,
        single => vec![single],
    };
    if values.is_empty() {
        return Err(PortError::Unavailable("empty script reply".into()));
    }
    let status = redis::from_redis_value(values.remove(0))?;
    Ok((status, values))
}

fn field<T: redis::FromRedisValue>(values: &[Value], index: usize) -> PortResult<T> {
    let value = values
        .get(index)
        .cloned()
        .ok_or_else(|| PortError::Unavailable("short script reply".into()))?;
    Ok(redis::from_redis_value(value)?)
}

fn unexpected(script: &str, status: &str) -> PortError {
    PortError::Unavailable(format!("{script}.lua returned unknown status `{status}`"))
}
