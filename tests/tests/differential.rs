//! The in-memory gate against the real scripts: the same seeded sequence
//! of gate operations (publish, grab, release, confirm, split, lend,
//! restore, repair, retire, a lost SKU, a split or a loan a dead caller left
//! half done, …) runs against `MemoryGate` and against a `RedisGate` on a
//! real redis-server, one node and a three-master cluster, and after every
//! step the answers and every key of every shard must be the same. Both
//! run the one protocol of `gate::stock`, so a difference is a script and
//! its in-memory twin deciding differently: one of them is wrong. The
//! waiting room's scripts are held to their twin the same way.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use local_server::services::Cache;
use rand::{RngExt, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use shared::{
    gate::{
        RedisConnection, RedisGate,
        scripts::{Shard, ShardKeys, StockScripts},
    },
    ids,
    memory::MemoryGate,
    model::{Order, OrderStatus, Sku, SkuFields, SkuStatus},
    ports::{PortError, PortResult, Reservation, RoomSchedule, StockGate, WaitingRoom},
    ts,
};

const SKUS: [&str; 2] = ["sku-a", "sku-b"];
const SHOPPERS: usize = 12;
const STEPS: usize = 150;

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-11T12:00:00Z").unwrap().to_utc()
}

/// An answer as compared: a backend's own words in an error are not.
fn answer<T: std::fmt::Debug>(result: PortResult<T>) -> String {
    match result {
        Ok(value) => format!("{value:?}"),
        Err(PortError::Unavailable(_)) => "Unavailable".into(),
        Err(error) => format!("{error:?}"),
    }
}

/// One step of a sequence.
#[derive(Debug, Clone)]
enum Step {
    Publish {
        sku: usize,
        num: i64,
        rebuild: bool,
    },
    Grab {
        sku: usize,
        shopper: usize,
        retry: bool,
        at: i64,
    },
    Release {
        order: usize,
    },
    Confirm {
        order: usize,
    },
    Remaining,
    Overdue {
        sku: usize,
        after: i64,
        limit: usize,
    },
    Retire {
        sku: usize,
        after: i64,
    },
    Unknown {
        sku: usize,
    },
    Restore {
        sku: usize,
        from: usize,
    },
    Split {
        sku: usize,
        shards: u32,
    },
    Repair {
        sku: usize,
        after: i64,
    },
    /// `split.lua` alone: its caller died before opening the other shards.
    SplitOnly {
        sku: usize,
        shards: u32,
    },
    /// `lend.lua` alone: its caller died before delivering.
    LendOnly {
        sku: usize,
        from: u32,
        to: u32,
    },
    /// Every shard of the SKU lost, as a flushed cache loses it.
    Lose {
        sku: usize,
    },
    /// One order's hold, buyer and unit forgotten, as by a failover to a
    /// replica that missed its grab.
    Forget {
        order: usize,
    },
}

/// What the sequence remembers of the orders it made: the ledger a
/// rebuild or a restore is given.
#[derive(Debug, Clone, Default)]
struct Books {
    skus: BTreeMap<usize, Sku>,
    orders: Vec<Order>,
}

impl Books {
    fn sku(&self, sku: usize) -> Sku {
        self.skus.get(&sku).cloned().unwrap_or_else(|| {
            let window = (start() - Duration::minutes(1), start() + Duration::hours(1));
            Sku {
                id: SKUS[sku].into(),
                fields: SkuFields::new("Phone", (10_000, 990), 6, window),
                status: SkuStatus::Seckill,
                sale_num: 0,
                comment_num: 0,
                create_time: start(),
                update_time: start(),
                published_at: None,
                shards: None,
            }
        })
    }

    fn live_of(&self, sku: usize) -> Vec<Order> {
        self.orders
            .iter()
            .filter(|order| order.sku_id == SKUS[sku] && order.status != OrderStatus::Cancelled)
            .cloned()
            .collect()
    }
}

