//! [`StockGate`] on Redis: `grab.lua`, `release.lua`, `confirm.lua` and
//! `publish.lua` over the keys of one SKU.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use redis::{Script, ScriptInvocation};

use super::{RedisGate, RetiringKeys, field, split_reply, unexpected};
use crate::{
    model::{Order, OrderStatus, ReservedUnit, Sku},
    ports::{Hold, HoldOutcome, PortResult, PublishOutcome, Reservation, Restored, StockGate},
    ts,
};

static GRAB: LazyLock<Script> = LazyLock::new(|| Script::new(lua::GRAB));
static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(lua::RELEASE));
static CONFIRM: LazyLock<Script> = LazyLock::new(|| Script::new(lua::CONFIRM));
static PUBLISH: LazyLock<Script> = LazyLock::new(|| Script::new(lua::PUBLISH));
static RESTORE: LazyLock<Script> = LazyLock::new(|| Script::new(lua::RESTORE));

const SKU: &str = "sk";

/// The keys of one SKU (see the headers of the scripts in `lua/`).
struct SkuKeys {
    meta: String,
    stock: String,
    buyers: String,
    pending: String,
    holders: String,
    paid: String,
}

impl RedisGate {
    fn sku_keys(&self, sku_id: &str) -> SkuKeys {
        SkuKeys {
            meta: self.key(SKU, sku_id, "meta"),
            stock: self.key(SKU, sku_id, "stock"),
            buyers: self.key(SKU, sku_id, "buyers"),
            pending: self.key(SKU, sku_id, "pending"),
            holders: self.key(SKU, sku_id, "holders"),
            paid: self.key(SKU, sku_id, "paid"),
        }
    }
}

/// `n`, then `username, order_id, pay deadline (0 once paid)` per order, as
/// `publish.lua` and `restore.lua` take the ledger's live orders.
fn order_args(invocation: &mut ScriptInvocation<'_>, orders: &[Order]) {
    invocation.arg(orders.len());
    for order in orders {
        invocation
            .arg(&order.username)
            .arg(&order.id)
            .arg(unpaid_deadline(order));
    }
}

/// The pay deadline (ms) of an unpaid order, 0 once paid.
fn unpaid_deadline(order: &Order) -> i64 {
    match order.status {
        OrderStatus::PendingPayment => ts::millis(&order.pay_deadline),
        _ => 0,
    }
}

/// `price` and `name` from a SKU's meta hash.
type SaleTerms = (Option<i64>, Option<String>);

fn hold_outcome(script: &str, reply: redis::Value) -> PortResult<HoldOutcome> {
    let status: String = redis::from_redis_value(reply)?;
    match status.as_str() {
        "RELEASED" => Ok(HoldOutcome::Released),
        "CONFIRMED" => Ok(HoldOutcome::Confirmed),
        "NOT_HELD" => Ok(HoldOutcome::NotHeld),
        other => Err(unexpected(script, other)),
    }
}

