//! `rehearse`: rehearses a flash sale and a red-packet rain against any
//! deployment of the API (the local stack or a deployed one) over real
//! HTTP, then audits the books. See docs/operations.md, "Rehearse a sale".
//!
//! * `api` — one HTTP call and its answer.
//! * `crowd` — the taps and what shoppers do next, bounded in requests
//!   and time.
//! * `tally` — outcomes and HDR latency histograms per endpoint.
//! * `line` — `--waiting-room-rate`: the sale and the rain behind waiting
//!   rooms, and each room's own checks.
//! * `audit` — the invariants, checked through the API.
//! * `report` — `--report DIR`: the figures as JSON and an offline HTML
//!   page with SVG charts.

mod api;
mod audit;
mod crowd;
mod line;
mod report;
mod tally;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use chrono::{DateTime, Utc};
use clap::Parser;
use futures::{StreamExt, future::join_all, stream};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::json;

use crate::{
    api::{Api, Failure},
    audit::{Check, Subject},
    crowd::{Behaviour, Plan, Shopper},
};

#[derive(Parser, Debug)]
#[command(about = "Rehearse a flash sale and a red-packet rain over real HTTP, then audit the books")]
struct Args {
    /// Base URL of the API.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    api: String,
    #[arg(long, default_value = "admin")]
    admin_login: String,
    #[arg(long, env = "ADMIN_PASSWORD", default_value = "admin", hide_env_values = true)]
    admin_password: String,
    /// Units of the flash-sale SKU created for the rehearsal.
    #[arg(long, default_value_t = 100)]
    units: i64,
    /// Packets of the red-packet campaign created for the rehearsal.
    #[arg(long, default_value_t = 200)]
    packets: u32,
    /// The campaign's total, in cents.
    #[arg(long, default_value_t = 20_000)]
    total: i64,
    /// Pay timeout of the SKU created, in seconds.
    #[arg(long, default_value_t = 60)]
    pay_timeout_seconds: u32,
    /// Use this SKU instead of creating one.
    #[arg(long)]
    sku: Option<String>,
    /// Use this campaign instead of creating one.
    #[arg(long)]
    campaign: Option<String>,
    /// Shoppers to register and sign in (reused by a later run with the same run id).
    #[arg(long, default_value_t = 200)]
    shoppers: usize,
    /// Names this rehearsal's shoppers (`<run-id>-<n>`); a new one by default.
    #[arg(long)]
    run_id: Option<String>,
    /// Requests the crowd sends at most, follow-ups (pay, cancel, retries) included.
    #[arg(long, default_value_t = 2_000)]
    taps: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Requests per second to aim at, instead of as fast as `--concurrency` goes.
    #[arg(long)]
    rate: Option<f64>,
    /// The crowd stops after this long, whatever is left of `--taps`.
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
    /// Share of winners who pay.
    #[arg(long, default_value_t = 0.7)]
    pay_share: f64,
    /// Share of winners who cancel (the rest walk away).
    #[arg(long, default_value_t = 0.1)]
    cancel_share: f64,
    /// Share of refused shoppers who tap once more.
    #[arg(long, default_value_t = 0.3)]
    retry_share: f64,
    /// After the crowd, wait this long for the timeout and payout jobs, then audit again.
    #[arg(long, default_value_t = 0)]
    settle_seconds: u64,
    /// How long after a deadline or a claim the deployment's timeout and
    /// payout jobs have surely done their work: one period of their
    /// schedule (the template's `OrderTimeoutRate` and `PayoutRate`, a
    /// minute) plus a run's own time (the payout's is up to 45 s). A check
    /// waiting on them is "not yet due" until then.
    #[arg(long, default_value_t = 120)]
    jobs_within_seconds: u64,
    /// Audit `--sku` and `--campaign` only, sending no crowd.
    #[arg(long)]
    audit_only: bool,
    /// Write `report.json` and `report.html` (charts as SVG) here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Rehearse the sale and the rain behind waiting rooms letting in this
    /// many a second each (0: none). Both open `--opens-in-seconds` after
    /// they are created (`--units 0` or `--packets 0` leaves one out).
    #[arg(long, default_value_t = 0)]
    waiting_room_rate: u32,
    #[arg(long, default_value_t = 5)]
    opens_in_seconds: u64,
    /// With a waiting room: the share of shoppers who take places before
    /// the opening (the rest come after it, one after another).
    #[arg(long, default_value_t = 0.8)]
    early_share: f64,
    /// With a waiting room: the share of early shoppers who also fire a
    /// grab or claim without a ticket at the opening, as scripts do.
    #[arg(long, default_value_t = 0.1)]
    blind_share: f64,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("rehearse: {error}");
            ExitCode::from(2)
        }
    }
}