fn step(rng: &mut StdRng, books: &Books) -> Step {
    let sku = rng.random_range(0..SKUS.len());
    let order = rng.random_range(0..books.orders.len().max(1));
    match rng.random_range(0..100) {
        0..=7 => Step::Publish {
            sku,
            num: rng.random_range(0..10),
            rebuild: rng.random_bool(0.3),
        },
        8..=44 => Step::Grab {
            sku,
            shopper: rng.random_range(0..SHOPPERS),
            retry: rng.random_bool(0.1),
            at: [-120_000, 0, 1_000, 3_700_000].choose(rng).copied().unwrap_or(0),
        },
        45..=54 => Step::Release { order },
        55..=61 => Step::Confirm { order },
        62..=64 => Step::Remaining,
        65..=68 => Step::Overdue {
            sku,
            after: rng.random_range(0..2_000_000),
            limit: rng.random_range(1..6),
        },
        69..=71 => Step::Retire {
            sku,
            after: [0, 4_000_000, 9_000_000].choose(rng).copied().unwrap_or(0),
        },
        72..=74 => Step::Unknown { sku },
        75..=78 => Step::Restore {
            sku,
            from: rng.random_range(0..books.orders.len().max(1)),
        },
        79..=84 => Step::Split {
            sku,
            shards: rng.random_range(2..=3),
        },
        85..=90 => Step::Repair {
            sku,
            after: [0, 20_000].choose(rng).copied().unwrap_or(0),
        },
        91 => Step::SplitOnly {
            sku,
            shards: rng.random_range(2..=3),
        },
        92..=94 => Step::Forget { order },
        95..=97 => Step::LendOnly {
            sku,
            from: rng.random_range(0..3),
            to: rng.random_range(0..3),
        },
        _ => Step::Lose { sku },
    }
}

/// Runs `step` on `gate`, keeping `books` as the ledger would; its answer.
async fn run<G: StockGate + StockScripts>(
    gate: &G,
    step: &Step,
    books: &mut Books,
    damage: impl AsyncFnOnce(&Step, &Books),
) -> String {
    let now = start();
    match *step {
        Step::Publish { sku, num, rebuild } => {
            let mut record = books.sku(sku);
            let first = record.published_at.is_none();
            record.fields.seckill_num = num;
            record.published_at = Some(now);
            let live = books.live_of(sku);
            let ledger = (first || rebuild).then_some(live.as_slice());
            let result = StockGate::publish(gate, &record, ledger, now).await;
            books.skus.insert(sku, record);
            answer(result)
        }
        Step::Grab {
            sku,
            shopper,
            retry,
            at,
        } => {
            let username = format!("shopper{shopper}");
            let earlier = books
                .orders
                .iter()
                .rev()
                .find(|order| order.sku_id == SKUS[sku] && order.username == username)
                .map(|order| order.id.clone());
            let order_id = match (retry, earlier) {
                (true, Some(id)) => id,
                _ => ids::fresh(),
            };
            let at = now + Duration::milliseconds(at);
            let result = StockGate::reserve(gate, SKUS[sku], &username, &order_id, at).await;
            if let Ok(Reservation::Reserved(unit)) = &result
                && !books.orders.iter().any(|order| order.id == order_id)
            {
                books
                    .orders
                    .push(Order::pending(order_id, SKUS[sku], unit, &username, at));
            }
            answer(result)
        }
        Step::Release { order } | Step::Confirm { order } => {
            let Some(held) = books.orders.get(order).cloned() else {
                return "no order".into();
            };
            let result = match step {
                Step::Release { .. } => StockGate::release(gate, &held.sku_id, &held.username, &held.id).await,
                _ => StockGate::confirm(gate, &held.sku_id, &held.username, &held.id).await,
            };
            let (released, confirmed) = (
                matches!(step, Step::Release { .. }),
                matches!(step, Step::Confirm { .. }),
            );
            match &result {
                Ok(shared::ports::HoldOutcome::Released) if released => {
                    books.orders[order].status = OrderStatus::Cancelled
                }
                Ok(shared::ports::HoldOutcome::Confirmed) if confirmed => {
                    books.orders[order].status = OrderStatus::Paid
                }
                _ => {}
            }
            answer(result)
        }
        Step::Remaining => answer(StockGate::remaining_of(gate, &SKUS).await),
        Step::Overdue { sku, after, limit } => {
            answer(StockGate::overdue(gate, SKUS[sku], now + Duration::milliseconds(after), limit).await)
        }
        Step::Retire { sku, after } => {
            answer(StockGate::retire_if_finished(gate, SKUS[sku], now + Duration::milliseconds(after)).await)
        }
        Step::Unknown { sku } => answer(StockGate::unknown_orders(gate, SKUS[sku], &books.live_of(sku)).await),
        Step::Restore { sku, from } => {
            let live: Vec<Order> = books.live_of(sku).into_iter().skip(from % 3).collect();
            answer(StockGate::restore(gate, SKUS[sku], &live, now).await)
        }
        Step::Split { sku, shards } => answer(StockGate::split(gate, SKUS[sku], shards).await),
        Step::Repair { sku, after } => {
            answer(StockGate::repair(gate, SKUS[sku], now + Duration::milliseconds(after)).await)
        }
        Step::SplitOnly { sku, shards } => answer(StockScripts::split(gate, SKUS[sku], shards).await),
        Step::LendOnly { sku, from, to } => {
            let shards = gate.layouts().get(SKUS[sku]);
            let from = Shard::of(SKUS[sku], from % shards, shards);
            // Lent a minute ago: its borrower is long dead.
            let since = now - Duration::minutes(1);
            answer(StockScripts::lend(gate, &from, &ids::fresh(), to % shards, ts::millis(&since)).await)
        }
        Step::Lose { .. } | Step::Forget { .. } => {
            damage(step, books).await;
            "damaged".into()
        }
    }
}

