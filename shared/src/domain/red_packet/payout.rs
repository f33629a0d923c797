//! The payout job: what is owed, read from the ledger oldest first and
//! credited to balances in transactions, each credit once.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use serde::Serialize;

use crate::{
    error::Error,
    model::ClaimRecord,
    ports::{CampaignStore, CreditOutcome, PacketPool, Ports},
    ts,
};

/// What one payout run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PayoutReport {
    /// Claims newly credited.
    pub credited: u32,
    /// Claims found credited already (by an overlapping run, or read from
    /// an index that had not caught up).
    pub already_credited: u32,
    /// Claims whose credit kept failing (a backend down, or another run
    /// crediting the same items); still owed, for the next run.
    pub deferred: u32,
    /// Whether the run stopped at its time budget with work left.
    pub out_of_time: bool,
    /// Campaigns the gate let go of, over and settled.
    pub retired: u32,
}

/// How a payout run spends itself.
#[derive(Debug, Clone, Copy)]
pub struct PayoutLimits {
    /// Owed claims one turn reads from the ledger.
    pub take: usize,
    /// Credits written in one transaction.
    pub per_transaction: usize,
    /// Transactions in flight at once.
    pub concurrency: usize,
    /// How long the run may start new turns (a Lambda has a timeout).
    pub budget: std::time::Duration,
}

impl Default for PayoutLimits {
    /// Sized for a Lambda with a minute's timeout: 25 credits per
    /// transaction (51 of DynamoDB's 100 items), 8 in flight, and new turns
    /// only in the first 45 seconds.
    fn default() -> Self {
        PayoutLimits {
            take: 500,
            per_transaction: 25,
            concurrency: 8,
            budget: std::time::Duration::from_secs(45),
        }
    }
}

/// How often a transaction that conflicted with another run's is tried.
const CREDIT_ATTEMPTS: u32 = 3;

/// What waits for the payout job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PayoutBacklog {
    /// Claims not yet credited.
    pub records: u64,
    /// How long the oldest of them has waited, in seconds.
    pub oldest_age_seconds: Option<i64>,
}

/// The payout lag operators watch: how much is owed and for how long.
pub async fn backlog(ledger: &impl CampaignStore, now: DateTime<Utc>) -> Result<PayoutBacklog, Error> {
    let owed = ledger.owed_count().await?;
    Ok(PayoutBacklog {
        records: owed.records,
        oldest_age_seconds: owed
            .oldest_claimed_at
            .map(|claimed| (ts::millis(&now) - claimed).max(0) / 1000),
    })
}

/// The payout job: reads what is owed from the ledger, the oldest first, a
/// turn at a time, and credits it, until nothing is owed or the time
/// budget is spent; then lets the gate go of campaigns that are over.
/// Every credit is guarded by its still being owed, so overlapping runs, or
/// a run after a crash, credit each claim once.
pub async fn payout(
    ports: Ports<'_, impl PacketPool, impl CampaignStore, impl Sync>,
    now: DateTime<Utc>,
    limits: PayoutLimits,
) -> Result<PayoutReport, Error> {
    let started = std::time::Instant::now();
    let mut report = PayoutReport::default();
    loop {
        if started.elapsed() >= limits.budget {
            report.out_of_time = true;
            break;
        }
        let owed = ports.ledger.owed(limits.take).await?;
        let credited_before = report.credited;
        let mut by_campaign: BTreeMap<&str, Vec<ClaimRecord>> = BTreeMap::new();
        for record in &owed {
            by_campaign.entry(&record.campaign_id).or_default().push(record.clone());
        }
        let mut all_credited = true;
        for (campaign_id, records) in by_campaign {
            all_credited &= credit_all(ports.ledger, campaign_id, &records, now, limits, &mut report).await?;
        }
        // Nothing new credited: all owed is deferred, or the index still
        // shows credits already made; the next run looks again.
        if owed.len() < limits.take || !all_credited || report.credited == credited_before {
            break;
        }
    }
    for campaign_id in ports.gate.live_campaigns().await? {
        if ports.gate.retire_if_over(&campaign_id, now).await? {
            report.retired += 1;
        }
    }
    Ok(report)
}

/// Credits `records` of one campaign, `per_transaction` at a time and
/// `concurrency` transactions at once. `false` if some could not be: they
/// stay owed, for the next run.
async fn credit_all(
    ledger: &impl CampaignStore,
    campaign_id: &str,
    records: &[ClaimRecord],
    now: DateTime<Utc>,
    limits: PayoutLimits,
    report: &mut PayoutReport,
) -> Result<bool, Error> {
    // Chunks by their start, so the futures borrow nothing but `records`
    // (a borrowed chunk would make the run's future less than Send).
    let per = limits.per_transaction.max(1);
    let chunk_at = |start: usize| &records[start..(start + per).min(records.len())];
    let results: Vec<_> = stream::iter((0..records.len()).step_by(per))
        .map(|start| async move {
            let chunk = chunk_at(start);
            (chunk.len(), credit_chunk(ledger, chunk, now).await)
        })
        .buffer_unordered(limits.concurrency.max(1))
        .collect()
        .await;
    let mut all_credited = true;
    for (size, result) in results {
        match result {
            Ok(outcomes) => {
                for outcome in outcomes {
                    match outcome {
                        CreditOutcome::Credited => report.credited += 1,
                        CreditOutcome::AlreadyCredited => report.already_credited += 1,
                    }
                }
            }
            Err(error) => {
                tracing::warn!(campaign_id, %error, records = size, "credits deferred to the next run");
                report.deferred += u32::try_from(size).unwrap_or(u32::MAX);
                all_credited = false;
            }
        }
    }
    Ok(all_credited)
}