/// Whether every audit check passed.
async fn run(args: Args) -> Result<bool, Failure> {
    let api = Api::new(&args.api, args.concurrency)?;
    let admin = api
        .expect(
            Method::POST,
            "/admin/login",
            None,
            Some(&json!({"login_name": args.admin_login, "password": args.admin_password})),
            200,
        )
        .await?
        .str("token")?;
    if args.audit_only {
        if args.sku.is_none() && args.campaign.is_none() {
            return Err("--audit-only needs --sku or --campaign".into());
        }
        let subject = Subject {
            sku: args.sku.as_deref(),
            campaign: args.campaign.as_deref(),
            crowd: None,
            crowd_ended: None,
            jobs_within: Duration::from_secs(args.jobs_within_seconds),
        };
        return Ok(report_audit("audit", &audit::audit(&api, &admin, &subject).await?));
    }

    if args.waiting_room_rate > 0 {
        return rehearse_line(&api, &admin, &args).await;
    }
    let sku = match args.sku.clone() {
        Some(sku) => Some(sku),
        None if args.units > 0 => Some(create_sale(&api, &admin, &args, None).await?.0),
        None => None,
    };
    let campaign = match args.campaign.clone() {
        Some(campaign) => Some(campaign),
        None if args.packets > 0 => Some(create_rain(&api, &admin, &args, None).await?.0),
        None => None,
    };
    println!(
        "sku {}  campaign {}",
        sku.as_deref().unwrap_or("-"),
        campaign.as_deref().unwrap_or("-")
    );
    let run_id = args
        .run_id
        .clone()
        .unwrap_or_else(|| format!("r{:x}", rand::random::<u32>()));
    let shoppers = sign_in_shoppers(&api, &run_id, args.shoppers, args.concurrency).await?;

    let plan = Plan {
        sku: sku.clone(),
        campaign: campaign.clone(),
        taps: args.taps,
        concurrency: args.concurrency,
        rate: args.rate,
        max: Duration::from_secs(args.max_seconds),
        behaviour: Behaviour {
            pay: args.pay_share,
            cancel: args.cancel_share,
            retry: args.retry_share,
        },
    };
    let progress = ProgressBar::new(args.taps).with_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")?.progress_chars("=> "),
    );
    let (tally, acknowledged) = crowd::run(&api, &shoppers, &plan, &progress).await;
    progress.finish();
    let elapsed = tally.elapsed();
    let figures = tally.figures(elapsed);
    println!(
        "\n{} requests in {:.1} s ({:.0} req/s), {} shoppers",
        tally.requests(),
        elapsed.as_secs_f64(),
        tally.requests() as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
        shoppers.len()
    );
    tally::print_table(&figures);

    let subject = Subject {
        sku: sku.as_deref(),
        campaign: campaign.as_deref(),
        crowd: Some((&shoppers, &acknowledged)),
        crowd_ended: Some(Utc::now()),
        jobs_within: Duration::from_secs(args.jobs_within_seconds),
    };
    let (passed, audits) = audit_and_settle(&api, &admin, &subject, &[], args.settle_seconds).await?;
    if let Some(dir) = &args.report {
        let written = report::Report {
            api: &args.api,
            sku: sku.as_deref(),
            campaign: campaign.as_deref(),
            shoppers: shoppers.len(),
            requests: tally.requests(),
            seconds: elapsed.as_secs_f64(),
            endpoints: &figures,
            audits: &audits,
            timeline: tally.timeline(),
        };
        report::write(dir, &written)?;
        println!("\nreport: {}", dir.join("report.html").display());
    }
    Ok(passed)
}

