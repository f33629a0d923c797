//! `cargo run --release -p bench`: how close the hot paths come to what
//! Redis itself can do on this machine.
//!
//! Every figure is measured in this one process, at the same concurrency,
//! over the same kind of multiplexed connection, against a redis-server and
//! DynamoDB Local it starts itself on loopback:
//!
//! * baseline — a no-op `EVALSHA` (the raw Redis ceiling for one script call);
//! * `grab.lua` sold out — the gate alone, on the path most taps take, on
//!   one node and on a three-master Redis Cluster (as deployed);
//! * `grab.lua` reserving — every call takes a unit (a write), on one node,
//!   then with `REDIS_WAIT_REPLICAS=1` and a replica on loopback: what
//!   waiting for the replica costs;
//! * one hot SKU on a three-master cluster, whole and split over three
//!   shards (see `gate::shards`): grabs per second and each master's share
//!   of the scripts (on two cores the masters share the CPUs, so the point
//!   is the spread, not a speed-up);
//! * a waiting room — `room_join.lua` before and after the opening, and
//!   `room_admit.lua` for called places, each by a shopper of its own on
//!   one room (one master), and the bytes its places hold;
//! * HTTP grab — the whole grab function in-process, one shopper per
//!   request: token check, limit, script and the winners' DynamoDB writes,
//!   then, sold out, the memo's answer for the rest;
//! * HTTP claim — the red-packet claim function the same way;
//! * over real HTTP — `wrk` against the API served on a loopback port:
//!   sold-out grabs (answered from the instance's memo), the same with
//!   the memo off (a script per tap), and exhausted claims, each as a ratio
//!   to the server's own `GET /health` in the same run (`--http-only` runs
//!   just these);
//! * claim winners — a rain's packets all claimed, 256 in flight: the
//!   whole claim (script, then the ledger's transaction that records it
//!   before the shopper is told) against the script alone;
//! * through the edge — a crowd viewing rendered item pages and polling
//!   their stock, straight at the API and through the local edge (nginx):
//!   how many stock reads and page views reach the functions each way
//!   (`--edge-only` runs just these);
//! * cold starts (`--cold-starts <n>`, alone) — each crowd function's
//!   bootstrap under the Lambda runtime emulator, from process start to
//!   its first answer, beside its warm answer and its binary's size;
//! * payout — credits per second of the payout job (batched transactions,
//!   several in flight) against one credit per transaction, one after
//!   another, both on DynamoDB Local.
//!
//! Each figure is printed as requests per second and as a ratio to the
//! baseline. Bounded: `--requests` per figure, loopback only.

mod cold;
mod edge;
mod http;
mod room;

use std::{sync::Arc, time::Instant};

use axum::{
    Router,
    body::Body,
    http::{Request, header},
};
use chrono::Utc;
use clap::Parser;
use futures::{StreamExt, stream};
use local_server::services::{Redis, RedisCluster, Stack};
use shared::{
    App,
    config::Config,
    domain::{
        admission::Limits,
        auth::Role,
        catalog, flash_sale,
        red_packet::{self, NewCampaign, PayoutLimits},
    },
    gate::{RedisConnection, RedisGate, ReplicaWait},
    model::{Guard, Sku, SkuFields},
    ports::{ClaimOutcome, PacketPool, StockGate},
};
use tower::ServiceExt;

#[derive(Parser)]
struct Args {
    /// Requests per figure.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Units on sale (and packets in the rain): the winners that write to DynamoDB.
    #[arg(long, default_value_t = 1_000)]
    units: u32,
    /// Packets paid out for the payout figure.
    #[arg(long, default_value_t = 10_000)]
    packets: u32,
    /// Seconds of each `wrk` run over HTTP.
    #[arg(long, default_value_t = 5)]
    http_seconds: u64,
    /// Runs of each figure over HTTP, taken in turns.
    #[arg(long, default_value_t = 5)]
    http_rounds: usize,
    /// Threads of `wrk`: the machine's cores are shared with the server.
    #[arg(long, default_value_t = 1)]
    http_threads: u32,
    /// Connections `wrk` keeps open.
    #[arg(long, default_value_t = 64)]
    http_connections: u32,
    /// Only the figures over HTTP.
    #[arg(long)]
    http_only: bool,
    /// Only the crowd through the edge.
    #[arg(long)]
    edge_only: bool,
    /// Items the crowd through the edge views and polls.
    #[arg(long, default_value_t = 20)]
    edge_items: usize,
    /// Seconds of each crowd through the edge.
    #[arg(long, default_value_t = 10)]
    edge_seconds: u64,
    /// Connections of the crowd through the edge.
    #[arg(long, default_value_t = 256)]
    edge_connections: u32,
    /// Only the cold starts, each function started this many times.
    #[arg(long)]
    cold_starts: Option<usize>,
}

