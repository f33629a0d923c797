//! [`StockScripts`] on Redis: each method one script of `lua/` (EVALSHA)
//! or one plain read, over the keys of one shard of a SKU
//! (`sk:{<tag>}:<part>`, see `shards.rs`), its reply mapped to its enum.

use std::{collections::BTreeMap, sync::LazyLock};

use redis::{Script, ScriptInvocation};

use super::{
    RedisGate, RetiringKeys, field,
    scripts::{
        Census, GrabReply, LendReply, LiveOrder, PublishArgs, PublishReply, ReceiveReply, RestoreReply, SettleReply,
        Shard, ShardKeys, SplitReply, StockScripts,
    },
    shards::Layouts,
    split_reply, unexpected,
};
use crate::{
    ports::{Hold, PortError, PortResult},
    ts,
};

static GRAB: LazyLock<Script> = LazyLock::new(|| Script::new(lua::GRAB));
static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(lua::RELEASE));
static CONFIRM: LazyLock<Script> = LazyLock::new(|| Script::new(lua::CONFIRM));
static PUBLISH: LazyLock<Script> = LazyLock::new(|| Script::new(lua::PUBLISH));
static RESTORE: LazyLock<Script> = LazyLock::new(|| Script::new(lua::RESTORE));
static SPLIT: LazyLock<Script> = LazyLock::new(|| Script::new(lua::SPLIT));
static JOIN: LazyLock<Script> = LazyLock::new(|| Script::new(lua::JOIN));
static LEND: LazyLock<Script> = LazyLock::new(|| Script::new(lua::LEND));
static RECEIVE: LazyLock<Script> = LazyLock::new(|| Script::new(lua::RECEIVE));

const SKU: &str = "sk";

/// The keys of one shard of a SKU (see the headers of the scripts in `lua/`).
pub(super) struct SkuKeys {
    pub meta: String,
    pub stock: String,
    pub buyers: String,
    pub pending: String,
    pub holders: String,
    pub paid: String,
    pub lent: String,
    pub received: String,
}

impl SkuKeys {
    /// Every key, in the order `publish.lua` takes them.
    pub fn all(&self) -> [&String; 8] {
        [
            &self.meta,
            &self.stock,
            &self.buyers,
            &self.pending,
            &self.holders,
            &self.paid,
            &self.lent,
            &self.received,
        ]
    }
}

impl RedisGate {
    pub(super) fn keys(&self, shard: &Shard) -> SkuKeys {
        let key = |part| self.key(SKU, &shard.tag, part);
        SkuKeys {
            meta: key("meta"),
            stock: key("stock"),
            buyers: key("buyers"),
            pending: key("pending"),
            holders: key("holders"),
            paid: key("paid"),
            lent: key("lent"),
            received: key("received"),
        }
    }

    /// `release.lua` or `confirm.lua`.
    async fn settle_on(
        &self,
        script: &Script,
        name: &str,
        invocation: &ScriptInvocation<'_>,
        key: &str,
    ) -> PortResult<SettleReply> {
        let (status, values) = split_reply(self.run(script, invocation, key).await?)?;
        Ok(match status.as_str() {
            "RELEASED" => SettleReply::Released,
            "CONFIRMED" => SettleReply::Confirmed,
            "NOT_HELD" => SettleReply::NotHeld,
            "RESHARDED" => SettleReply::Resharded(field(&values, 0)?),
            "NOT_READY" => SettleReply::NotReady,
            other => return Err(unexpected(name, other)),
        })
    }
}

/// `n`, then `username, order_id, pay deadline (0 once paid)` per order, as
/// `publish.lua` and `restore.lua` take the ledger's live orders.
fn order_args(invocation: &mut ScriptInvocation<'_>, orders: &[LiveOrder<'_>]) {
    invocation.arg(orders.len());
    for (username, order_id, deadline) in orders {
        invocation.arg(username).arg(order_id).arg(deadline);
    }
}

/// `price` and `name` from a SKU's meta hash.
type SaleTerms = (Option<i64>, Option<String>);

impl StockScripts for RedisGate {
    fn layouts(&self) -> &Layouts {
        &self.layouts
    }