/// Every shard of every SKU under every layout a sequence can give it.
fn every_shard() -> Vec<Shard> {
    SKUS.iter()
        .flat_map(|sku| (1..=3).flat_map(move |shards| Shard::all(sku, shards)))
        .collect()
}

async fn redis_keys(gate: &RedisGate) -> BTreeMap<String, ShardKeys> {
    let shards = every_shard();
    let read = futures::future::join_all(shards.iter().map(|shard| gate.shard_keys(shard))).await;
    shards
        .into_iter()
        .zip(read)
        .map(|(shard, keys)| (shard.tag, keys.unwrap()))
        .filter(|(_, keys)| keys.exists())
        .collect()
}

/// Deletes every key of a SKU's shards, as a flushed cache would.
async fn flush(connection: &RedisConnection, prefix: &str, sku: &str) {
    for shard in every_shard().into_iter().filter(|shard| shard.sku_id == sku) {
        for part in [
            "meta", "stock", "buyers", "pending", "holders", "paid", "lent", "received",
        ] {
            redis::cmd("DEL")
                .arg(format!("{prefix}sk:{{{}}}:{part}", shard.tag))
                .exec_async(&mut connection.clone())
                .await
                .unwrap();
        }
    }
}

/// Forgets one order on whichever shard holds it, as `MemoryGate::forget`.
async fn forget(gate: &RedisGate, connection: &RedisConnection, prefix: &str, order: &Order) {
    for shard in every_shard().into_iter().filter(|shard| shard.sku_id == order.sku_id) {
        let keys = gate.shard_keys(&shard).await.unwrap();
        if !keys.holders.contains_key(&order.id) && !keys.paid.contains_key(&order.id) {
            continue;
        }
        let key = |part: &str| format!("{prefix}sk:{{{}}}:{part}", shard.tag);
        let mut connection = connection.clone();
        redis::pipe()
            .cmd("SREM")
            .arg(key("buyers"))
            .arg(&order.username)
            .cmd("ZREM")
            .arg(key("pending"))
            .arg(&order.id)
            .cmd("HDEL")
            .arg(key("holders"))
            .arg(&order.id)
            .cmd("HDEL")
            .arg(key("paid"))
            .arg(&order.id)
            .cmd("INCR")
            .arg(key("stock"))
            .exec_async(&mut connection)
            .await
            .unwrap();
        return;
    }
}