struct Figure {
    name: &'static str,
    per_second: f64,
}

/// Runs `requests` calls of `call`, `concurrency` at a time.
async fn measure<F, Fut>(name: &'static str, args: &Args, call: F) -> Figure
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let started = Instant::now();
    stream::iter(0..args.requests)
        .map(&call)
        .buffer_unordered(args.concurrency)
        .collect::<Vec<()>>()
        .await;
    let elapsed = started.elapsed();
    Figure {
        name,
        per_second: args.requests as f64 / elapsed.as_secs_f64(),
    }
}

/// A fresh rain of `packets` of 1.00 each, raining now.
async fn rain(app: &App, packets: u32) -> Result<String, shared::BoxError> {
    let now = Utc::now();
    let rain = NewCampaign {
        name: "Bench payout".into(),
        total_amount: i64::from(packets) * 100,
        count: packets,
        begin: now - chrono::Duration::minutes(1),
        end: now + chrono::Duration::hours(1),
        min_amount: 1,
        guard: Guard::default(),
    };
    Ok(red_packet::create(app.ports(), rain, now).await?.id)
}

/// Claims every packet of a fresh rain of `packets`, 256 in flight, each by
/// a shopper of its own: the whole claim (the gate's script, then the
/// ledger's transaction) or, with `script_only`, the gate's script alone;
/// the rain and claims per second.
async fn claim_all(app: &App, packets: u32, script_only: bool) -> Result<(String, f64), shared::BoxError> {
    let campaign_id = rain(app, packets).await?;
    let started = Instant::now();
    stream::iter(0..packets)
        .for_each_concurrent(256, |i| {
            let (id, payee) = (&campaign_id, format!("payee{i}"));
            async move {
                if script_only {
                    let outcome = app.gate.claim(id, &payee, Utc::now()).await.expect("redis answers");
                    assert!(matches!(outcome, ClaimOutcome::Claimed(_)), "{outcome:?}");
                } else {
                    red_packet::claim(app.ports(), id, &payee, Utc::now())
                        .await
                        .expect("every claimant wins a packet");
                }
            }
        })
        .await;
    Ok((campaign_id, f64::from(packets) / started.elapsed().as_secs_f64()))
}

/// Pays out the claimed rain of `packets` with `limits`; credits per second.
async fn credits_per_second(app: &App, packets: u32, limits: PayoutLimits) -> Result<f64, shared::BoxError> {
    let started = Instant::now();
    let report = red_packet::payout(app.ports(), Utc::now(), limits).await?;
    let elapsed = started.elapsed();
    assert_eq!(report.credited, packets, "every packet credited once: {report:?}");
    Ok(f64::from(packets) / elapsed.as_secs_f64())
}

/// A gate of its own on `node`, with `sku` published into it.
async fn gate_with(
    node: &Redis,
    cluster: bool,
    wait: Option<ReplicaWait>,
    sku: &Sku,
) -> Result<RedisGate, shared::BoxError> {
    let gate = RedisGate::new(RedisConnection::open(&node.url(), cluster)?, "", wait);
    gate.publish(sku, Some(&[]), chrono::Utc::now()).await?;
    Ok(gate)
}

/// Scripts each master of `cluster` has run.
fn script_calls(cluster: &RedisCluster) -> Result<Vec<u64>, shared::BoxError> {
    cluster.masters().iter().map(Redis::script_calls).collect()
}

/// One grab by shopper `i` of `sku`, straight on the gate.
fn reserve<'a>(
    gate: &'a RedisGate,
    sku: &'a str,
) -> impl Fn(usize) -> std::pin::Pin<Box<dyn Future<Output = ()> + 'a>> {
    move |i| {
        Box::pin(async move {
            let order_id = format!("01BENCH{i:019}");
            gate.reserve(sku, &format!("bencher{i}"), &order_id, Utc::now())
                .await
                .expect("redis answers");
        })
    }
}