    async fn grab(
        &self,
        shard: &Shard,
        username: &str,
        order_id: &str,
        now_ms: i64,
        routed_by: u32,
        loan: Option<(&str, i64)>,
    ) -> PortResult<GrabReply> {
        let keys = self.keys(shard);
        let mut grab = GRAB.key(&keys.meta);
        let (transfer, units) = loan.unwrap_or(("", 0));
        grab.key(&keys.stock)
            .key(&keys.buyers)
            .key(&keys.pending)
            .key(&keys.holders)
            .key(&keys.received)
            .arg(username)
            .arg(order_id)
            .arg(now_ms)
            .arg(routed_by)
            .arg(transfer)
            .arg(units);
        let (status, values) = split_reply(self.run(&GRAB, &grab, &keys.meta).await?)?;
        Ok(match status.as_str() {
            "RESERVED" => GrabReply::Reserved {
                deadline_ms: field(&values, 0)?,
                price: field(&values, 1)?,
                name: field(&values, 2)?,
            },
            "RESHARDED" => GrabReply::Resharded(field(&values, 0)?),
            "NOT_PUBLISHED" => GrabReply::NotPublished,
            "NOT_STARTED" => GrabReply::NotStarted,
            "ENDED" => GrabReply::Ended,
            "ALREADY_PURCHASED" => GrabReply::AlreadyPurchased,
            "SOLD_OUT" => GrabReply::SoldOut,
            other => return Err(unexpected("grab", other)),
        })
    }

    async fn release(&self, shard: &Shard, order_id: &str, routed_by: u32) -> PortResult<SettleReply> {
        let keys = self.keys(shard);
        let mut release = RELEASE.key(&keys.meta);
        release
            .key(&keys.stock)
            .key(&keys.buyers)
            .key(&keys.pending)
            .key(&keys.holders)
            .arg(order_id)
            .arg(routed_by);
        self.settle_on(&RELEASE, "release", &release, &keys.meta).await
    }

    async fn confirm(&self, shard: &Shard, order_id: &str, routed_by: u32) -> PortResult<SettleReply> {
        let keys = self.keys(shard);
        let mut confirm = CONFIRM.key(&keys.meta);
        confirm
            .key(&keys.pending)
            .key(&keys.holders)
            .key(&keys.paid)
            .arg(order_id)
            .arg(routed_by);
        self.settle_on(&CONFIRM, "confirm", &confirm, &keys.meta).await
    }

    async fn publish(&self, shard: &Shard, args: PublishArgs<'_>) -> PortResult<PublishReply> {
        let keys = self.keys(shard);
        let mut invocation = PUBLISH.prepare_invoke();
        for key in keys.all() {
            invocation.key(key);
        }
        let terms = args.terms;
        if args.first {
            invocation.arg(terms.num);
        } else {
            invocation.arg("-");
        }
        invocation
            .arg(terms.begin_ms)
            .arg(terms.end_ms)
            .arg(terms.pay_timeout_ms)
            .arg(terms.price)
            .arg(&terms.name);
        match args.load {
            None => {
                invocation.arg("-").arg(args.shards).arg(0);
            }
            Some((stock, orders)) => {
                invocation.arg(stock).arg(args.shards);
                order_args(&mut invocation, orders);
            }
        }
        let (status, values) = split_reply(self.run(&PUBLISH, &invocation, &keys.meta).await?)?;
        Ok(match status.as_str() {
            "PUBLISHED" => PublishReply::Published {
                stock: field(&values, 0)?,
                shards: field(&values, 1)?,
            },
            "REPUBLISHED" => PublishReply::Republished {
                stock: field(&values, 0)?,
                shards: field(&values, 1)?,
            },
            "BELOW_SOLD" => PublishReply::BelowSold {
                sold: field(&values, 0)?,
            },
            "NEEDS_LEDGER" => PublishReply::NeedsLedger,
            other => return Err(unexpected("publish", other)),
        })
    }