fn report_audit(heading: &str, checks: &[Check]) -> bool {
    audit::print(heading, checks);
    let waiting = checks
        .iter()
        .filter(|check| matches!(check.verdict, audit::Verdict::NotYetDue(_)))
        .count();
    if waiting > 0 {
        println!("  {waiting} checks not yet due: audit again after --jobs-within-seconds to hold them");
    }
    checks.iter().all(|check| check.verdict != audit::Verdict::Fails)
}

/// When a sale or rain made now opens: a minute ago, or, behind a waiting
/// room, `--opens-in-seconds` from now.
fn opening_of(args: &Args, waiting_room_rate: Option<u32>, now: DateTime<Utc>) -> DateTime<Utc> {
    match waiting_room_rate {
        Some(_) => now + chrono::Duration::seconds(i64::try_from(args.opens_in_seconds).unwrap_or(5)),
        None => now - chrono::Duration::minutes(1),
    }
}

/// A sale of `--units`, open a minute ago, or behind a waiting room of this
/// rate that opens `--opens-in-seconds` from now; and its opening.
async fn create_sale(
    api: &Api,
    admin: &str,
    args: &Args,
    waiting_room_rate: Option<u32>,
) -> Result<(String, DateTime<Utc>), Failure> {
    let now = Utc::now();
    let opening = opening_of(args, waiting_room_rate, now);
    let fields = json!({
        "name": "Rehearsal phone",
        "price": 10_000,
        "seckill_price": 990,
        "seckill_num": args.units,
        "seckill_begin": opening.to_rfc3339(),
        "seckill_end": (now + chrono::Duration::hours(1)).to_rfc3339(),
        "pay_timeout_seconds": args.pay_timeout_seconds,
        "guard": {"waiting_room_rate": waiting_room_rate.unwrap_or(0)},
    });
    let sku = api
        .expect(Method::POST, "/admin/skus", Some(admin), Some(&fields), 201)
        .await?
        .str("id")?;
    api.expect(
        Method::POST,
        &format!("/admin/skus/{sku}/publish"),
        Some(admin),
        None,
        200,
    )
    .await?;
    Ok((sku, opening))
}

/// `--waiting-room-rate`: the sale and the rain behind waiting rooms, at
/// once, their books audited and each room held to its promises.
async fn rehearse_line(api: &Api, admin: &str, args: &Args) -> Result<bool, Failure> {
    let run_id = args
        .run_id
        .clone()
        .unwrap_or_else(|| format!("r{:x}", rand::random::<u32>()));
    // Signed in first: the sale and rain open `--opens-in-seconds` after
    // they are made.
    let shoppers = sign_in_shoppers(api, &run_id, args.shoppers, args.concurrency).await?;
    let rate = Some(args.waiting_room_rate);
    let mut lines = Vec::new();
    if args.units > 0 {
        let (sku, opening) = create_sale(api, admin, args, rate).await?;
        lines.push((line::Prize::Sale(sku), opening));
    }
    if args.packets > 0 {
        let (campaign, opening) = create_rain(api, admin, args, rate).await?;
        lines.push((line::Prize::Rain(campaign), opening));
    }
    let plans: Vec<line::LinePlan> = lines
        .into_iter()
        .map(|(prize, opening)| {
            println!(
                "{}: {}, letting in {} a second from {opening}",
                prize.name(),
                prize.path(),
                args.waiting_room_rate
            );
            line::LinePlan {
                prize,
                opening,
                early_share: args.early_share,
                blind_share: args.blind_share,
                pay_share: args.pay_share,
                concurrency: args.concurrency,
                max: Duration::from_secs(args.max_seconds),
            }
        })
        .collect();
    let runs = join_all(plans.iter().map(|plan| line::run(api, &shoppers, plan))).await;
    let mut acknowledged = crowd::Acknowledged::default();
    let mut checks = Vec::new();
    let (mut sku, mut campaign) = (None, None);
    for (plan, (tally, seen, log)) in plans.iter().zip(runs) {
        let elapsed = tally.elapsed();
        println!(
            "\n{}: {} requests in {:.1} s, {} shoppers: {} drew places before the opening, {} came after, {} were let in",
            plan.prize.name(),
            tally.requests(),
            elapsed.as_secs_f64(),
            shoppers.len(),
            log.early.len(),
            log.late.len(),
            log.admitted.len()
        );
        tally::print_table(&tally.figures(elapsed));
        let room = api
            .call(Method::GET, &format!("{}/queue", plan.prize.path()), None, None)
            .await;
        checks.extend(line::audit(&plan.prize, &log, room.body["admitted"].as_u64()));
        match &plan.prize {
            line::Prize::Sale(id) => {
                sku = Some(id.as_str());
                acknowledged.orders = seen.orders;
                acknowledged.paid = seen.paid;
                acknowledged.abandoned = seen.abandoned;
            }
            line::Prize::Rain(id) => {
                campaign = Some(id.as_str());
                acknowledged.packets = seen.packets;
            }
        }
    }
    let subject = Subject {
        sku,
        campaign,
        crowd: Some((&shoppers, &acknowledged)),
        crowd_ended: Some(Utc::now()),
        jobs_within: Duration::from_secs(args.jobs_within_seconds),
    };
    Ok(audit_and_settle(api, admin, &subject, &checks, args.settle_seconds)
        .await?
        .0)
}