/// One seed: the same steps on both gates, compared after each; the
/// answers.
async fn compare(cache: &Cache, seed: u64) -> Vec<String> {
    let masters = if cache.is_cluster() { 3 } else { 1 };
    let memory = MemoryGate::with_masters(masters);
    let prefix = format!("d{seed}-{}-", ulid::Ulid::generate().to_string().to_lowercase());
    let connection = RedisConnection::open(&cache.url(), cache.is_cluster()).unwrap();
    let redis = RedisGate::new(connection.clone(), &prefix, None);
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut memory_books, mut redis_books) = (Books::default(), Books::default());
    let mut trace = Vec::new();
    let mut answers = Vec::new();
    for number in 0..STEPS {
        let step = step(&mut rng, &memory_books);
        trace.push(format!("{number}: {step:?}"));
        // Fresh ids (orders, transfers) alike on both sides.
        let id_seed = rng.random();
        ids::seed(id_seed, 1_000_000);
        let in_memory = run(&memory, &step, &mut memory_books, async |step, books| match *step {
            Step::Lose { sku } => memory.lose_sku(SKUS[sku]),
            Step::Forget { order } => {
                if let Some(order) = books.orders.get(order)
                    && memory.holds(&order.sku_id, &order.id)
                {
                    memory.forget(&order.sku_id, &order.id, &order.username);
                }
            }
            _ => {}
        })
        .await;
        ids::seed(id_seed, 1_000_000);
        let on_redis = run(&redis, &step, &mut redis_books, async |step, books| match *step {
            Step::Lose { sku } => flush(&connection, &prefix, SKUS[sku]).await,
            Step::Forget { order } => {
                if let Some(order) = books.orders.get(order) {
                    forget(&redis, &connection, &prefix, order).await;
                }
            }
            _ => {}
        })
        .await;
        ids::unseed();
        let last = trace.len().saturating_sub(12);
        assert_eq!(
            in_memory,
            on_redis,
            "seed {seed}: the answers differ at step {number}; the last steps:\n{}",
            trace[last..].join("\n")
        );
        let state = redis_keys(&redis).await;
        assert_eq!(
            memory.all_shard_keys(),
            state,
            "seed {seed}: the keys differ after step {number}; the last steps:\n{}",
            trace[last..].join("\n")
        );
        let mut live = StockGate::live_skus(&redis).await.unwrap();
        live.sort();
        assert_eq!(
            StockGate::live_skus(&memory).await.unwrap(),
            live,
            "seed {seed}, step {number}"
        );
        answers.push(on_redis);
    }
    answers
}

/// Runs the seeds and checks the sequences reached what they are for:
/// sales sold out, units lent, SKUs split, orders restored.
async fn compare_seeds(cache: &Cache, first: u64) {
    let mut answers = Vec::new();
    for seed in seeds() {
        answers.extend(compare(cache, first + seed).await);
    }
    eprintln!(
        "{} steps, {} unavailable",
        answers.len(),
        answers.iter().filter(|a| a.as_str() == "Unavailable").count()
    );
    for reached in [
        "Reserved",
        "SoldOut",
        "AlreadyPurchased",
        "Released",
        "Confirmed",
        "Republished",
        "BelowSold",
        "Lent(",
        "Some(3)",
        "Some(2)",
        "oversold: [\"",
    ] {
        assert!(
            answers.iter().any(|answer| answer.contains(reached)),
            "no step answered {reached}"
        );
    }
}