    async fn restore(&self, shard: &Shard, orders: &[LiveOrder<'_>], routed_by: u32) -> PortResult<RestoreReply> {
        let keys = self.keys(shard);
        let mut restore = RESTORE.key(&keys.meta);
        restore
            .key(&keys.stock)
            .key(&keys.buyers)
            .key(&keys.pending)
            .key(&keys.holders)
            .key(&keys.paid)
            .arg(routed_by);
        order_args(&mut restore, orders);
        let (status, values) = split_reply(self.run(&RESTORE, &restore, &keys.meta).await?)?;
        Ok(match status.as_str() {
            "NOT_LOADED" => RestoreReply::NotLoaded,
            "RESTORED" => RestoreReply::Restored {
                orders: field(&values, 0)?,
                oversold: field(&values, 1)?,
            },
            "RESHARDED" => RestoreReply::Resharded(field(&values, 0)?),
            "NOT_READY" => RestoreReply::NotReady,
            other => return Err(unexpected("restore", other)),
        })
    }

    async fn split(&self, sku_id: &str, wanted: u32) -> PortResult<SplitReply> {
        let keys = self.keys(&Shard::first(sku_id));
        let mut split = SPLIT.key(&keys.meta);
        split
            .key(&keys.stock)
            .key(&keys.pending)
            .key(&keys.holders)
            .key(&keys.paid)
            .arg(wanted);
        let (status, values) = split_reply(self.run(&SPLIT, &split, &keys.meta).await?)?;
        Ok(match status.as_str() {
            "NOT_PUBLISHED" => SplitReply::NotPublished,
            "SHARDED" => SplitReply::Sharded(field(&values, 0)?),
            "SPLIT" => SplitReply::Split {
                shards: field(&values, 0)?,
                shares: field(&values, 1)?,
                orders: field(&values, 2)?,
            },
            other => return Err(unexpected("split", other)),
        })
    }

    async fn join(&self, sku_id: &str, shards: u32, moved: &[(&str, &str)]) -> PortResult<()> {
        let keys = self.keys(&Shard::first(sku_id));
        let mut join = JOIN.key(&keys.meta);
        join.key(&keys.buyers)
            .key(&keys.pending)
            .key(&keys.holders)
            .key(&keys.paid)
            .arg(shards)
            .arg(moved.len());
        for (username, order_id) in moved {
            join.arg(username).arg(order_id);
        }
        let status: String = redis::from_redis_value(self.run(&JOIN, &join, &keys.meta).await?)?;
        match status.as_str() {
            "JOINED" => Ok(()),
            other => Err(unexpected("join", other)),
        }
    }

    async fn lend(&self, from: &Shard, transfer: &str, to: u32, now_ms: i64) -> PortResult<LendReply> {
        let keys = self.keys(from);
        let mut lend = LEND.key(&keys.stock);
        lend.key(&keys.lent).arg(transfer).arg(to).arg(now_ms);
        let (status, values) = split_reply(self.run(&LEND, &lend, &keys.stock).await?)?;
        Ok(match status.as_str() {
            "EMPTY" => LendReply::Empty,
            "LENT" => LendReply::Lent(field(&values, 0)?),
            other => return Err(unexpected("lend", other)),
        })
    }

    async fn receive(&self, shard: &Shard, transfer: &str, units: i64) -> PortResult<ReceiveReply> {
        let keys = self.keys(shard);
        let mut receive = RECEIVE.key(&keys.meta);
        receive.key(&keys.stock).key(&keys.received).arg(transfer).arg(units);
        let status: String = redis::from_redis_value(self.run(&RECEIVE, &receive, &keys.meta).await?)?;
        Ok(match status.as_str() {
            "RECEIVED" => ReceiveReply::Received,
            "DUPLICATE" => ReceiveReply::Duplicate,
            "MISSING" => ReceiveReply::Missing,
            other => return Err(unexpected("receive", other)),
        })
    }

    async fn forget_transfer(&self, from: &Shard, transfer: &str) -> PortResult<()> {
        redis::cmd("HDEL")
            .arg(self.keys(from).lent)
            .arg(transfer)
            .exec_async(&mut self.connection())
            .await?;
        Ok(())
    }

    async fn lent(&self, shard: &Shard) -> PortResult<BTreeMap<String, String>> {
        Ok(redis::cmd("HGETALL")
            .arg(self.keys(shard).lent)
            .query_async(&mut self.connection())
            .await?)
    }

    async fn retire(&self, shard: &Shard, now_ms: i64) -> PortResult<bool> {
        let keys = self.keys(shard);
        let retiring = RetiringKeys {
            meta: &keys.meta,
            outstanding: &[&keys.pending, &keys.lent],
            others: &[&keys.stock, &keys.buyers, &keys.holders, &keys.paid, &keys.received],
        };
        // A shard other than the first passes no live set: the SKU stays
        // live until its first shard retires.
        let live_set = (shard.index == 0).then_some(SKU);
        self.retire_keys(live_set, &shard.sku_id, retiring, now_ms).await
    }

    async fn meta(&self, shard: &Shard) -> PortResult<BTreeMap<String, String>> {
        Ok(redis::cmd("HGETALL")
            .arg(self.keys(shard).meta)
            .query_async(&mut self.connection())
            .await?)
    }

    async fn layouts_of(&self, sku_ids: &[&str]) -> PortResult<Vec<Option<u32>>> {
        self.each(sku_ids.iter().map(|sku_id| {
            redis::cmd("HGET")
                .arg(self.keys(&Shard::first(sku_id)).meta)
                .arg("shards")
                .clone()
        }))
        .await
    }

    async fn stocks(&self, shards: &[Shard]) -> PortResult<Vec<Option<i64>>> {
        self.each(
            shards
                .iter()
                .map(|shard| redis::cmd("GET").arg(self.keys(shard).stock).clone()),
        )
        .await
    }

    async fn census(&self, shards: &[Shard]) -> PortResult<Vec<Census>> {
        let reads = shards.iter().map(|shard| {
            let keys = self.keys(shard);
            let mut connection = self.connection();
            async move {
                let (stock, lending, arrivals): (Option<i64>, bool, Option<i64>) = redis::pipe()
                    .cmd("GET")
                    .arg(&keys.stock)
                    .cmd("EXISTS")
                    .arg(&keys.lent)
                    .cmd("HGET")
                    .arg(&keys.meta)
                    .arg("arrivals")
                    .query_async(&mut connection)
                    .await?;
                Ok::<_, PortError>(Census {
                    stock,
                    lending,
                    arrivals: arrivals.unwrap_or(0),
                })
            }
        });
        futures::future::try_join_all(reads).await
    }

    async fn overdue(&self, shard: &Shard, due_ms: i64, limit: usize) -> PortResult<Vec<Hold>> {
        let keys = self.keys(shard);
        let mut connection = self.connection();
        let due: Vec<(String, i64)> = redis::cmd("ZRANGE")
            .arg(&keys.pending)
            .arg("-inf")
            .arg(due_ms)
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
        let (holders, (price, name)): (Vec<Option<String>>, SaleTerms) = redis::pipe()
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
                    sku_id: shard.sku_id.clone(),
                    order_id,
                    username: username?,
                    pay_deadline: ts::from_millis(deadline),
                    price: price.unwrap_or_default(),
                    name: name.clone().unwrap_or_default(),
                })
            })
            .collect())
    }

    async fn known(&self, shard: &Shard, orders: &[(&str, bool)]) -> PortResult<Option<Vec<bool>>> {
        let keys = self.keys(shard);
        let ids: Vec<&str> = orders.iter().map(|(id, _)| *id).collect();
        // Known as `restore.lua` knows an order: by its hold, or among the
        // paid. HMGET needs a field, hence the leading "-".
        let mut pipe = redis::pipe();
        pipe.cmd("EXISTS").arg(&keys.stock);
        pipe.cmd("HMGET").arg(&keys.holders).arg("-").arg(&ids);
        pipe.cmd("HMGET").arg(&keys.paid).arg("-").arg(&ids);
        let (loaded, holders, paid): (bool, Vec<Option<String>>, Vec<Option<String>>) =
            pipe.query_async(&mut self.connection()).await?;
        if !loaded {
            return Ok(None);
        }
        Ok(Some(
            orders
                .iter()
                .zip(holders.iter().skip(1).zip(paid.iter().skip(1)))
                .map(|((_, is_paid), (held, paid))| held.is_some() || (*is_paid && paid.is_some()))
                .collect(),
        ))
    }

    async fn live_skus(&self) -> PortResult<Vec<String>> {
        Ok(redis::cmd("SMEMBERS")
            .arg(self.live_key(SKU))
            .query_async(&mut self.connection())
            .await?)
    }

    async fn mark_live(&self, sku_id: &str) -> PortResult<()> {
        self.mark_live_in(SKU, sku_id).await
    }

    async fn masters(&self) -> PortResult<u32> {
        self.connection().masters().await.map_err(PortError::from)
    }
}

