//! Red-packet rain: campaigns split before the event, claimed atomically in
//! Redis, credited to balances exactly once by the payout job.
//!
//! The money path: `claim.lua` pops a packet and pushes a claim record; the
//! payout job moves records to a processing list, credits each in one
//! DynamoDB transaction guarded by the packet id (a packet is credited
//! once, ever), and only then drops it from processing. A crash anywhere
//! leaves the record in one of the two lists, and crediting it again is a
//! no-op, so nothing is lost and nothing is paid twice.

use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use rand::{Rng, RngExt, seq::SliceRandom};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::{Error, error::invalid, store::Page, ts};

/// The most packets one campaign may have: the whole pool is loaded in one
/// atomic script, which must stay short enough not to stall Redis.
pub const MAX_PACKETS: u32 = 100_000;
pub const MAX_TOTAL_CENTS: i64 = 10_000_000_000;

/// `POST /admin/red-packets`.
#[derive(Debug, Clone, Deserialize)]
pub struct NewCampaign {
    pub name: String,
    pub total_amount: i64,
    pub count: u32,
    #[serde(with = "ts")]
    pub begin: DateTime<Utc>,
    #[serde(with = "ts")]
    pub end: DateTime<Utc>,
    #[serde(default = "one_cent")]
    pub min_amount: i64,
}

fn one_cent() -> i64 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    pub total_amount: i64,
    pub count: u32,
    pub min_amount: i64,
    #[serde(with = "ts")]
    pub begin: DateTime<Utc>,
    #[serde(with = "ts")]
    pub end: DateTime<Utc>,
    #[serde(with = "ts")]
    pub create_time: DateTime<Utc>,
    /// Packets credited so far and their sum, kept by the payout job in
    /// the same transaction as each credit.
    #[serde(default)]
    pub credited: u32,
    #[serde(default)]
    pub credited_amount: i64,
}

/// One packet of the pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packet {
    pub red_packet_id: String,
    pub amount: i64,
}

/// A claimed packet awaiting payout, as `claim.lua` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRecord {
    pub red_packet_id: String,
    pub amount: i64,
    pub username: String,
    pub campaign_id: String,
}

/// A packet credited to a balance (the `credits` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credit {
    pub red_packet_id: String,
    pub campaign_id: String,
    pub username: String,
    pub amount: i64,
    #[serde(with = "ts")]
    pub credited_at: DateTime<Utc>,
}

/// The outcome of `claim.lua`, one variant per return code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    Claimed(Packet),
    AlreadyClaimed(Packet),
    NotFound,
    NotStarted,
    Ended,
    Exhausted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditOutcome {
    Credited,
    AlreadyCredited,
}

