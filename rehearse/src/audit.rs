//! The audit: the books of the sale and the rain, through the API, held to
//! the invariants the system promises. Each check prints its figures; the
//! rehearsal fails if any does not hold. A check that waits on a job (an
//! abandoned unit back on sale after its deadline, a packet credited by
//! the payout) is "not yet due" until that job has surely done its work
//! after its precondition (`--jobs-within-seconds`), and fails only then.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use chrono::{DateTime, Utc};

use futures::{StreamExt, stream};
use serde::Serialize;

use crate::{
    api::{Api, Failure},
    crowd::{Acknowledged, Shopper},
};

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub figures: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Holds,
    Fails,
    /// It holds but for this many cases whose precondition (a deadline, a
    /// payout run) has not come yet.
    NotYetDue(usize),
}

impl Verdict {
    /// `overdue` cases break the check; `waiting` ones are not yet due.
    fn of(overdue: usize, waiting: usize) -> Verdict {
        match (overdue, waiting) {
            (0, 0) => Verdict::Holds,
            (0, waiting) => Verdict::NotYetDue(waiting),
            _ => Verdict::Fails,
        }
    }

    /// The mark printed beside a check.
    pub fn mark(self) -> &'static str {
        match self {
            Verdict::Holds => "ok",
            Verdict::Fails => "FAIL",
            Verdict::NotYetDue(_) => "not yet due",
        }
    }
}

pub(crate) fn check(name: &'static str, passed: bool, figures: String) -> Check {
    let verdict = if passed { Verdict::Holds } else { Verdict::Fails };
    Check { name, verdict, figures }
}

/// What the audit looks at.
pub struct Subject<'a> {
    pub sku: Option<&'a str>,
    pub campaign: Option<&'a str>,
    /// The crowd's shoppers and what the API acknowledged to them, when the
    /// audit follows a rehearsal.
    pub crowd: Option<(&'a [Shopper], &'a Acknowledged)>,
    /// When the crowd's last claim was answered (`None`: long ago).
    pub crowd_ended: Option<DateTime<Utc>>,
    /// How long after its precondition a job has surely done what waits
    /// on it (its schedule's period plus a run's own time).
    pub jobs_within: Duration,
}

impl Subject<'_> {
    /// Whether the jobs have surely done their work since `since`.
    fn due(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        chrono::Duration::from_std(self.jobs_within).is_ok_and(|within| since + within <= now)
    }

    /// Whether the payout has had a run since the last claim.
    fn payout_due(&self, now: DateTime<Utc>) -> bool {
        self.crowd_ended.is_none_or(|ended| self.due(ended, now))
    }
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
            .and_then(Option::as_ref)
            .is_some_and(|(status, _)| wanted.contains(&status.as_str()))
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
    let now = Utc::now();
    let (mut overdue, mut waiting) = (0, 0);
    for id in &acknowledged.abandoned {
        if let Some(Some((status, deadline))) = statuses.get(id)
            && status == "PENDING_PAYMENT"
        {
            if deadline.is_some_and(|deadline| !subject.due(deadline, now)) {
                waiting += 1;
            } else {
                overdue += 1;
            }
        }
    }
    checks.push(Check {
        name: "every abandoned unit is back on sale after its deadline",
        verdict: Verdict::of(overdue, waiting),
        figures: format!(
            "{} walked away: {overdue} still pending past their deadline, {waiting} before it",
            acknowledged.abandoned.len()
        ),
    });
    Ok(checks)
}

/// Each order's status and pay deadline as its shopper reads them
/// (`None`: not found).
async fn order_statuses(
    api: &Api,
    shoppers: &[Shopper],
    orders: &[(usize, String)],
) -> BTreeMap<String, Option<(String, Option<DateTime<Utc>>)>> {
    stream::iter(orders)
        .map(|(shopper, id)| async move {
            let order = api.get(&format!("/orders/{id}"), &shoppers[*shopper].token).await;
            let read = order.ok().and_then(|order| {
                let deadline = order["pay_deadline"]
                    .as_str()
                    .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
                    .map(|at| at.with_timezone(&Utc));
                order["status"].as_str().map(|status| (status.to_owned(), deadline))
            });
            (id.clone(), read)
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
    let payout_due = subject.payout_due(Utc::now());
    let owed = usize::try_from(claimed.saturating_sub(credited)).unwrap_or(usize::MAX);
    checks.push(Check {
        name: "claimed == credited (after payout)",
        verdict: match (claimed == credited, payout_due) {
            (true, _) => Verdict::Holds,
            (false, false) if credited < claimed => Verdict::NotYetDue(owed),
            (false, _) => Verdict::Fails,
        },
        figures: format!("{claimed} claimed, {credited} credited"),
    });
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
    // A balance and its credits are two reads: while the payout job is
    // still crediting, one may land between them. Only once it is due is a
    // balance off a failure.
    let unsettled = uncredited.max(off);
    let (overdue, waiting) = if payout_due { (unsettled, 0) } else { (0, unsettled) };
    checks.push(Check {
        name: "every winner's balance equals the sum of their credits",
        verdict: Verdict::of(overdue, waiting),
        figures: format!(
            "{} winners: {off} balances off, {uncredited} packets not yet credited",
            balances.len()
        ),
    });
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
        println!("  {:<11} {:<56} {}", check.verdict.mark(), check.name, check.figures);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_waiting_on_its_precondition_is_not_yet_due_and_does_not_fail() {
        assert_eq!(Verdict::of(0, 3), Verdict::NotYetDue(3));
        assert_eq!(Verdict::of(1, 3), Verdict::Fails);
        assert_eq!(Verdict::of(0, 0), Verdict::Holds);
    }

    #[test]
    fn what_waits_on_a_job_is_due_once_the_job_has_surely_done_it() {
        let subject = Subject {
            sku: None,
            campaign: None,
            crowd: None,
            crowd_ended: None,
            jobs_within: Duration::from_secs(60),
        };
        let deadline = Utc::now();
        assert!(!subject.due(deadline, deadline + chrono::Duration::seconds(59)));
        assert!(subject.due(deadline, deadline + chrono::Duration::seconds(60)));
        assert!(subject.payout_due(deadline), "no crowd: the claims are long past");
    }
}