impl StockGate for RedisGate {
    async fn publish(&self, sku: &Sku, ledger: Option<&[Order]>) -> PortResult<PublishOutcome> {
        let keys = self.sku_keys(&sku.id);
        self.mark_live(SKU, &sku.id).await?;
        let fields = &sku.fields;
        let mut invocation = PUBLISH.prepare_invoke();
        invocation
            .key(&keys.meta)
            .key(&keys.stock)
            .key(&keys.buyers)
            .key(&keys.pending)
            .key(&keys.holders)
            .key(&keys.paid)
            .arg(fields.seckill_num)
            .arg(ts::millis(&fields.seckill_begin))
            .arg(ts::millis(&fields.seckill_end))
            .arg(i64::from(fields.pay_timeout_seconds) * 1000)
            .arg(fields.seckill_price)
            .arg(&fields.name);
        match ledger {
            None => {
                invocation.arg("-");
            }
            Some(orders) => order_args(&mut invocation, orders),
        }
        let (status, values) = split_reply(self.run(&PUBLISH, &invocation, &keys.meta).await?)?;
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
            "NEEDS_LEDGER" => PublishOutcome::NeedsLedger,
            other => return Err(unexpected("publish", other)),
        };
        self.mark_live(SKU, &sku.id).await?;
        Ok(outcome)
    }

    async fn reserve(
        &self,
        sku_id: &str,
        username: &str,
        order_id: &str,
        now: DateTime<Utc>,
    ) -> PortResult<Reservation> {
        let keys = self.sku_keys(sku_id);
        let mut grab = GRAB.key(&keys.meta);
        grab.key(&keys.stock)
            .key(&keys.buyers)
            .key(&keys.pending)
            .key(&keys.holders)
            .arg(username)
            .arg(order_id)
            .arg(ts::millis(&now));
        let (status, values) = split_reply(self.run(&GRAB, &grab, &keys.meta).await?)?;
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

    async fn release(&self, sku_id: &str, order_id: &str) -> PortResult<HoldOutcome> {
        let keys = self.sku_keys(sku_id);
        let mut release = RELEASE.key(&keys.stock);
        release
            .key(&keys.buyers)
            .key(&keys.pending)
            .key(&keys.holders)
            .arg(order_id);
        hold_outcome("release", self.run(&RELEASE, &release, &keys.stock).await?)
    }

    async fn confirm(&self, sku_id: &str, order_id: &str) -> PortResult<HoldOutcome> {
        let keys = self.sku_keys(sku_id);
        let mut confirm = CONFIRM.key(&keys.pending);
        confirm.key(&keys.holders).key(&keys.paid).arg(order_id);
        hold_outcome("confirm", self.run(&CONFIRM, &confirm, &keys.pending).await?)
    }

    async fn remaining(&self, sku_id: &str) -> PortResult<Option<i64>> {
        let stock = redis::cmd("GET")
            .arg(self.sku_keys(sku_id).stock)
            .query_async(&mut self.connection())
            .await?;
        Ok(stock)
    }

    async fn remaining_of(&self, sku_ids: &[&str]) -> PortResult<Vec<Option<i64>>> {
        if sku_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for sku_id in sku_ids {
            pipe.cmd("GET").arg(self.sku_keys(sku_id).stock);
        }
        Ok(pipe.query_async(&mut self.connection()).await?)
    }

    async fn live_skus(&self) -> PortResult<Vec<String>> {
        Ok(redis::cmd("SMEMBERS")
            .arg(self.live_key(SKU))
            .query_async(&mut self.connection())
            .await?)
    }

    async fn overdue(&self, sku_id: &str, due: DateTime<Utc>, limit: usize) -> PortResult<Vec<Hold>> {
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

    async fn retire_if_finished(&self, sku_id: &str, now: DateTime<Utc>) -> PortResult<bool> {
        let keys = self.sku_keys(sku_id);
        let retiring = RetiringKeys {
            meta: &keys.meta,
            outstanding: &[&keys.pending],
            others: &[&keys.stock, &keys.buyers, &keys.holders, &keys.paid],
        };
        self.retire(SKU, sku_id, retiring, now).await
    }

    async fn unknown_orders(&self, sku_id: &str, orders: &[Order]) -> PortResult<Option<Vec<String>>> {
        let keys = self.sku_keys(sku_id);
        let ids: Vec<&String> = orders.iter().map(|o| &o.id).collect();
        // Known as `restore.lua` knows an order: by its hold, or among the
        // paid. HMGET and SMISMEMBER need a field, hence the leading "-".
        let mut pipe = redis::pipe();
        pipe.cmd("EXISTS").arg(&keys.stock);
        pipe.cmd("HMGET").arg(&keys.holders).arg("-").arg(&ids);
        pipe.cmd("SMISMEMBER").arg(&keys.paid).arg("-").arg(&ids);
        let (loaded, holders, paid): (bool, Vec<Option<String>>, Vec<bool>) =
            pipe.query_async(&mut self.connection()).await?;
        if !loaded {
            return Ok(None);
        }
        Ok(Some(
            orders
                .iter()
                .zip(holders.iter().skip(1).zip(paid.iter().skip(1)))
                .filter(|(order, (held, paid))| held.is_none() && !(unpaid_deadline(order) == 0 && **paid))
                .map(|(order, _)| order.id.clone())
                .collect(),
        ))
    }

    async fn restore(&self, sku_id: &str, orders: &[Order]) -> PortResult<Option<Restored>> {
        let keys = self.sku_keys(sku_id);
        // A restored hold must be visited by the timeout sweep, even if the
        // SKU had been retired or the live set's own node forgot it.
        self.mark_live(SKU, sku_id).await?;
        let mut restore = RESTORE.key(&keys.meta);
        restore
            .key(&keys.stock)
            .key(&keys.buyers)
            .key(&keys.pending)
            .key(&keys.holders)
            .key(&keys.paid);
        order_args(&mut restore, orders);
        let (status, values) = split_reply(self.run(&RESTORE, &restore, &keys.meta).await?)?;
        self.mark_live(SKU, sku_id).await?;
        match status.as_str() {
            "NOT_LOADED" => Ok(None),
            "RESTORED" => Ok(Some(Restored {
                orders: field(&values, 0)?,
                oversold: field(&values, 1)?,
            })),
            other => Err(unexpected("restore", other)),
        }
    }
}
