//! The Redis adapter behind [`StockGate`]. Each decision is one Lua script
//! from `lua/`, run with EVALSHA (the `redis` crate loads it on NOSCRIPT).
//! All keys of one SKU share the hash tag `{<sku_id>}`, so every script
//! touches one cluster slot and runs unchanged on Redis Cluster.

use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::{
    Cmd, RedisFuture, Script, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
};

use crate::{
    Error,
    flash_sale::{Hold, HoldOutcome, PublishOutcome, Reservation, StockGate},
    model::{Order, OrderStatus, ReservedUnit, Sku},
    ts,
};

static GRAB: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../../lua/grab.lua")));
static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../../lua/release.lua")));
static CONFIRM: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../../lua/confirm.lua")));
static PUBLISH: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../../lua/publish.lua")));

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
            Ok(RedisConnection::Cluster(
                client.get_async_connection().await?,
            ))
        } else {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_millis(500)))
                .set_response_timeout(Some(Duration::from_secs(1)))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(200));
            let client = redis::Client::open(url)?;
            Ok(RedisConnection::Single(
                ConnectionManager::new_lazy_with_config(client, config)?,
            ))
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

/// The keys of one SKU (see the headers of the scripts in `lua/`).
struct SkuKeys {
    meta: String,
    stock: String,
    buyers: String,
    pending: String,
    holders: String,
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

    fn sku_keys(&self, sku_id: &str) -> SkuKeys {
        let key = |part: &str| format!("{}sk:{{{sku_id}}}:{part}", self.prefix);
        SkuKeys {
            meta: key("meta"),
            stock: key("stock"),
            buyers: key("buyers"),
            pending: key("pending"),
            holders: key("holders"),
        }
    }

    /// The index of SKUs the timeout sweep visits. Touched only by single
    /// commands, never inside a script, as it lives in a slot of its own.
    fn live_key(&self) -> String {
        format!("{}sk:live", self.prefix)
    }

    fn connection(&self) -> RedisConnection {
        self.connection.clone()
    }
}

/// `price` and `name` from a SKU's meta hash.
type SaleTerms = (Option<i64>, Option<String>);

