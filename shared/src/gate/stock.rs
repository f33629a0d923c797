//! [`StockGate`] on Redis: the scripts of `lua/` over the keys of one SKU,
//! or of the one shard of a sharded SKU a call concerns (see `shards.rs`).

use std::{
    collections::{BTreeMap, HashMap},
    sync::LazyLock,
    time::Duration,
};

use chrono::{DateTime, Utc};
use redis::{Script, ScriptInvocation};
use ulid::Ulid;

use super::{
    RedisGate, RetiringKeys, field,
    shards::{self, Shard},
    split_reply, unexpected,
};
use crate::{
    model::{Order, OrderStatus, ReservedUnit, Sku},
    ports::{Hold, HoldOutcome, PortError, PortResult, PublishOutcome, Reservation, Restored, StockGate},
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

/// How long a call waits in all for a shard that is being opened (between
/// `split.lua` and its `publish.lua`: a few milliseconds) before it answers
/// 503.
const SHARD_OPENING_WAIT: Duration = Duration::from_millis(500);
const SHARD_OPENING_POLL: Duration = Duration::from_millis(20);

/// Rounds of borrowing one grab may make when every unit it borrows is
/// taken by others first; past them, the shard is as good as sold out.
const BORROW_ROUNDS: usize = 8;

/// A lent record older than this is taken for one whose lender died before
/// delivering it, and the timeout sweep delivers it. Far longer than a
/// request's own timeouts, so the two never race for long (and a delivery
/// counts once however many race).
const TRANSFER_GRACE_MS: i64 = 10_000;

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

/// A script's answer on a shard, or why it must be asked again elsewhere.
enum Routed<T> {
    Done(T),
    /// The SKU has this many shards now, not what the call routed by.
    Resharded(u32),
    /// The shard is not open yet (the SKU is being split).
    NotReady,
}

impl<T> Routed<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Routed<U> {
        match self {
            Routed::Done(answer) => Routed::Done(f(answer)),
            Routed::Resharded(shards) => Routed::Resharded(shards),
            Routed::NotReady => Routed::NotReady,
        }
    }
}