/// A seeded crowd in one waiting room, on both gates: places taken before
/// and after the opening (the same draws on both), admissions asked and
/// the line read at times moving forward through the grace of places left
/// untaken; every answer the same. The answers, for the caller to check
/// what the sequences reached.
async fn compare_rooms(cache: &Cache, seed: u64) -> Vec<String> {
    let memory = MemoryGate::with_masters(if cache.is_cluster() { 3 } else { 1 });
    let prefix = format!("r{seed}-{}-", ulid::Ulid::generate().to_string().to_lowercase());
    let redis = RedisGate::new(
        RedisConnection::open(&cache.url(), cache.is_cluster()).unwrap(),
        &prefix,
        None,
    );
    let schedule = RoomSchedule {
        opening: start(),
        rate: 3,
        grace: std::time::Duration::from_secs(2),
        // Redis's own clock expires the keys (the twin keeps them): after
        // the sequence, whatever its instants.
        expires: Utc::now() + Duration::hours(1),
    };
    let room = "sku:room";
    let mut rng = StdRng::seed_from_u64(seed);
    let mut at = start() - Duration::seconds(5);
    let mut answers = Vec::new();
    for number in 0..150 {
        at += Duration::milliseconds(rng.random_range(0..300));
        let shopper = format!("shopper{}", rng.random_range(0..25));
        let (step, in_memory, on_redis) = match rng.random_range(0..3) {
            0 => {
                let draw = rng.random::<u64>() >> 11;
                (
                    format!("{shopper} joins at {at}"),
                    answer(memory.join_room(room, &shopper, draw, schedule, at).await),
                    answer(redis.join_room(room, &shopper, draw, schedule, at).await),
                )
            }
            1 => (
                format!("{shopper} asks to be let in at {at}"),
                answer(memory.admit_from_room(room, &shopper, schedule, at).await),
                answer(redis.admit_from_room(room, &shopper, schedule, at).await),
            ),
            _ => (
                format!("the line at {at}"),
                answer(memory.room_line(room, schedule, at).await),
                answer(redis.room_line(room, schedule, at).await),
            ),
        };
        assert_eq!(in_memory, on_redis, "seed {seed}, step {number}: {step}");
        answers.push(on_redis);
    }
    answers
}

async fn compare_room_seeds(cache: &Cache) {
    let mut answers = Vec::new();
    for seed in seeds() {
        answers.extend(compare_rooms(cache, seed).await);
    }
    for reached in [
        "Drawn",
        "Arrived",
        "Admitted",
        "Waiting",
        "NoPlace",
        "last_called_draw: Some",
    ] {
        assert!(
            answers.iter().any(|answer| answer.contains(reached)),
            "no step answered {reached}"
        );
    }
}

/// Seeds per mode; `DIFFERENTIAL_SEEDS` runs more.
fn seeds() -> std::ops::Range<u64> {
    let n = std::env::var("DIFFERENTIAL_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12);
    0..n
}

#[tokio::test]
async fn the_in_memory_gate_decides_as_the_scripts_on_one_node() {
    compare_seeds(&Cache::start(false).expect("redis-server"), 0).await;
}

#[tokio::test]
async fn the_in_memory_gate_decides_as_the_scripts_on_a_cluster() {
    compare_seeds(&Cache::start(true).expect("a three-master cluster"), 1_000).await;
}

#[tokio::test]
async fn the_in_memory_waiting_room_decides_as_its_scripts_on_one_node() {
    compare_room_seeds(&Cache::start(false).expect("redis-server")).await;
}

#[tokio::test]
async fn the_in_memory_waiting_room_decides_as_its_scripts_on_a_cluster() {
    compare_room_seeds(&Cache::start(true).expect("a three-master cluster")).await;
}

/// The generator itself reaches every kind of step.
#[test]
fn the_steps_cover_every_kind() {
    let mut rng = StdRng::seed_from_u64(1);
    let books = Books::default();
    let kinds: std::collections::BTreeSet<String> = (0..2_000)
        .map(|_| {
            format!("{:?}", step(&mut rng, &books))
                .split([' ', '{'])
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds.len(), 15, "{kinds:?}");
}
