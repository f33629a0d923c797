//! The audit: the books of the sale and the rain, through the API, held to
//! the invariants the system promises. Each check prints its figures; the
//! rehearsal fails if any does not hold.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, stream};
use serde::Serialize;

use crate::{
    api::{Api, Failure},
    crowd::{Acknowledged, Shopper},
};

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub figures: String,
}

fn check(name: &'static str, passed: bool, figures: String) -> Check {
    Check { name, passed, figures }
}

/// What the audit looks at.
pub struct Subject<'a> {
    pub sku: Option<&'a str>,
    pub campaign: Option<&'a str>,
    /// The crowd's shoppers and what the API acknowledged to them, when the
    /// audit follows a rehearsal.
    pub crowd: Option<(&'a [Shopper], &'a Acknowledged)>,
    /// Whether the timeout and payout jobs have had time to run since.
    pub settled: bool,
}

/// Reads in flight at once (orders and balances, one call each).
const READS_IN_FLIGHT: usize = 32;

pub async fn audit(api: &Api, admin: &str, subject: &Subject<'_>) -> Result<Vec<Check>, Failure> {
    let mut checks = Vec::new();
    if let Some(sku) = subject.sku {
        checks.extend(sale(api, admin, sku, subject).await?);
    }
    if let Some(campaign) = subject.campaign {
        checks.extend(rain(api, admin, campaign, subject).await?);
    }
    Ok(checks)
}

async fn sale(api: &Api, admin: &str, sku: &str, subject: &Subject<'_>) -> Result<Vec<Check>, Failure> {
    let stats = api.get(&format!("/admin/skus/{sku}/stats"), admin).await?;
    let number = |field: &str| stats[field].as_i64();
    let (units, live) = (number("seckill_num").unwrap_or(0), number("live_orders").unwrap_or(0));
    let mut checks = vec![match number("remaining") {
        Some(remaining) => check(
            "sold + remaining == seckill_num",
            live + remaining == units,
            format!("{live} sold (live orders) + {remaining} remaining, of {units}"),
        ),
        None => check(
            "sold + remaining == seckill_num",
            false,
            "the gate does not have the SKU".into(),
        ),
    }];
    let twice = number("shoppers_with_two_live_orders").unwrap_or(-1);
    checks.push(check(
        "no shopper holds two live orders",
        twice == 0,
        format!("{twice} shoppers with two; orders by status {}", stats["orders"]),
    ));
    let Some((shoppers, acknowledged)) = subject.crowd else {
        return Ok(checks);
    };
    let statuses = order_statuses(api, shoppers, &acknowledged.orders).await;
    let lost = statuses.values().filter(|status| status.is_none()).count();
    checks.push(check(
        "every acknowledged order is in the ledger",
        lost == 0,
        format!("{} acknowledged, {lost} missing", acknowledged.orders.len()),
    ));
    let is = |id: &String, wanted: &[&str]| {
        statuses
            .get(id)
            .and_then(|s| s.as_deref())
            .is_some_and(|s| wanted.contains(&s))
    };
    let unpaid = acknowledged
        .paid
        .iter()
        .filter(|id| !is(id, &["PAID", "SHIPPED", "COMPLETED"]))
        .count();
    let uncancelled = acknowledged
        .cancelled
        .iter()
        .filter(|id| !is(id, &["CANCELLED"]))
        .count();
    checks.push(check(
        "every acknowledged payment and cancel stands",
        unpaid + uncancelled == 0,
        format!(
            "{} paid ({unpaid} not), {} cancelled ({uncancelled} not)",
            acknowledged.paid.len(),
            acknowledged.cancelled.len()
        ),
    ));
    if subject.settled {
        let still_held = acknowledged
            .abandoned
            .iter()
            .filter(|id| is(id, &["PENDING_PAYMENT"]))
            .count();
        checks.push(check(
            "every abandoned unit is back on sale after its deadline",
            still_held == 0,
            format!(
                "{} walked away, {still_held} still pending",
                acknowledged.abandoned.len()
            ),
        ));
    }
    Ok(checks)
}