/// What runs on a shopper's home shard.
#[derive(Clone, Copy)]
enum HomeCall<'a> {
    Grab { order_id: &'a str, now: DateTime<Utc> },
    Release { order_id: &'a str },
    Confirm { order_id: &'a str },
}

/// The answer of a [`HomeCall`].
enum Answer {
    Reservation(Reservation),
    Hold(HoldOutcome),
}

impl RedisGate {
    pub(super) fn shard(&self, sku_id: &str, index: u32, shards: u32) -> Shard {
        let tag = shards::tag(sku_id, index, shards);
        let key = |part| self.key(SKU, &tag, part);
        Shard {
            index,
            keys: SkuKeys {
                meta: key("meta"),
                stock: key("stock"),
                buyers: key("buyers"),
                pending: key("pending"),
                holders: key("holders"),
                paid: key("paid"),
                lent: key("lent"),
                received: key("received"),
            },
        }
    }

    fn shards(&self, sku_id: &str, shards: u32) -> Vec<Shard> {
        (0..shards).map(|index| self.shard(sku_id, index, shards)).collect()
    }

    /// How many shards the SKU has, as its first shard says now.
    async fn layout_now(&self, sku_id: &str) -> PortResult<u32> {
        let shards: Option<u32> = redis::cmd("HGET")
            .arg(self.shard(sku_id, 0, 1).keys.meta)
            .arg("shards")
            .query_async(&mut self.connection())
            .await?;
        let shards = shards.unwrap_or(1).max(1);
        self.layouts.set(sku_id, shards);
        Ok(shards)
    }

    /// Runs `call` on the home shard of `username`, routing again when the
    /// shard says the SKU's layout changed, and waiting a moment for a shard
    /// still being opened. Returns the answer and the layout it was got by.
    async fn on_home(&self, sku_id: &str, username: &str, call: HomeCall<'_>) -> PortResult<(Answer, u32)> {
        let mut waited = Duration::ZERO;
        let mut reroutes = 0;
        loop {
            let shards = self.layouts.get(sku_id);
            let home = self.shard(sku_id, shards::home(username, shards), shards);
            let routed = match call {
                HomeCall::Grab { order_id, now } => self
                    .grab_on(&home, shards, username, order_id, now)
                    .await?
                    .map(Answer::Reservation),
                HomeCall::Release { order_id } => {
                    let keys = &home.keys;
                    let mut release = RELEASE.key(&keys.meta);
                    release
                        .key(&keys.stock)
                        .key(&keys.buyers)
                        .key(&keys.pending)
                        .key(&keys.holders)
                        .arg(order_id)
                        .arg(shards);
                    self.settle_on(&RELEASE, "release", &release, &keys.meta)
                        .await?
                        .map(Answer::Hold)
                }
                HomeCall::Confirm { order_id } => {
                    let keys = &home.keys;
                    let mut confirm = CONFIRM.key(&keys.meta);
                    confirm
                        .key(&keys.pending)
                        .key(&keys.holders)
                        .key(&keys.paid)
                        .arg(order_id)
                        .arg(shards);
                    self.settle_on(&CONFIRM, "confirm", &confirm, &keys.meta)
                        .await?
                        .map(Answer::Hold)
                }
            };
            match routed {
                Routed::Done(answer) => return Ok((answer, shards)),
                Routed::Resharded(now) if reroutes < 3 => {
                    reroutes += 1;
                    self.layouts.set(sku_id, now);
                }
                Routed::NotReady if waited < SHARD_OPENING_WAIT => {
                    tokio::time::sleep(SHARD_OPENING_POLL).await;
                    waited += SHARD_OPENING_POLL;
                    self.layout_now(sku_id).await?;
                }
                _ => {
                    return Err(PortError::Unavailable(format!(
                        "shard {} of SKU {sku_id} is not open",
                        home.index
                    )));
                }
            }
        }
    }

    /// `release.lua` or `confirm.lua` on the home shard of `username`.
    async fn settle_at_home(&self, sku_id: &str, username: &str, call: HomeCall<'_>) -> PortResult<HoldOutcome> {
        match self.on_home(sku_id, username, call).await? {
            (Answer::Hold(outcome), _) => Ok(outcome),
            (Answer::Reservation(_), _) => Err(PortError::Unavailable("a settle answered as a grab".into())),
        }
    }

    async fn grab_on(
        &self,
        shard: &Shard,
        shards: u32,
        username: &str,
        order_id: &str,
        now: DateTime<Utc>,
    ) -> PortResult<Routed<Reservation>> {
        let keys = &shard.keys;
        let mut grab = GRAB.key(&keys.meta);
        grab.key(&keys.stock)
            .key(&keys.buyers)
            .key(&keys.pending)
            .key(&keys.holders)
            .arg(username)
            .arg(order_id)
            .arg(ts::millis(&now))
            .arg(shards);
        let (status, values) = split_reply(self.run(&GRAB, &grab, &keys.meta).await?)?;
        Ok(Routed::Done(match status.as_str() {
            "RESERVED" => Reservation::Reserved(ReservedUnit {
                pay_deadline: ts::from_millis(field(&values, 0)?),
                price: field(&values, 1)?,
                name: field(&values, 2)?,
            }),
            "RESHARDED" => return Ok(Routed::Resharded(field(&values, 0)?)),
            "NOT_PUBLISHED" if shard.index > 0 => return Ok(Routed::NotReady),
            "NOT_PUBLISHED" => Reservation::NotPublished,
            "NOT_STARTED" => Reservation::NotStarted,
            "ENDED" => Reservation::Ended,
            "ALREADY_PURCHASED" => Reservation::AlreadyPurchased,
            "SOLD_OUT" => Reservation::SoldOut,
            other => return Err(unexpected("grab", other)),
        }))
    }

    /// `release.lua` or `confirm.lua` on a shard.
    async fn settle_on(
        &self,
        script: &Script,
        name: &str,
        invocation: &ScriptInvocation<'_>,
        key: &str,
    ) -> PortResult<Routed<HoldOutcome>> {
        let (status, values) = split_reply(self.run(script, invocation, key).await?)?;
        Ok(Routed::Done(match status.as_str() {
            "RELEASED" => HoldOutcome::Released,
            "CONFIRMED" => HoldOutcome::Confirmed,
            "NOT_HELD" => HoldOutcome::NotHeld,
            "RESHARDED" => return Ok(Routed::Resharded(field(&values, 0)?)),
            "NOT_READY" => return Ok(Routed::NotReady),
            other => return Err(unexpected(name, other)),
        }))
    }

    /// Takes units from the other shards, in turn from the one after
    /// `home`, until one lends some; whether any did.
    async fn borrow(&self, sku_id: &str, home: u32, shards: u32, now: DateTime<Utc>) -> PortResult<bool> {
        let to = self.shard(sku_id, home, shards);
        for step in 1..shards {
            let from = self.shard(sku_id, (home + step) % shards, shards);
            let transfer = Ulid::generate().to_string();
            let mut lend = LEND.key(&from.keys.stock);
            lend.key(&from.keys.lent).arg(&transfer).arg(home).arg(ts::millis(&now));
            let (status, values) = split_reply(self.run(&LEND, &lend, &from.keys.stock).await?)?;
            match status.as_str() {
                "EMPTY" => continue,
                "LENT" => {
                    self.deliver(&transfer, field(&values, 0)?, &to, &from).await?;
                    return Ok(true);
                }
                other => return Err(unexpected("lend", other)),
            }
        }
        Ok(false)
    }

    /// Puts lent units on the borrowing shard (or back on the lender if the
    /// borrower is gone), then drops the lender's record of them.
    async fn deliver(&self, transfer: &str, units: i64, to: &Shard, from: &Shard) -> PortResult<()> {
        let receive = |shard: &Shard| {
            let mut receive = RECEIVE.key(&shard.keys.meta);
            receive
                .key(&shard.keys.stock)
                .key(&shard.keys.received)
                .arg(transfer)
                .arg(units);
            receive
        };
        let status: String = redis::from_redis_value(self.run(&RECEIVE, &receive(to), &to.keys.meta).await?)?;
        match status.as_str() {
            "RECEIVED" | "DUPLICATE" => {}
            "MISSING" => {
                let back: String = redis::from_redis_value(self.run(&RECEIVE, &receive(from), &from.keys.meta).await?)?;
                if back == "MISSING" {
                    return Err(PortError::Unavailable("a lent unit has no shard to go to".into()));
                }
            }
            other => return Err(unexpected("receive", other)),
        }
        redis::cmd("HDEL")
            .arg(&from.keys.lent)
            .arg(transfer)
            .exec_async(&mut self.connection())
            .await?;
        Ok(())
    }

    /// `publish.lua` on one shard.
    async fn publish_on(
        &self,
        sku_id: &str,
        shard: &Shard,
        terms: &Terms,
        load: Option<(i64, &[LiveOrder<'_>])>,
        shards: u32,
    ) -> PortResult<PublishOutcome> {
        let keys = &shard.keys;
        let mut invocation = PUBLISH.prepare_invoke();
        for key in [
            &keys.meta,
            &keys.stock,
            &keys.buyers,
            &keys.pending,
            &keys.holders,
            &keys.paid,
            &keys.lent,
            &keys.received,
        ] {
            invocation.key(key);
        }
        if shard.index == 0 {
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
        match load {
            None => {
                invocation.arg("-").arg(shards).arg(0);
            }
            Some((stock, orders)) => {
                invocation.arg(stock).arg(shards);
                order_args(&mut invocation, orders);
            }
        }
        let (status, values) = split_reply(self.run(&PUBLISH, &invocation, &keys.meta).await?)?;
        Ok(match status.as_str() {
            "PUBLISHED" => {
                self.layouts.set(sku_id, field(&values, 1)?);
                PublishOutcome::Published {
                    remaining: field(&values, 0)?,
                }
            }
            "REPUBLISHED" => {
                self.layouts.set(sku_id, field(&values, 1)?);
                PublishOutcome::Republished {
                    remaining: field(&values, 0)?,
                }
            }
            "BELOW_SOLD" => PublishOutcome::BelowSold {
                sold: field(&values, 0)?,
            },
            "NEEDS_LEDGER" => PublishOutcome::NeedsLedger,
            other => return Err(unexpected("publish", other)),
        })
    }

    /// Loads the SKU's shards from the ledger: all of them, splitting what
    /// is left evenly, when Redis has none; otherwise only those it lost,
    /// each with its shoppers' orders and no stock, as the units it had
    /// cannot be told from the ledger while the others sell (they are
    /// logged as stranded: re-publishing with a higher `seckill_num` puts
    /// them back on sale).
    async fn load(&self, sku: &Sku, orders: &[Order]) -> PortResult<PublishOutcome> {
        let shards = sku.shards.unwrap_or(1).max(1);
        let all = self.shards(&sku.id, shards);
        let present: Vec<bool> = self
            .each(
                all.iter()
                    .map(|shard| redis::cmd("EXISTS").arg(&shard.keys.stock).clone()),
            )
            .await?;
        let sold = i64::try_from(orders.len()).unwrap_or(i64::MAX);
        let whole = !present.contains(&true);
        if whole && sku.fields.seckill_num < sold {
            return Ok(PublishOutcome::BelowSold { sold });
        }
        let left = sku.fields.seckill_num - sold;
        let mut remaining = 0;
        // The first shard last: its layout is what sends shoppers elsewhere.
        for (shard, present) in all.iter().zip(&present).rev() {
            let stock = match (whole, shard.index) {
                (false, _) => 0,
                (true, 0) => left - left / i64::from(shards) * i64::from(shards - 1),
                (true, _) => left / i64::from(shards),
            };
            let theirs: Vec<LiveOrder> = orders
                .iter()
                .filter(|order| shards::home(&order.username, shards) == shard.index)
                .map(live)
                .collect();
            let load = (!present).then_some((stock, theirs.as_slice()));
            if !whole && !present {
                tracing::warn!(
                    sku_id = %sku.id,
                    shard = shard.index,
                    "a shard of the SKU was lost with its master: its unsold units are stranded until re-published"
                );
            }
            match self.publish_on(&sku.id, shard, &Terms::of(sku), load, shards).await? {
                PublishOutcome::Published { remaining: r } | PublishOutcome::Republished { remaining: r } => {
                    remaining += r
                }
                other => return Ok(other),
            }
        }
        Ok(if whole {
            PublishOutcome::Published { remaining }
        } else {
            PublishOutcome::Republished { remaining }
        })
    }

    /// Moves every unit of the other shards onto the first, so a lower
    /// `seckill_num` can be checked against what is sold there alone.
    async fn gather(&self, sku_id: &str, shards: u32, now: DateTime<Utc>) -> PortResult<()> {
        while self.borrow(sku_id, 0, shards, now).await? {}
        Ok(())
    }

    /// Each shard's stock, as one pipeline.
    async fn stocks(&self, sku_id: &str, shards: u32) -> PortResult<Vec<Option<i64>>> {
        self.each(
            self.shards(sku_id, shards)
                .into_iter()
                .map(|shard| redis::cmd("GET").arg(shard.keys.stock).clone()),
        )
        .await
    }

    /// Splits a SKU's stock over `wanted` shards, or finishes a split that
    /// an earlier caller began; the SKU's shards after, or `None` if it is
    /// not loaded.
    async fn split_shards(&self, sku_id: &str, wanted: u32) -> PortResult<Option<u32>> {
        let first = self.shard(sku_id, 0, 1);
        let keys = &first.keys;
        let mut split = SPLIT.key(&keys.meta);
        split
            .key(&keys.stock)
            .key(&keys.pending)
            .key(&keys.holders)
            .key(&keys.paid)
            .arg(wanted);
        let (status, values) = split_reply(self.run(&SPLIT, &split, &keys.meta).await?)?;
        let shards: u32 = match status.as_str() {
            "NOT_PUBLISHED" => return Ok(None),
            "SHARDED" => field(&values, 0)?,
            "SPLIT" => {
                let shards: u32 = field(&values, 0)?;
                let shares: Vec<i64> = field(&values, 1)?;
                let orders: Vec<(String, String, i64)> = field(&values, 2)?;
                self.open_shards(sku_id, shards, &shares, &orders).await?;
                shards
            }
            other => return Err(unexpected("split", other)),
        };
        self.layouts.set(sku_id, shards);
        Ok(Some(shards))
    }

    /// The rest of a split: each other shard opened with its share and its
    /// shoppers' orders, then the first drops what moved.
    async fn open_shards(
        &self,
        sku_id: &str,
        shards: u32,
        shares: &[i64],
        orders: &[(String, String, i64)],
    ) -> PortResult<()> {
        let first = self.shard(sku_id, 0, shards);
        let terms = self.terms_of(&first).await?;
        let mut moved = Vec::new();
        for (index, share) in (1..shards).zip(shares) {
            let theirs: Vec<LiveOrder> = orders
                .iter()
                .filter(|(username, ..)| shards::home(username, shards) == index)
                .map(|(username, order_id, deadline)| (username.as_str(), order_id.as_str(), *deadline))
                .collect();
            let shard = self.shard(sku_id, index, shards);
            match self
                .publish_on(sku_id, &shard, &terms, Some((*share, &theirs)), shards)
                .await?
            {
                PublishOutcome::Published { .. } | PublishOutcome::Republished { .. } => {}
                other => {
                    return Err(PortError::Unavailable(format!(
                        "opening shard {index} of SKU {sku_id}: {other:?}"
                    )));
                }
            }
            moved.extend(theirs.iter().map(|&(username, order_id, _)| (username, order_id)));
        }
        let mut join = JOIN.key(&first.keys.meta);
        join.key(&first.keys.buyers)
            .key(&first.keys.pending)
            .key(&first.keys.holders)
            .key(&first.keys.paid)
            .arg(shards)
            .arg(moved.len());
        for (username, order_id) in &moved {
            join.arg(username).arg(order_id);
        }
        let status: String = redis::from_redis_value(self.run(&JOIN, &join, &first.keys.meta).await?)?;
        if status != "JOINED" {
            return Err(unexpected("join", &status));
        }
        tracing::info!(sku_id, shards, moved = moved.len(), "SKU split over shards");
        Ok(())
    }

    /// The terms kept on a SKU's first shard, to open the others with.
    async fn terms_of(&self, first: &Shard) -> PortResult<Terms> {
        let meta: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&first.keys.meta)
            .query_async(&mut self.connection())
            .await?;
        let number = |name: &str| meta.get(name).and_then(|value| value.parse::<i64>().ok());
        let lost = || PortError::Unavailable("a SKU being split lost its terms".into());
        Ok(Terms {
            num: number("num").ok_or_else(lost)?,
            begin_ms: number("begin_ms").ok_or_else(lost)?,
            end_ms: number("end_ms").ok_or_else(lost)?,
            pay_timeout_ms: number("pay_timeout_ms").ok_or_else(lost)?,
            price: number("price").ok_or_else(lost)?,
            name: meta.get("name").cloned().ok_or_else(lost)?,
        })
    }

    /// Finishes what a caller that died left half done on a sharded SKU: a
    /// split, and units lent but never delivered. The timeout sweep calls
    /// it for every live SKU.
    async fn repair_shards(&self, sku_id: &str, now: DateTime<Utc>) -> PortResult<()> {
        let first = self.shard(sku_id, 0, 1);
        let (shards, splitting): (Option<u32>, bool) = redis::pipe()
            .cmd("HGET")
            .arg(&first.keys.meta)
            .arg("shards")
            .cmd("HEXISTS")
            .arg(&first.keys.meta)
            .arg("splitting")
            .query_async(&mut self.connection())
            .await?;
        let shards = shards.unwrap_or(1);
        if splitting {
            self.split_shards(sku_id, shards).await?;
        }
        if shards <= 1 {
            return Ok(());
        }
        let all = self.shards(sku_id, shards);
        for from in &all {
            let lent: BTreeMap<String, String> = redis::cmd("HGETALL")
                .arg(&from.keys.lent)
                .query_async(&mut self.connection())
                .await?;
            for (transfer, record) in lent {
                let mut parts = record.split(':').map(str::parse::<i64>);
                let (Some(Ok(units)), Some(Ok(to)), Some(Ok(since))) = (parts.next(), parts.next(), parts.next())
                else {
                    return Err(unexpected("lend", &record));
                };
                if ts::millis(&now) - since < TRANSFER_GRACE_MS {
                    continue;
                }
                let to = all
                    .get(usize::try_from(to).unwrap_or(usize::MAX))
                    .ok_or_else(|| unexpected("lend", &record))?;
                tracing::warn!(sku_id, transfer, units, "delivering units a dead caller lent");
                self.deliver(&transfer, units, to, from).await?;
            }
        }
        Ok(())
    }
}

/// What `publish.lua` writes on a shard besides its orders: the catalog
/// record's terms, or, when a split opens the other shards, the first
/// shard's.
struct Terms {
    num: i64,
    begin_ms: i64,
    end_ms: i64,
    pay_timeout_ms: i64,
    price: i64,
    name: String,
}

impl Terms {
    fn of(sku: &Sku) -> Self {
        let fields = &sku.fields;
        Terms {
            num: fields.seckill_num,
            begin_ms: ts::millis(&fields.seckill_begin),
            end_ms: ts::millis(&fields.seckill_end),
            pay_timeout_ms: i64::from(fields.pay_timeout_seconds) * 1000,
            price: fields.seckill_price,
            name: fields.name.clone(),
        }
    }
}

/// A live order as the scripts take it: username, order id, and its pay
/// deadline (ms), 0 once paid.
type LiveOrder<'a> = (&'a str, &'a str, i64);

fn live(order: &Order) -> LiveOrder<'_> {
    (&order.username, &order.id, unpaid_deadline(order))
}

/// `n`, then `username, order_id, pay deadline (0 once paid)` per order, as
/// `publish.lua` and `restore.lua` take the ledger's live orders.
fn order_args(invocation: &mut ScriptInvocation<'_>, orders: &[LiveOrder<'_>]) {
    invocation.arg(orders.len());
    for (username, order_id, deadline) in orders {
        invocation.arg(username).arg(order_id).arg(deadline);
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

impl StockGate for RedisGate {
    async fn publish(&self, sku: &Sku, ledger: Option<&[Order]>) -> PortResult<PublishOutcome> {
        self.mark_live(SKU, &sku.id).await?;
        let outcome = match ledger {
            Some(orders) => self.load(sku, orders).await?,
            None => {
                let first = self.shard(&sku.id, 0, 1);
                let terms = Terms::of(sku);
                let mut outcome = self.publish_on(&sku.id, &first, &terms, None, 1).await?;
                let shards = self.layout_now(&sku.id).await?;
                if matches!(outcome, PublishOutcome::BelowSold { .. }) && shards > 1 {
                    self.gather(&sku.id, shards, Utc::now()).await?;
                    outcome = self.publish_on(&sku.id, &first, &terms, None, shards).await?;
                }
                if let PublishOutcome::Republished { remaining } = outcome {
                    let mut remaining = remaining;
                    for shard in self.shards(&sku.id, shards).iter().skip(1) {
                        match self.publish_on(&sku.id, shard, &terms, None, shards).await? {
                            PublishOutcome::Republished { remaining: r } => remaining += r,
                            other => return Ok(other),
                        }
                    }
                    outcome = PublishOutcome::Republished { remaining };
                    // The ledger says the SKU was split; a split that died
                    // before it began is begun again here.
                    if let Some(wanted) = sku.shards.filter(|&wanted| wanted > shards) {
                        self.split_shards(&sku.id, wanted).await?;
                    }
                }
                outcome
            }
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
        for _ in 0..BORROW_ROUNDS {
            let (answer, shards) = self.on_home(sku_id, username, HomeCall::Grab { order_id, now }).await?;
            let Answer::Reservation(reservation) = answer else {
                return Err(PortError::Unavailable("a grab answered as a settle".into()));
            };
            // A shard of a split SKU is sold out; the SKU is sold out only
            // when no other shard has a unit to lend.
            if reservation != Reservation::SoldOut
                || shards <= 1
                || !self.borrow(sku_id, shards::home(username, shards), shards, now).await?
            {
                return Ok(reservation);
            }
        }
        Ok(Reservation::SoldOut)
    }

    async fn release(&self, sku_id: &str, username: &str, order_id: &str) -> PortResult<HoldOutcome> {
        self.settle_at_home(sku_id, username, HomeCall::Release { order_id })
            .await
    }

    async fn confirm(&self, sku_id: &str, username: &str, order_id: &str) -> PortResult<HoldOutcome> {
        self.settle_at_home(sku_id, username, HomeCall::Confirm { order_id })
            .await
    }

    async fn remaining(&self, sku_id: &str) -> PortResult<Option<i64>> {
        Ok(self.remaining_of(&[sku_id]).await?.remove(0))
    }

    async fn remaining_of(&self, sku_ids: &[&str]) -> PortResult<Vec<Option<i64>>> {
        if sku_ids.is_empty() {
            return Ok(Vec::new());
        }
        let firsts: Vec<Shard> = sku_ids.iter().map(|sku_id| self.shard(sku_id, 0, 1)).collect();
        let stocks: Vec<Option<i64>> = self
            .each(
                firsts
                    .iter()
                    .map(|first| redis::cmd("GET").arg(&first.keys.stock).clone()),
            )
            .await?;
        let layouts: Vec<Option<u32>> = self
            .each(
                firsts
                    .iter()
                    .map(|first| redis::cmd("HGET").arg(&first.keys.meta).arg("shards").clone()),
            )
            .await?;
        let firsts = stocks.into_iter().zip(layouts);
        let mut remaining = Vec::with_capacity(sku_ids.len());
        for (sku_id, (stock, shards)) in sku_ids.iter().zip(firsts) {
            let shards = shards.unwrap_or(1);
            self.layouts.set(sku_id, shards);
            if stock.is_none() || shards <= 1 {
                remaining.push(stock);
                continue;
            }
            let stocks = self.stocks(sku_id, shards).await?;
            remaining.push(Some(stocks.into_iter().flatten().sum()));
        }
        Ok(remaining)
    }

    async fn live_skus(&self) -> PortResult<Vec<String>> {
        Ok(redis::cmd("SMEMBERS")
            .arg(self.live_key(SKU))
            .query_async(&mut self.connection())
            .await?)
    }

    async fn overdue(&self, sku_id: &str, due: DateTime<Utc>, limit: usize) -> PortResult<Vec<Hold>> {
        let shards = self.layout_now(sku_id).await?;
        let mut holds = Vec::new();
        for shard in self.shards(sku_id, shards) {
            if holds.len() >= limit {
                break;
            }
            holds.extend(self.overdue_on(sku_id, &shard, due, limit - holds.len()).await?);
        }
        Ok(holds)
    }

    async fn retire_if_finished(&self, sku_id: &str, now: DateTime<Utc>) -> PortResult<bool> {
        let shards = self.layout_now(sku_id).await?;
        // The other shards first: the first one's retirement takes the SKU
        // off the live set, and must wait until every shard is settled.
        for shard in self.shards(sku_id, shards).iter().rev() {
            let keys = &shard.keys;
            let retiring = RetiringKeys {
                meta: &keys.meta,
                outstanding: &[&keys.pending, &keys.lent],
                others: &[&keys.stock, &keys.buyers, &keys.holders, &keys.paid, &keys.received],
            };
            let live_set = (shard.index == 0).then_some(SKU);
            if !self.retire(live_set, sku_id, retiring, now).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn unknown_orders(&self, sku_id: &str, orders: &[Order]) -> PortResult<Option<Vec<String>>> {
        let shards = self.layout_now(sku_id).await?;
        let mut unknown = Vec::new();
        for shard in self.shards(sku_id, shards) {
            let theirs: Vec<&Order> = orders
                .iter()
                .filter(|order| shards::home(&order.username, shards) == shard.index)
                .collect();
            let keys = &shard.keys;
            let ids: Vec<&String> = theirs.iter().map(|o| &o.id).collect();
            // Known as `restore.lua` knows an order: by its hold, or among
            // the paid. HMGET needs a field, hence the leading "-".
            let mut pipe = redis::pipe();
            pipe.cmd("EXISTS").arg(&keys.stock);
            pipe.cmd("HMGET").arg(&keys.holders).arg("-").arg(&ids);
            pipe.cmd("HMGET").arg(&keys.paid).arg("-").arg(&ids);
            let (loaded, holders, paid): (bool, Vec<Option<String>>, Vec<Option<String>>) =
                pipe.query_async(&mut self.connection()).await?;
            if !loaded {
                return Ok(None);
            }
            unknown.extend(
                theirs
                    .iter()
                    .zip(holders.iter().skip(1).zip(paid.iter().skip(1)))
                    .filter(|(order, (held, paid))| held.is_none() && !(unpaid_deadline(order) == 0 && paid.is_some()))
                    .map(|(order, _)| order.id.clone()),
            );
        }
        Ok(Some(unknown))
    }

    async fn restore(&self, sku_id: &str, orders: &[Order]) -> PortResult<Option<Restored>> {
        // A restored hold must be visited by the timeout sweep, even if the
        // SKU had been retired or the live set's own node forgot it.
        self.mark_live(SKU, sku_id).await?;
        let shards = self.layout_now(sku_id).await?;
        let mut restored = Restored::default();
        for shard in self.shards(sku_id, shards) {
            let theirs: Vec<LiveOrder> = orders
                .iter()
                .filter(|order| shards::home(&order.username, shards) == shard.index)
                .map(live)
                .collect();
            if theirs.is_empty() && shard.index > 0 {
                continue;
            }
            let Some(mut here) = self.restore_on(&shard, &theirs).await? else {
                return Ok(None);
            };
            if !here.oversold.is_empty() && shards > 1 {
                // Short here may not be short at all: borrow what this shard
                // lacks, and only what is still lacking after is oversold.
                let mut short = 0;
                for _ in 0..here.oversold.len() {
                    let stock: Option<i64> = redis::cmd("GET")
                        .arg(&shard.keys.stock)
                        .query_async(&mut self.connection())
                        .await?;
                    short = -stock.unwrap_or(0);
                    if short <= 0 || !self.borrow(sku_id, shard.index, shards, Utc::now()).await? {
                        break;
                    }
                }
                let short = usize::try_from(short.max(0)).unwrap_or(usize::MAX);
                let keep = here.oversold.len().saturating_sub(short);
                here.oversold.drain(..keep);
            }
            restored.orders.extend(here.orders);
            restored.oversold.extend(here.oversold);
        }
        self.mark_live(SKU, sku_id).await?;
        Ok(Some(restored))
    }

    async fn split(&self, sku_id: &str, shards: u32) -> PortResult<Option<u32>> {
        self.split_shards(sku_id, shards).await
    }

    async fn repair(&self, sku_id: &str, now: DateTime<Utc>) -> PortResult<()> {
        self.repair_shards(sku_id, now).await
    }

    async fn masters(&self) -> PortResult<u32> {
        Ok(self.connection().masters().await?)
    }
}

impl RedisGate {
    async fn overdue_on(&self, sku_id: &str, shard: &Shard, due: DateTime<Utc>, limit: usize) -> PortResult<Vec<Hold>> {
        let keys = &shard.keys;
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

    async fn restore_on(&self, shard: &Shard, orders: &[LiveOrder<'_>]) -> PortResult<Option<Restored>> {
        let keys = &shard.keys;
        let mut restore = RESTORE.key(&keys.meta);
        restore
            .key(&keys.stock)
            .key(&keys.buyers)
            .key(&keys.pending)
            .key(&keys.holders)
            .key(&keys.paid);
        order_args(&mut restore, orders);
        let (status, values) = split_reply(self.run(&RESTORE, &restore, &keys.meta).await?)?;
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