/// One transaction's worth, tried again when it failed (another run's
/// transaction on the same items, a throttled table).
async fn credit_chunk(
    ledger: &impl CampaignStore,
    records: &[ClaimRecord],
    now: DateTime<Utc>,
) -> Result<Vec<CreditOutcome>, Error> {
    let mut backoff = std::time::Duration::from_millis(20);
    let mut attempt = 1;
    loop {
        match ledger.credit_batch(records, now).await {
            Ok(outcomes) => return Ok(outcomes),
            Err(error) if attempt >= CREDIT_ATTEMPTS => return Err(error.into()),
            Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff *= 4;
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::red_packet::tests::*;

    #[tokio::test]
    async fn payout_credits_every_claim_once() {
        let memory = Memory::default();
        let campaign = rain(&memory, 1_000, 10).await;
        let won = claims(&memory, &campaign, 7).await;
        let report = payout(memory.ports(), now(), taking(3)).await.unwrap();
        assert_eq!(report.credited, 7, "{report:?}");
        assert_paid_exactly(&memory, &campaign, &won).await;
        let again = payout(memory.ports(), now(), taking(3)).await.unwrap();
        assert_eq!(again.credited + again.already_credited, 0, "{again:?}");
    }

    #[tokio::test]
    async fn a_run_that_died_half_way_leaves_the_rest_owed_to_the_next_and_pays_nothing_twice() {
        let memory = Memory::default();
        let campaign = rain(&memory, 1_000, 10).await;
        let won = claims(&memory, &campaign, 5).await;
        // A run read what was owed and credited three before it died.
        for record in memory.ledger.owed(3).await.unwrap() {
            memory.ledger.credit(&record, now()).await.unwrap();
        }
        let rerun = payout(memory.ports(), now(), taking(5)).await.unwrap();
        assert_eq!((rerun.credited, rerun.already_credited), (2, 0), "{rerun:?}");
        assert_paid_exactly(&memory, &campaign, &won).await;
    }

    #[tokio::test]
    async fn a_credit_whose_reply_was_lost_is_found_credited_when_tried_again() {
        let memory = Memory::default();
        let campaign = rain(&memory, 1_000, 10).await;
        let won = claims(&memory, &campaign, 2).await;
        memory.ledger.faults.inject(Op::Credit, 1, Fault::LoseReply);
        let report = payout(memory.ports(), now(), taking(5)).await.unwrap();
        assert_eq!((report.already_credited, report.credited), (1, 1), "{report:?}");
        assert_paid_exactly(&memory, &campaign, &won).await;
    }

    #[tokio::test]
    async fn credits_that_keep_failing_or_conflicting_stay_owed_for_the_next_run() {
        for fault in [Fault::Fail, Fault::TransactionConflict] {
            let memory = Memory::default();
            let campaign = rain(&memory, 1_000, 10).await;
            let won = claims(&memory, &campaign, 2).await;
            for nth in 1..=CREDIT_ATTEMPTS {
                memory.ledger.faults.inject(Op::Credit, nth, fault);
            }
            let report = payout(memory.ports(), now(), taking(5)).await.unwrap();
            assert_eq!((report.credited, report.deferred), (0, 2), "{fault:?}: {report:?}");
            assert_eq!(memory.ledger.owed_count().await.unwrap().records, 2);

            let rerun = payout(memory.ports(), now(), taking(5)).await.unwrap();
            assert_eq!(rerun.credited, 2, "{fault:?}: {rerun:?}");
            assert_paid_exactly(&memory, &campaign, &won).await;
        }
    }

    #[tokio::test]
    async fn a_run_out_of_time_starts_no_new_turn_and_the_next_run_goes_on() {
        let memory = Memory::default();
        let campaign = rain(&memory, 1_000, 10).await;
        let won = claims(&memory, &campaign, 4).await;
        let no_time = PayoutLimits {
            budget: std::time::Duration::ZERO,
            ..taking(2)
        };
        let report = payout(memory.ports(), now(), no_time).await.unwrap();
        assert!(report.out_of_time && report.credited == 0, "{report:?}");
        let next = payout(memory.ports(), now(), taking(2)).await.unwrap();
        assert_eq!(next.credited, 4, "{next:?}");
        assert_paid_exactly(&memory, &campaign, &won).await;
    }

    #[tokio::test]
    async fn payout_retires_a_campaign_once_it_ended_and_is_paid_out() {
        let memory = Memory::default();
        let campaign = rain(&memory, 100, 2).await;
        claims(&memory, &campaign, 1).await;
        let long_after = now() + Duration::hours(1);
        let report = payout(memory.ports(), long_after, taking(10)).await.unwrap();
        assert_eq!((report.credited, report.retired), (1, 1), "{report:?}");
        assert!(memory.gate.live_campaigns().await.unwrap().is_empty());
    }
}