async fn post(router: &Router, path: &str, token: &str) -> u16 {
    let request = Request::post(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("a valid request");
    router
        .clone()
        .oneshot(request)
        .await
        .expect("infallible")
        .status()
        .as_u16()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// The refusals most taps get, over real HTTP, against `GET /health` of the
/// same server: a SKU sold out and a rain exhausted, with the sold-out memo
/// on (as deployed) and off (every tap runs its script).
async fn http_figures(app: &Arc<App>, config: &Config, args: &Args) -> Result<(), shared::BoxError> {
    let now = Utc::now();
    let sold_out = catalog::create_sku(&app.ledger, sku_fields(1), now).await?;
    flash_sale::publish(app.ports(), &sold_out.id, now).await?;
    let rain = NewCampaign {
        name: "Bench exhausted rain".into(),
        total_amount: 100,
        count: 1,
        begin: now - chrono::Duration::minutes(1),
        end: now + chrono::Duration::hours(1),
        min_amount: 1,
        guard: Guard::default(),
    };
    let exhausted = red_packet::create(app.ports(), rain, now).await?;
    let token = app.tokens.issue("bencher", Role::User, now).token;
    let winner = app.tokens.issue("winner", Role::User, now).token;
    let router = local_server::api(app.clone());
    let grab = format!("/seckill/items/{}/grab", sold_out.id);
    let claim = format!("/red-packets/{}/claim", exhausted.id);
    assert_eq!(post(&router, &grab, &winner).await, 201, "the one unit sells");
    assert_eq!(post(&router, &claim, &winner).await, 200, "the one packet is claimed");
    assert_eq!(post(&router, &grab, &token).await, 409, "sold out");
    assert_eq!(post(&router, &claim, &token).await, 409, "exhausted");

    let memo_off = App::connect(&Config {
        sold_out_memo: std::time::Duration::ZERO,
        limits: Limits::none(),
        ..config.clone()
    })
    .await?;
    let with_memo = http::serve(local_server::api(app.clone()))?;
    let without_memo = http::serve(local_server::api(memo_off))?;
    let load = http::Load {
        threads: args.http_threads,
        connections: args.http_connections,
        duration: std::time::Duration::from_secs(args.http_seconds),
    };
    let figures = [
        ("GET /health", "GET", format!("http://{with_memo}/health"), None, false),
        (
            "sold-out grab",
            "POST",
            format!("http://{with_memo}{grab}"),
            Some(&token),
            true,
        ),
        (
            "sold-out grab, memo and limits off (grab.lua per tap)",
            "POST",
            format!("http://{without_memo}{grab}"),
            Some(&token),
            true,
        ),
        (
            "exhausted claim",
            "POST",
            format!("http://{with_memo}{claim}"),
            Some(&token),
            true,
        ),
    ];
    // Round after round, each figure once per round, so a slow spell of
    // the machine falls on every figure alike; each figure's median counts.
    let mut rates = vec![Vec::new(); figures.len()];
    for _ in 0..args.http_rounds {
        for ((name, method, url, token, refused), rates) in figures.iter().zip(&mut rates) {
            let run = http::wrk(load, method, url, token.map(String::as_str)).await?;
            let expected = if *refused { run.requests } else { 0 };
            assert_eq!(run.refused, expected, "{name}: every answer a refusal, or none");
            rates.push(run.per_second);
        }
    }
    let medians: Vec<f64> = rates.iter_mut().map(|rates| median(rates)).collect();
    let health = medians[0];
    assert_eq!(post(&router, &grab, &token).await, 409, "still sold out");
    println!(
        "over HTTP: wrk, {} thread(s), {} connections, the API served in this process; \
         the median of {} runs of {} s per figure, as a ratio to GET /health",
        args.http_threads, args.http_connections, args.http_rounds, args.http_seconds
    );
    for ((name, ..), per_second) in figures.iter().zip(medians) {
        println!(
            "{name:<54} {per_second:>10.0} req/s   {:>5.2}× /health",
            per_second / health
        );
    }
    Ok(())
}

fn sku_fields(units: u32) -> SkuFields {
    let now = Utc::now();
    let window = (now - chrono::Duration::minutes(1), now + chrono::Duration::hours(1));
    SkuFields::new("Bench phone", (10_000, 100), i64::from(units), window)
}

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    let args = Args::parse();
    if let Some(starts) = args.cold_starts {
        return cold::figures(starts).await;
    }
    let stack = Stack::start(false)?;
    let config = stack.config("bench-secret-bench-secret-bench-secret".into());
    let app: Arc<App> = App::connect(&config).await?;
    local_server::create_tables(&app, "").await?;
    let crowd = http::Load {
        threads: args.http_threads,
        connections: args.edge_connections,
        duration: std::time::Duration::from_secs(args.edge_seconds),
    };
    edge::figures(&config, crowd, args.edge_items).await?;
    if args.edge_only {
        return Ok(());
    }
    http_figures(&app, &config, &args).await?;
    if args.http_only {
        return Ok(());
    }
    let router = local_server::api(app.clone());
    let now = Utc::now();
    let tokens: Vec<String> = (0..args.requests)
        .map(|i| app.tokens.issue(&format!("bencher{i}"), Role::User, now).token)
        .collect();

    let mut figures = Vec::new();

    let connection = redis::Client::open(stack.redis.url())?
        .get_multiplexed_async_connection()
        .await?;
    let noop = redis::Script::new("return 1");
    figures.push(
        measure("baseline: no-op EVALSHA", &args, |_| {
            let (mut connection, noop) = (connection.clone(), &noop);
            async move {
                let _: i64 = noop.invoke_async(&mut connection).await.expect("redis answers");
            }
        })
        .await,
    );

    let sold_out = catalog::create_sku(&app.ledger, sku_fields(1), now).await?;
    flash_sale::publish(app.ports(), &sold_out.id, now).await?;
    app.gate
        .reserve(&sold_out.id, "first", "01BENCHFIRSTORDER000000000", now)
        .await?;
    figures.push(measure("grab.lua, sold out", &args, reserve(&app.gate, &sold_out.id)).await);
    let footprints = room::figures(&app.gate, &connection, &args, &mut figures).await?;

    // The gate alone on a cluster, and writing with and without waiting for
    // a replica: each on its own servers, the SKU put straight into it.
    let cluster = RedisCluster::start()?;
    let on_cluster = gate_with(&cluster.masters()[0], true, None, &sold_out).await?;
    on_cluster
        .reserve(&sold_out.id, "first", "01BENCHFIRSTORDER000000000", now)
        .await?;
    figures.push(
        measure(
            "grab.lua, sold out, 3-master cluster",
            &args,
            reserve(&on_cluster, &sold_out.id),
        )
        .await,
    );
    drop(cluster);

    let plenty = catalog::create_sku(&app.ledger, sku_fields(u32::try_from(args.requests)?), now).await?;
    let primary = Redis::start()?;
    let _replica = Redis::replica_of(&primary)?;
    let single = gate_with(&primary, false, None, &plenty).await?;
    figures.push(measure("grab.lua, reserving (a write)", &args, reserve(&single, &plenty.id)).await);
    let wait = ReplicaWait {
        replicas: 1,
        timeout: std::time::Duration::from_millis(100),
    };
    let plenty_again = Sku {
        id: format!("{}-waiting", plenty.id),
        ..plenty.clone()
    };
    let waiting = gate_with(&primary, false, Some(wait), &plenty_again).await?;
    figures.push(
        measure(
            "grab.lua, reserving, WAIT for 1 replica",
            &args,
            reserve(&waiting, &plenty_again.id),
        )
        .await,
    );

    // One hot SKU on a three-master cluster, whole and split over three
    // shards: the same reserving load, and how its scripts spread.
    let cluster = RedisCluster::start()?;
    let whole = Sku {
        id: format!("{}-whole", plenty.id),
        ..plenty.clone()
    };
    let split = Sku {
        id: format!("{}-split", plenty.id),
        shards: Some(3),
        ..plenty.clone()
    };
    let mut spreads = Vec::new();
    for (name, sku) in [
        ("grab.lua, reserving, cluster, one SKU whole", &whole),
        ("grab.lua, reserving, cluster, one SKU split in 3", &split),
    ] {
        let gate = gate_with(&cluster.masters()[0], true, None, sku).await?;
        let before = script_calls(&cluster)?;
        figures.push(measure(name, &args, reserve(&gate, &sku.id)).await);
        let after = script_calls(&cluster)?;
        spreads.push((name, before.iter().zip(after).map(|(b, a)| a - b).collect::<Vec<_>>()));
    }
    drop(cluster);

    let sku = catalog::create_sku(&app.ledger, sku_fields(args.units), now).await?;
    flash_sale::publish(app.ports(), &sku.id, now).await?;
    let path = format!("/seckill/items/{}/grab", sku.id);
    figures.push(
        measure("HTTP grab (winners write orders, then sold out)", &args, |i| {
            let (router, path, token) = (&router, &path, &tokens[i]);
            async move {
                let status = post(router, path, token).await;
                assert!(matches!(status, 201 | 409), "grab answered {status}");
            }
        })
        .await,
    );
    let sold = i64::from(args.units) - app.gate.remaining(&sku.id).await?.unwrap_or_default();

    let rain = NewCampaign {
        name: "Bench rain".into(),
        total_amount: i64::from(args.units) * 100,
        count: args.units,
        begin: now - chrono::Duration::minutes(1),
        end: now + chrono::Duration::hours(1),
        min_amount: 1,
        guard: Guard::default(),
    };
    let campaign = red_packet::create(app.ports(), rain, now).await?;
    let claim_path = format!("/red-packets/{}/claim", campaign.id);
    figures.push(
        measure("HTTP claim (winners, then exhausted)", &args, |i| {
            let (router, path, token) = (&router, &claim_path, &tokens[i]);
            async move {
                let status = post(router, path, token).await;
                assert!(matches!(status, 200 | 409), "claim answered {status}");
            }
        })
        .await,
    );

    // The claim figure's winners first, so each payout below pays only its own rain.
    red_packet::payout(app.ports(), Utc::now(), PayoutLimits::default()).await?;
    let one_at_a_time = PayoutLimits {
        per_transaction: 1,
        concurrency: 1,
        ..PayoutLimits::default()
    };
    claim_all(&app, 1_000, false).await?;
    let sequential = credits_per_second(&app, 1_000, one_at_a_time).await?;
    // The winners' cost of being recorded before told: the same claims,
    // script alone and whole.
    let (_, scripted) = claim_all(&app, args.packets, true).await?;
    let (_, recorded) = claim_all(&app, args.packets, false).await?;
    let batched = credits_per_second(&app, args.packets, PayoutLimits::default()).await?;

    let baseline = figures[0].per_second;
    println!(
        "{} requests per figure, {} in flight, {} units sold of {}",
        args.requests, args.concurrency, sold, args.units
    );
    for figure in &figures {
        println!(
            "{:<50} {:>10.0} req/s   {:>5.2}× baseline",
            figure.name,
            figure.per_second,
            figure.per_second / baseline
        );
    }
    for (name, calls) in &spreads {
        let total: u64 = calls.iter().sum::<u64>().max(1);
        let shares: Vec<String> = calls
            .iter()
            .map(|calls| format!("{:.0}%", *calls as f64 * 100.0 / total as f64))
            .collect();
        println!("{name:<50} scripts per master: {}", shares.join(" / "));
    }
    for footprint in &footprints {
        let per_place = |bytes: u64| bytes as f64 / footprint.count as f64;
        println!(
            "{:<50} {:>10.0} bytes a place waiting, {:.0} once admitted ({} places)",
            format!("a waiting room's {}", footprint.places),
            per_place(footprint.waiting),
            per_place(footprint.admitted),
            footprint.count
        );
    }
    println!(
        "{:<50} {:>10.0} claims/s    {:>5.2}× the script alone ({:.0}/s)",
        format!("claim winners, {} packets, recorded", args.packets),
        recorded,
        recorded / scripted,
        scripted
    );
    println!(
        "{:<50} {:>10.0} credits/s   {:>5.2}× one credit per transaction ({:.0}/s)",
        format!("payout, {} packets", args.packets),
        batched,
        batched / sequential,
        sequential
    );
    Ok(())
}