/// A script's status word and the values after it.
fn split_reply(reply: Value) -> Result<(String, Vec<Value>), Error> {
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

fn field<T: redis::FromRedisValue>(values: &[Value], index: usize) -> Result<T, Error> {
    let value = values
        .get(index)
        .cloned()
        .ok_or_else(|| Error::unavailable("short script reply"))?;
    Ok(redis::from_redis_value(value)?)
}

fn unexpected(script: &str, status: &str) -> Error {
    Error::unavailable(format!("{script}.lua returned unknown status `{status}`"))
}

fn hold_outcome(script: &str, status: String) -> Result<HoldOutcome, Error> {
    match status.as_str() {
        "RELEASED" => Ok(HoldOutcome::Released),
        "CONFIRMED" => Ok(HoldOutcome::Confirmed),
        "NOT_HELD" => Ok(HoldOutcome::NotHeld),
        other => Err(unexpected(script, other)),
    }
}

impl StockGate for RedisGate {
    async fn publish(&self, sku: &Sku, live_orders: &[Order]) -> Result<PublishOutcome, Error> {
        let keys = self.sku_keys(&sku.id);
        let fields = &sku.fields;
        let mut invocation = PUBLISH.prepare_invoke();
        invocation
            .key(&keys.meta)
            .key(&keys.stock)
            .key(&keys.buyers)
            .key(&keys.pending)
            .key(&keys.holders)
            .arg(fields.seckill_num)
            .arg(ts::millis(&fields.seckill_begin))
            .arg(ts::millis(&fields.seckill_end))
            .arg(i64::from(fields.pay_timeout_seconds) * 1000)
            .arg(fields.seckill_price)
            .arg(&fields.name)
            .arg(live_orders.len());
        for order in live_orders {
            let deadline = match order.status {
                OrderStatus::PendingPayment => ts::millis(&order.pay_deadline),
                _ => 0,
            };
            invocation.arg(&order.username).arg(&order.id).arg(deadline);
        }
        let (status, values) = split_reply(invocation.invoke_async(&mut self.connection()).await?)?;
        let outcome = match status.as_str() {
            "PUBLISHED" => PublishOutcome::Published {
                remaining: field(&values, 0)?,
            },
            "REPUBLISHED" => PublishOutcome::Republished {
                remaining: field(&values, 0)?,
            },
            "BELOW_SOLD" => PublishOutcome::BelowSold {
                sold: field(&values, 0)?,
            },
            other => return Err(unexpected("publish", other)),
        };
        if !matches!(outcome, PublishOutcome::BelowSold { .. }) {
            redis::cmd("SADD")
                .arg(self.live_key())
                .arg(&sku.id)
                .exec_async(&mut self.connection())
                .await?;
        }
        Ok(outcome)
    }

    async fn reserve(
        &self,
        sku_id: &str,
        username: &str,
        order_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Reservation, Error> {
        let keys = self.sku_keys(sku_id);
        let reply = GRAB
            .key(&keys.meta)
            .key(&keys.stock)
            .key(&keys.buyers)
            .key(&keys.pending)
            .key(&keys.holders)
            .arg(username)
            .arg(order_id)
            .arg(ts::millis(&now))
            .invoke_async(&mut self.connection())
            .await?;
        let (status, values) = split_reply(reply)?;
        Ok(match status.as_str() {
            "RESERVED" => Reservation::Reserved(ReservedUnit {
                pay_deadline: ts::from_millis(field(&values, 0)?),
                price: field(&values, 1)?,
                name: field(&values, 2)?,
            }),
            "NOT_PUBLISHED" => Reservation::NotPublished,
            "NOT_STARTED" => Reservation::NotStarted,
            "ENDED" => Reservation::Ended,
            "ALREADY_PURCHASED" => Reservation::AlreadyPurchased,
            "SOLD_OUT" => Reservation::SoldOut,
            other => return Err(unexpected("grab", other)),
        })
    }

    async fn release(&self, sku_id: &str, order_id: &str) -> Result<HoldOutcome, Error> {
        let keys = self.sku_keys(sku_id);
        let status = RELEASE
            .key(&keys.stock)
            .key(&keys.buyers)
            .key(&keys.pending)
            .key(&keys.holders)
            .arg(order_id)
            .invoke_async(&mut self.connection())
            .await?;
        hold_outcome("release", status)
    }

    async fn confirm(&self, sku_id: &str, order_id: &str) -> Result<HoldOutcome, Error> {
        let keys = self.sku_keys(sku_id);
        let status = CONFIRM
            .key(&keys.pending)
            .key(&keys.holders)
            .arg(order_id)
            .invoke_async(&mut self.connection())
            .await?;
        hold_outcome("confirm", status)
    }

    async fn remaining(&self, sku_id: &str) -> Result<Option<i64>, Error> {
        let stock = redis::cmd("GET")
            .arg(self.sku_keys(sku_id).stock)
            .query_async(&mut self.connection())
            .await?;
        Ok(stock)
    }

    async fn live_skus(&self) -> Result<Vec<String>, Error> {
        Ok(redis::cmd("SMEMBERS")
            .arg(self.live_key())
            .query_async(&mut self.connection())
            .await?)
    }

    async fn overdue(
        &self,
        sku_id: &str,
        due: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Hold>, Error> {
        let keys = self.sku_keys(sku_id);
        let mut connection = self.connection();
        let due: Vec<(String, i64)> = redis::cmd("ZRANGE")
            .arg(&keys.pending)
            .arg("-inf")
            .arg(ts::millis(&due))
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .arg("WITHSCORES")
            .query_async(&mut connection)
            .await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let (holders, (price, name)): (Vec<Option<String>>, SaleTerms) =
            redis::pipe()
                .cmd("HMGET")
                .arg(&keys.holders)
                .arg(due.iter().map(|(id, _)| id).collect::<Vec<_>>())
                .cmd("HMGET")
                .arg(&keys.meta)
                .arg("price")
                .arg("name")
                .query_async(&mut connection)
                .await?;
        Ok(due
            .into_iter()
            .zip(holders)
            // A hold settled between the two reads has no holder any more.
            .filter_map(|((order_id, deadline), username)| {
                Some(Hold {
                    sku_id: sku_id.to_owned(),
                    order_id,
                    username: username?,
                    pay_deadline: ts::from_millis(deadline),
                    price: price.unwrap_or_default(),
                    name: name.clone().unwrap_or_default(),
                })
            })
            .collect())
    }

    async fn retire_if_finished(&self, sku_id: &str, now: DateTime<Utc>) -> Result<bool, Error> {
        let keys = self.sku_keys(sku_id);
        let mut connection = self.connection();
        let (end_ms, held): (Option<i64>, u64) = redis::pipe()
            .cmd("HGET")
            .arg(&keys.meta)
            .arg("end_ms")
            .cmd("ZCARD")
            .arg(&keys.pending)
            .query_async(&mut connection)
            .await?;
        // Nothing can be grabbed after the end and nothing is held, so no
        // hold can appear for the sweep to miss.
        let finished = end_ms.is_some_and(|end| end <= ts::millis(&now)) && held == 0;
        if finished {
            redis::cmd("SREM")
                .arg(self.live_key())
                .arg(sku_id)
                .exec_async(&mut connection)
                .await?;
        }
        Ok(finished)
    }
}