/// A shard's keys as read: meta, stock, buyers, pending, holders, paid,
/// lent, received.
type ShardRead = (
    BTreeMap<String, String>,
    Option<i64>,
    std::collections::BTreeSet<String>,
    Vec<(String, f64)>,
    BTreeMap<String, String>,
    BTreeMap<String, String>,
    BTreeMap<String, String>,
    std::collections::BTreeSet<String>,
);

impl RedisGate {
    /// Every key of one shard, as data (a test compares it with the
    /// in-memory gate's).
    pub async fn shard_keys(&self, shard: &Shard) -> PortResult<ShardKeys> {
        let keys = self.keys(shard);
        let mut connection = self.connection();
        let (meta, stock, buyers, pending, holders, paid, lent, received): ShardRead = redis::pipe()
            .cmd("HGETALL")
            .arg(&keys.meta)
            .cmd("GET")
            .arg(&keys.stock)
            .cmd("SMEMBERS")
            .arg(&keys.buyers)
            .cmd("ZRANGE")
            .arg(&keys.pending)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .cmd("HGETALL")
            .arg(&keys.holders)
            .cmd("HGETALL")
            .arg(&keys.paid)
            .cmd("HGETALL")
            .arg(&keys.lent)
            .cmd("SMEMBERS")
            .arg(&keys.received)
            .query_async(&mut connection)
            .await?;
        let mut ttls = redis::pipe();
        for key in keys.all() {
            ttls.cmd("PTTL").arg(key);
        }
        let ttls: Vec<i64> = ttls.query_async(&mut connection).await?;
        let names = [
            "meta", "stock", "buyers", "pending", "holders", "paid", "lent", "received",
        ];
        Ok(ShardKeys {
            meta,
            stock,
            buyers,
            pending: pending.into_iter().map(|(id, score)| (id, score as i64)).collect(),
            holders,
            paid,
            lent,
            received,
            expiring: names
                .into_iter()
                .zip(ttls)
                .filter(|(_, ttl)| *ttl >= 0)
                .map(|(name, _)| name.to_owned())
                .collect(),
        })
    }
}