/// The Redis side of a campaign: its pool, who claimed, and the claim
/// records on their way to payout.
pub trait PacketPool: Sync {
    /// Loads the packets and opens the campaign; `false` if it was loaded
    /// already (nothing changes then).
    fn load(&self, campaign: &Campaign, packets: &[Packet]) -> impl Future<Output = Result<bool, Error>> + Send;
    fn claim(
        &self,
        campaign_id: &str,
        username: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<ClaimOutcome, Error>> + Send;
    /// (unclaimed packets, claimed packets).
    fn counts(&self, campaign_id: &str) -> impl Future<Output = Result<(u64, u64), Error>> + Send;
    /// Campaigns whose claim records may still need paying out.
    fn live_campaigns(&self) -> impl Future<Output = Result<Vec<String>, Error>> + Send;
    /// Records left in processing by an earlier, interrupted run.
    fn in_processing(&self, campaign_id: &str, limit: usize)
    -> impl Future<Output = Result<Vec<String>, Error>> + Send;
    /// Moves up to `limit` records from the claim list to processing.
    fn take(&self, campaign_id: &str, limit: usize) -> impl Future<Output = Result<Vec<String>, Error>> + Send;
    /// Drops a paid-out record from processing.
    fn done(&self, campaign_id: &str, raw_record: &str) -> impl Future<Output = Result<(), Error>> + Send;
    /// Drops an ended campaign with nothing left to pay out; whether it did.
    fn retire_if_paid_out(
        &self,
        campaign_id: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
}

/// The DynamoDB side: campaigns, credits and balances.
pub trait CampaignStore: Sync {
    fn insert_campaign(&self, campaign: &Campaign) -> impl Future<Output = Result<(), Error>> + Send;
    fn get_campaign(&self, id: &str) -> impl Future<Output = Result<Option<Campaign>, Error>> + Send;
    /// In one transaction: the credit (only if this packet was never
    /// credited), the balance, and the campaign's counters.
    fn credit(
        &self,
        record: &ClaimRecord,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<CreditOutcome, Error>> + Send;
    fn balance(&self, username: &str) -> impl Future<Output = Result<i64, Error>> + Send;
    fn credits_of_user(
        &self,
        username: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> impl Future<Output = Result<Page<Credit>, Error>> + Send;
}

fn validate(form: &NewCampaign) -> Result<(), Error> {
    let name_len = form.name.trim().chars().count();
    if !(1..=100).contains(&name_len) {
        return Err(invalid("`name` must be 1-100 characters"));
    }
    if !(1..=MAX_PACKETS).contains(&form.count) {
        return Err(invalid(format!("`count` must be between 1 and {MAX_PACKETS}")));
    }
    if !(1..=MAX_TOTAL_CENTS).contains(&form.total_amount) {
        return Err(invalid(format!(
            "`total_amount` must be between 1 and {MAX_TOTAL_CENTS} cents"
        )));
    }
    if form.min_amount < 1 {
        return Err(invalid("`min_amount` must be at least 1 cent"));
    }
    if form.total_amount < form.min_amount * i64::from(form.count) {
        return Err(invalid(format!(
            "`total_amount` {} cannot give {} packets at least {} each",
            form.total_amount, form.count, form.min_amount
        )));
    }
    if form.end <= form.begin {
        return Err(invalid("`end` must be after `begin`"));
    }
    if form.end - form.begin > Duration::days(366) {
        return Err(invalid("a campaign may last at most 366 days"));
    }
    Ok(())
}

/// Splits `total` into `count` amounts, each at least `min`, summing to
/// `total` exactly, by the double-mean method (二倍均值法): every packet but
/// the last takes `min` plus a uniform draw from `[0, 2 × mean of what is
/// left to share]`, so each packet's expected amount is `total / count`;
/// the last takes the rest. The result is shuffled so the position in the
/// pool (arrival order) says nothing about the amount.
pub fn split(total: i64, count: u32, min: i64, rng: &mut impl Rng) -> Vec<i64> {
    let mut extra = total - min * i64::from(count);
    let mut amounts = Vec::with_capacity(count as usize);
    for left in (1..=i64::from(count)).rev() {
        let share = if left == 1 {
            extra
        } else {
            rng.random_range(0..=(2 * extra / left).min(extra))
        };
        extra -= share;
        amounts.push(min + share);
    }
    amounts.shuffle(rng);
    amounts
}

/// Creates a campaign: stored in DynamoDB, then split and loaded into Redis.
pub async fn create(
    pool: &impl PacketPool,
    store: &impl CampaignStore,
    form: NewCampaign,
    now: DateTime<Utc>,
) -> Result<Campaign, Error> {
    validate(&form)?;
    let campaign = Campaign {
        id: Ulid::generate().to_string(),
        name: form.name.trim().to_owned(),
        total_amount: form.total_amount,
        count: form.count,
        min_amount: form.min_amount,
        begin: form.begin,
        end: form.end,
        create_time: now,
        credited: 0,
        credited_amount: 0,
    };
    let packets: Vec<Packet> = split(
        campaign.total_amount,
        campaign.count,
        campaign.min_amount,
        &mut rand::rng(),
    )
    .into_iter()
    .enumerate()
    .map(|(i, amount)| Packet {
        red_packet_id: format!("{}-{i:06}", campaign.id),
        amount,
    })
    .collect();
    // The ledger first: a campaign that exists only in Redis could be
    // claimed but never shown or audited.
    store.insert_campaign(&campaign).await?;
    pool.load(&campaign, &packets).await?;
    Ok(campaign)
}

/// One shopper's claim.
pub async fn claim(
    pool: &impl PacketPool,
    campaign_id: &str,
    username: &str,
    now: DateTime<Utc>,
) -> Result<Packet, Error> {
    match pool.claim(campaign_id, username, now).await? {
        ClaimOutcome::Claimed(packet) => Ok(packet),
        ClaimOutcome::AlreadyClaimed(packet) => Err(Error::AlreadyClaimed(packet)),
        ClaimOutcome::NotFound => Err(Error::NotFound("campaign")),
        ClaimOutcome::NotStarted => Err(Error::NotStarted),
        ClaimOutcome::Ended => Err(Error::Ended),
        ClaimOutcome::Exhausted => Err(Error::Exhausted),
    }
}

/// `GET /admin/red-packets/{id}`.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignStats {
    #[serde(flatten)]
    pub campaign: Campaign,
    pub remaining: u64,
    pub claimed: u64,
}

pub async fn stats(
    pool: &impl PacketPool,
    store: &impl CampaignStore,
    campaign_id: &str,
) -> Result<CampaignStats, Error> {
    let campaign = store
        .get_campaign(campaign_id)
        .await?
        .ok_or(Error::NotFound("campaign"))?;
    let (remaining, claimed) = pool.counts(campaign_id).await?;
    Ok(CampaignStats {
        campaign,
        remaining,
        claimed,
    })
}

/// `GET /me/balance`: the balance and the credits that made it.
#[derive(Debug, Clone, Serialize)]
pub struct Balance {
    pub balance: i64,
    pub credits: Vec<Credit>,
    pub next_cursor: Option<String>,
}

pub async fn balance(
    store: &impl CampaignStore,
    username: &str,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Balance, Error> {
    let page = store.credits_of_user(username, limit, cursor).await?;
    Ok(Balance {
        balance: store.balance(username).await?,
        credits: page.items,
        next_cursor: page.next_cursor,
    })
}

/// What one payout run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PayoutReport {
    /// Records newly credited.
    pub credited: u32,
    /// Records found credited already (a run interrupted after the credit).
    pub already_credited: u32,
    /// Records that could not be read; left in processing for an operator.
    pub malformed: u32,
    pub retired: u32,
}

/// The payout job: for every live campaign, finish what an interrupted run
/// left in processing, then move and credit new records in batches.
pub async fn payout(
    pool: &impl PacketPool,
    store: &impl CampaignStore,
    now: DateTime<Utc>,
    batch: usize,
) -> Result<PayoutReport, Error> {
    let mut report = PayoutReport::default();
    for campaign_id in pool.live_campaigns().await? {
        let leftovers = pool.in_processing(&campaign_id, batch).await?;
        pay_out(pool, store, &campaign_id, &leftovers, now, &mut report).await?;
        loop {
            let taken = pool.take(&campaign_id, batch).await?;
            if taken.is_empty() {
                break;
            }
            pay_out(pool, store, &campaign_id, &taken, now, &mut report).await?;
        }
        if pool.retire_if_paid_out(&campaign_id, now).await? {
            report.retired += 1;
        }
    }
    Ok(report)
}

async fn pay_out(
    pool: &impl PacketPool,
    store: &impl CampaignStore,
    campaign_id: &str,
    raw_records: &[String],
    now: DateTime<Utc>,
    report: &mut PayoutReport,
) -> Result<(), Error> {
    for raw in raw_records {
        let Ok(record) = serde_json::from_str::<ClaimRecord>(raw) else {
            tracing::error!(campaign_id, raw, "unreadable claim record left in processing");
            report.malformed += 1;
            continue;
        };
        match store.credit(&record, now).await? {
            CreditOutcome::Credited => report.credited += 1,
            CreditOutcome::AlreadyCredited => report.already_credited += 1,
        }
        pool.done(campaign_id, raw).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    proptest! {
        #[test]
        fn split_is_exact(total in 1i64..5_000_000, count in 1u32..2_000, min in 1i64..100, seed: u64) {
            prop_assume!(total >= min * i64::from(count));
            let amounts = split(total, count, min, &mut StdRng::seed_from_u64(seed));
            prop_assert_eq!(amounts.len(), count as usize);
            prop_assert_eq!(amounts.iter().sum::<i64>(), total);
            prop_assert!(amounts.iter().all(|&a| a >= min));
        }
    }

    #[test]
    fn split_is_fair() {
        // 10,000 splits of ¥100 into 10 packets: every position averages
        // total / count, and the largest packet is not always in one place.
        let mut rng = StdRng::seed_from_u64(7);
        let (total, count, runs) = (10_000i64, 10usize, 10_000);
        let mut sums = vec![0i64; count];
        let mut max_at = vec![0u32; count];
        for _ in 0..runs {
            let amounts = split(total, count as u32, 1, &mut rng);
            for (sum, amount) in sums.iter_mut().zip(&amounts) {
                *sum += amount;
            }
            let top = amounts.iter().enumerate().max_by_key(|(_, a)| **a).unwrap().0;
            max_at[top] += 1;
        }
        let mean = total as f64 / count as f64;
        for sum in sums {
            let position_mean = sum as f64 / runs as f64;
            assert!(
                (position_mean - mean).abs() < mean * 0.05,
                "position mean {position_mean} vs {mean}"
            );
        }
        let share = runs as f64 / count as f64;
        assert!(
            max_at
                .iter()
                .all(|&n| (n as f64) > share * 0.7 && (n as f64) < share * 1.3),
            "{max_at:?}"
        );
    }

    #[test]
    fn split_handles_the_tight_and_the_single_case() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(split(500, 5, 100, &mut rng), vec![100; 5]);
        assert_eq!(split(42, 1, 1, &mut rng), vec![42]);
    }
}