/// The audit after the crowd (with `extra` checks), then again after
/// `settle_seconds` for the jobs if asked: whether every check held, and
/// each audit by name.
async fn audit_and_settle(
    api: &Api,
    admin: &str,
    subject: &Subject<'_>,
    extra: &[Check],
    settle_seconds: u64,
) -> Result<(bool, Vec<(String, Vec<Check>)>), Failure> {
    let mut checks = audit::audit(api, admin, subject).await?;
    checks.extend_from_slice(extra);
    let mut passed = report_audit("audit after the crowd", &checks);
    let mut audits = vec![("audit after the crowd".to_owned(), checks)];
    if settle_seconds > 0 {
        println!("\nwaiting {settle_seconds} s for the timeout and payout jobs…");
        tokio::time::sleep(Duration::from_secs(settle_seconds)).await;
        let checks = audit::audit(api, admin, subject).await?;
        passed &= report_audit("audit after settling", &checks);
        audits.push(("audit after settling".to_owned(), checks));
    }
    Ok((passed, audits))
}

/// A rain of `--packets`, raining since a minute ago, or behind a waiting
/// room of this rate that opens `--opens-in-seconds` from now; and its
/// opening.
async fn create_rain(
    api: &Api,
    admin: &str,
    args: &Args,
    waiting_room_rate: Option<u32>,
) -> Result<(String, DateTime<Utc>), Failure> {
    let now = Utc::now();
    let opening = opening_of(args, waiting_room_rate, now);
    let fields = json!({
        "name": "Rehearsal rain",
        "total_amount": args.total,
        "count": args.packets,
        "begin": opening.to_rfc3339(),
        "end": (now + chrono::Duration::hours(1)).to_rfc3339(),
        "guard": {"waiting_room_rate": waiting_room_rate.unwrap_or(0)},
    });
    let campaign = api
        .expect(Method::POST, "/admin/red-packets", Some(admin), Some(&fields), 201)
        .await?
        .str("id")?;
    Ok((campaign, opening))
}

/// Registers (or, on a later run with the same run id, finds) and signs in
/// every shopper, `concurrency` at a time: each is one password hash on
/// the server.
async fn sign_in_shoppers(api: &Api, run_id: &str, count: usize, concurrency: usize) -> Result<Vec<Shopper>, Failure> {
    let progress = ProgressBar::new(count as u64).with_style(ProgressStyle::with_template(
        "{elapsed_precise} signing in shoppers {pos}/{len}",
    )?);
    let shoppers: Vec<Result<Shopper, Failure>> = stream::iter(0..count)
        .map(|n| {
            let progress = &progress;
            async move {
                let username = format!("{run_id}-{n}");
                let credentials = json!({"username": username, "password": format!("rehearse-{username}")});
                let registered = api.call(Method::POST, "/auth/register", None, Some(&credentials)).await;
                if !matches!(registered.status, 201 | 409) {
                    return Err(format!("registering {username}: {} {}", registered.status, registered.body).into());
                }
                let token = api
                    .expect(Method::POST, "/auth/login", None, Some(&credentials), 200)
                    .await?
                    .str("token")?;
                progress.inc(1);
                Ok(Shopper { token })
            }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    progress.finish();
    shoppers.into_iter().collect()
}