/// Each order's status as its shopper reads it (`None`: not found).
async fn order_statuses(
    api: &Api,
    shoppers: &[Shopper],
    orders: &[(usize, String)],
) -> BTreeMap<String, Option<String>> {
    stream::iter(orders)
        .map(|(shopper, id)| async move {
            let order = api.get(&format!("/orders/{id}"), &shoppers[*shopper].token).await;
            let status = order.ok().and_then(|o| o["status"].as_str().map(str::to_owned));
            (id.clone(), status)
        })
        .buffer_unordered(READS_IN_FLIGHT)
        .collect()
        .await
}

async fn rain(api: &Api, admin: &str, campaign: &str, subject: &Subject<'_>) -> Result<Vec<Check>, Failure> {
    let stats = api.get(&format!("/admin/red-packets/{campaign}"), admin).await?;
    let number = |field: &str| stats[field].as_i64().unwrap_or(0);
    let (count, remaining, claimed) = (number("count"), number("remaining"), number("claimed"));
    let (credited, total, credited_amount) = (number("credited"), number("total_amount"), number("credited_amount"));
    let mut checks = vec![
        check(
            "remaining + claimed == packets",
            remaining + claimed == count,
            format!("{remaining} remaining + {claimed} claimed, of {count}"),
        ),
        check(
            "credited amounts within the total",
            credited_amount <= total && (remaining > 0 || credited < count || credited_amount == total),
            format!("{credited_amount} of {total} credited"),
        ),
    ];
    if subject.settled {
        checks.push(check(
            "claimed == credited (after payout)",
            claimed == credited,
            format!("{claimed} claimed, {credited} credited"),
        ));
    }
    let Some((shoppers, acknowledged)) = subject.crowd else {
        return Ok(checks);
    };
    let packets: BTreeSet<&String> = acknowledged.packets.iter().map(|(_, packet, _)| packet).collect();
    let winners: BTreeSet<usize> = acknowledged.packets.iter().map(|(shopper, _, _)| *shopper).collect();
    checks.push(check(
        "each packet to one shopper, one packet per shopper",
        packets.len() == acknowledged.packets.len() && winners.len() == acknowledged.packets.len(),
        format!(
            "{} claims acknowledged: {} packets, {} shoppers",
            acknowledged.packets.len(),
            packets.len(),
            winners.len()
        ),
    ));
    let balances: Vec<(i64, i64, bool)> = stream::iter(&acknowledged.packets)
        .map(|(shopper, packet, _)| async move { balance(api, &shoppers[*shopper].token, packet).await })
        .buffer_unordered(READS_IN_FLIGHT)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let off = balances.iter().filter(|(balance, sum, _)| balance != sum).count();
    let uncredited = balances.iter().filter(|(_, _, credited)| !credited).count();
    checks.push(check(
        "every winner's balance equals the sum of their credits",
        off == 0 && (!subject.settled || uncredited == 0),
        format!(
            "{} winners: {off} balances off, {uncredited} packets not yet credited",
            balances.len()
        ),
    ));
    Ok(checks)
}

/// A shopper's balance, the sum of all their credits, and whether `packet`
/// is among them.
async fn balance(api: &Api, token: &str, packet: &str) -> Result<(i64, i64, bool), Failure> {
    let mut cursor: Option<String> = None;
    let (mut sum, mut found) = (0_i64, false);
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/me/balance?limit=100&cursor={cursor}"),
            None => "/me/balance?limit=100".to_owned(),
        };
        let page = api.get(&path, token).await?;
        for credit in page["credits"].as_array().into_iter().flatten() {
            sum = sum
                .checked_add(credit["amount"].as_i64().unwrap_or(0))
                .ok_or("credits overflow")?;
            found |= credit["red_packet_id"].as_str() == Some(packet);
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok((page["balance"].as_i64().unwrap_or(0), sum, found)),
        }
    }
}

pub fn print(heading: &str, checks: &[Check]) {
    println!("\n{heading}");
    for check in checks {
        let mark = if check.passed { "ok  " } else { "FAIL" };
        println!("  {mark} {:<56} {}", check.name, check.figures);
    }
}
