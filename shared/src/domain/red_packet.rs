//! Red-packet rain: campaigns split before the event, claimed atomically in
//! Redis, recorded in the ledger before the shopper hears of it, credited
//! to balances exactly once by the payout job.
//!
//! The money path: `claim.lua` pops a packet for the shopper (the crowd's
//! filter); the ledger then records, in one transaction, the packet's
//! credit as owed to the shopper and the shopper's claim of the campaign,
//! each only if it does not exist for another, and only then is the
//! shopper told. The payout job reads what is owed from the ledger and
//! credits it, each credit guarded by its still being owed. So no cache
//! failover or loss forgets a claim a shopper was told of, no packet goes
//! to two shoppers, no shopper gets two, and nothing is paid twice.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use rand::{Rng, RngExt, seq::SliceRandom};
use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, invalid},
    ids,
    model::{Campaign, ClaimRecord, Credit, Guard, Packet, SaleState},
    ports::{Amend, CampaignStore, ClaimOutcome, ClaimRecorded, CreditOutcome, PacketPool, Ports},
    ts, validate,
};

/// The most packets one campaign may have: the whole pool is loaded in one
/// atomic script, which must stay short enough not to stall Redis.
pub const MAX_PACKETS: u32 = 100_000;

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
    #[serde(default)]
    pub guard: Guard,
}

fn one_cent() -> i64 {
    1
}

fn validate(form: &NewCampaign) -> Result<(), Error> {
    validate::length("name", &form.name, 1..=100)?;
    validate::range("count", i64::from(form.count), 1..=i64::from(MAX_PACKETS))?;
    validate::range("total_amount", form.total_amount, 1..=validate::MAX_CENTS)?;
    validate::range("min_amount", form.min_amount, 1..=validate::MAX_CENTS)?;
    let least = validate::cents_times("min_amount", form.min_amount, form.count)?;
    if form.total_amount < least {
        return Err(invalid(format!(
            "`total_amount` {} cannot give {} packets at least {} each",
            form.total_amount, form.count, form.min_amount
        )));
    }
    validate::window(("begin", form.begin), ("end", form.end), validate::MAX_WINDOW_DAYS)?;
    validate::guard(&form.guard)
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
    ports: Ports<'_, impl PacketPool, impl CampaignStore, impl Sync>,
    form: NewCampaign,
    now: DateTime<Utc>,
) -> Result<Campaign, Error> {
    validate(&form)?;
    let campaign = Campaign {
        id: ids::fresh(),
        name: form.name.trim().to_owned(),
        total_amount: form.total_amount,
        count: form.count,
        min_amount: form.min_amount,
        begin: form.begin,
        end: form.end,
        create_time: now,
        guard: form.guard,
        credited: 0,
        credited_amount: 0,
    };
    let packets: Vec<Packet> = split(
        campaign.total_amount,
        campaign.count,
        campaign.min_amount,
        &mut ids::rng(),
    )
    .into_iter()
    .enumerate()
    .map(|(number, amount)| Packet::numbered(&campaign.id, number, amount))
    .collect();
    // The ledger first, the split before the campaign: a campaign that
    // exists only in Redis could be claimed but never audited, and one
    // without its split could not be rebuilt if Redis lost it.
    ports.ledger.insert_split(&campaign.id, &packets).await?;
    ports.ledger.insert_campaign(&campaign).await?;
    ports.gate.load(&campaign, &packets, &[]).await?;
    Ok(campaign)
}

/// Puts a campaign the gate lost back from the ledger: every packet not
/// yet claimed on the pool, and every claimed one out of it, recorded as
/// its shopper's. The ledger has every claim a shopper was told of, so
/// none is lost. `false` if the gate had the campaign after all.
pub async fn rebuild(
    ports: Ports<'_, impl PacketPool, impl CampaignStore, impl Sync>,
    campaign: &Campaign,
) -> Result<bool, Error> {
    let split = ports.ledger.split_of(&campaign.id).await?;
    if split.len() != campaign.count as usize {
        return Err(Error::unavailable(format!(
            "campaign {} has {} of its {} packets in the ledger",
            campaign.id,
            split.len(),
            campaign.count
        )));
    }
    let ids: Vec<String> = split.iter().map(|p| p.red_packet_id.clone()).collect();
    let claims = ports.ledger.credits_of_packets(&ids).await?;
    let taken: HashSet<&str> = claims.iter().map(|c| c.red_packet_id.as_str()).collect();
    let pool: Vec<Packet> = split
        .iter()
        .filter(|p| !taken.contains(p.red_packet_id.as_str()))
        .cloned()
        .collect();
    let claimed: Vec<(String, Packet)> = claims
        .into_iter()
        .map(|c| {
            (
                c.username,
                Packet {
                    red_packet_id: c.red_packet_id,
                    amount: c.amount,
                },
            )
        })
        .collect();
    let loaded = ports.gate.load(campaign, &pool, &claimed).await?;
    if loaded {
        tracing::warn!(
            campaign_id = %campaign.id,
            pool = pool.len(),
            claimed = claimed.len(),
            "rebuilt campaign in Redis from the ledger"
        );
    }
    Ok(loaded)
}

/// How often a claim pops again when the ledger says the packet popped is
/// another's. A failover that forgot claims leaves their packets on the
/// pool, next to be popped; each pop that meets one drops it for good, so
/// the claims of the moment drain them together, and one claim gives up
/// (503, try again) only after this many (half a second or so in the
/// cloud, a ledger refusal each).
const CLAIM_ATTEMPTS: usize = 32;

/// One shopper's claim: the gate pops a packet, the ledger records it, and
/// only then is the shopper told.
pub async fn claim(
    ports: Ports<'_, impl PacketPool, impl CampaignStore, impl Sync>,
    campaign_id: &str,
    username: &str,
    now: DateTime<Utc>,
) -> Result<Packet, Error> {
    for _ in 0..CLAIM_ATTEMPTS {
        let (popped, fresh) = match ports.gate.claim(campaign_id, username, now).await? {
            ClaimOutcome::Claimed(packet) => (packet, true),
            // The gate's word alone is not enough: the ledger's is.
            ClaimOutcome::AlreadyClaimed(packet) => match ports.ledger.claim_of(campaign_id, username).await? {
                Some(theirs) => return Err(Error::AlreadyClaimed(theirs)),
                None => (packet, false),
            },
            ClaimOutcome::NotFound => return Err(not_raining(ports.ledger, campaign_id, now).await),
            ClaimOutcome::NotStarted => return Err(Error::NotStarted),
            ClaimOutcome::Ended => return Err(Error::Ended),
            ClaimOutcome::Exhausted => return Err(Error::Exhausted),
        };
        let record = ClaimRecord {
            red_packet_id: popped.red_packet_id.clone(),
            amount: popped.amount,
            username: username.to_owned(),
            campaign_id: campaign_id.to_owned(),
            claimed_at: Some(ts::millis(&now)),
        };
        let amend = |amend| ports.gate.amend_claim(campaign_id, username, &popped, amend);
        match ports.ledger.record_claim(&record).await {
            Ok(ClaimRecorded::Recorded) if fresh => return Ok(popped),
            Ok(ClaimRecorded::Recorded | ClaimRecorded::RecordedBefore) => return Err(Error::AlreadyClaimed(popped)),
            Ok(ClaimRecorded::AlreadyHas { theirs, popped_taken }) => {
                let theirs_now = Amend::Theirs {
                    theirs: &theirs,
                    popped_taken,
                };
                amend_or_warn(amend(theirs_now).await, campaign_id);
                return Err(Error::AlreadyClaimed(theirs));
            }
            Ok(ClaimRecorded::PacketTaken) => amend_or_warn(amend(Amend::TakenByAnother).await, campaign_id),
            Err(error) => {
                // Perhaps written and only the answer lost: then the packet
                // handed out again is refused by the ledger, and the
                // shopper's next claim finds theirs there.
                amend_or_warn(amend(Amend::Unrecorded).await, campaign_id);
                return Err(error.into());
            }
        }
    }
    Err(Error::unavailable(
        "the gate kept handing out packets the ledger had given away",
    ))
}

/// A gate that cannot be put right now is put right by the next claim's
/// ledger check, or by a rebuild.
fn amend_or_warn(amended: Result<(), crate::ports::PortError>, campaign_id: &str) {
    if let Err(error) = amended {
        tracing::warn!(campaign_id, %error, "could not amend a claim in the gate");
    }
}

/// Redis does not know the campaign: it does not exist (404), it is over
/// and its keys expired (ENDED), or Redis lost it and the reconciliation
/// job rebuilds it from the ledger (503 until then).
async fn not_raining(campaigns: &impl CampaignStore, campaign_id: &str, now: DateTime<Utc>) -> Error {
    match campaigns.get_campaign(campaign_id).await {
        Ok(None) => Error::NotFound("campaign"),
        Ok(Some(campaign)) if campaign.end <= now => Error::Ended,
        Ok(Some(_)) => {
            tracing::error!(
                campaign_id,
                "campaign missing from Redis; the reconciliation job rebuilds it"
            );
            Error::unavailable("campaign missing from Redis")
        }
        Err(error) => error.into(),
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
    ports: Ports<'_, impl PacketPool, impl CampaignStore, impl Sync>,
    campaign_id: &str,
) -> Result<CampaignStats, Error> {
    let campaign = ports
        .ledger
        .get_campaign(campaign_id)
        .await?
        .ok_or(Error::NotFound("campaign"))?;
    let (remaining, claimed) = ports.gate.counts(campaign_id).await?;
    Ok(CampaignStats {
        campaign,
        remaining,
        claimed,
    })
}

/// A rain as listed for shoppers (`GET /red-packets`) and operators
/// (`GET /admin/red-packets`): enough to join it or open its board.
#[derive(Debug, Clone, Serialize)]
pub struct Rain {
    pub id: String,
    pub name: String,
    pub total_amount: i64,
    pub count: u32,
    #[serde(with = "ts")]
    pub begin: DateTime<Utc>,
    #[serde(with = "ts")]
    pub end: DateTime<Utc>,
    pub guard: Guard,
    /// Packets left in the pool.
    pub remaining: u64,
    /// `sold_out` once the pool is empty.
    pub state: SaleState,
}

/// How far ahead shoppers see a rain coming.
pub const RAINS_AHEAD: chrono::Duration = chrono::Duration::days(1);

/// The rains of `campaigns` with their pools' counts, the soonest first.
pub async fn rains(pool: &impl PacketPool, campaigns: Vec<Campaign>, now: DateTime<Utc>) -> Result<Vec<Rain>, Error> {
    let mut rains: Vec<Rain> = stream::iter(campaigns)
        .map(|campaign| async move {
            let (remaining, _) = pool.counts(&campaign.id).await?;
            let left = i64::try_from(remaining).unwrap_or(i64::MAX);
            let state = SaleState::of_stock(campaign.begin, campaign.end, left, now);
            Ok::<_, Error>(Rain {
                id: campaign.id,
                name: campaign.name,
                total_amount: campaign.total_amount,
                count: campaign.count,
                begin: campaign.begin,
                end: campaign.end,
                guard: campaign.guard,
                remaining,
                state,
            })
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    rains.sort_by(|a, b| a.begin.cmp(&b.begin).then_with(|| a.id.cmp(&b.id)));
    Ok(rains)
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
pub(crate) mod tests {
    use chrono::Duration;
    use proptest::prelude::*;
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;
    use crate::{
        memory::{Fault, Memory, Op},
        ports::{CampaignStore, PacketPool},
    };

    pub(crate) fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-11T20:00:00Z").unwrap().to_utc()
    }

    pub(crate) async fn rain(memory: &Memory, total_amount: i64, count: u32) -> Campaign {
        let form = NewCampaign {
            name: "Rain".into(),
            total_amount,
            count,
            begin: now() - Duration::seconds(1),
            end: now() + Duration::minutes(10),
            min_amount: 1,
            guard: Guard::default(),
        };
        create(memory.ports(), form, now()).await.unwrap()
    }

    /// `shoppers` claim one packet each; their packets.
    async fn claims(memory: &Memory, campaign: &Campaign, shoppers: usize) -> Vec<(String, Packet)> {
        let mut won = Vec::new();
        for i in 0..shoppers {
            let username = format!("shopper{i}");
            let packet = claim(memory.ports(), &campaign.id, &username, now()).await.unwrap();
            won.push((username, packet));
        }
        won
    }

    /// Every balance equals what its owner claimed, and the campaign's
    /// counters say so too.
    async fn assert_paid_exactly(memory: &Memory, campaign: &Campaign, won: &[(String, Packet)]) {
        for (username, packet) in won {
            assert_eq!(
                memory.ledger.balance(username).await.unwrap(),
                packet.amount,
                "{username}"
            );
        }
        let stored = memory.ledger.get_campaign(&campaign.id).await.unwrap().unwrap();
        let claimed: i64 = won.iter().map(|(_, p)| p.amount).sum();
        assert_eq!((stored.credited as usize, stored.credited_amount), (won.len(), claimed));
        assert_eq!(memory.ledger.owed_count().await.unwrap().records, 0, "nothing owed");
    }

    #[tokio::test]
    async fn a_claim_takes_one_packet_per_shopper_until_none_is_left() {
        let memory = Memory::default();
        let campaign = rain(&memory, 300, 3).await;
        let won = claims(&memory, &campaign, 3).await;
        let again = claim(memory.ports(), &campaign.id, "shopper0", now()).await;
        assert!(
            matches!(&again, Err(Error::AlreadyClaimed(p)) if *p == won[0].1),
            "{again:?}"
        );
        let late = claim(memory.ports(), &campaign.id, "latecomer", now()).await;
        assert!(matches!(late, Err(Error::Exhausted)), "{late:?}");
        assert_eq!(won.iter().map(|(_, p)| p.amount).sum::<i64>(), 300);
    }

    #[tokio::test]
    async fn a_claim_outside_the_window_or_of_no_campaign_is_refused() {
        let memory = Memory::default();
        let campaign = rain(&memory, 100, 1).await;
        let early = claim(memory.ports(), &campaign.id, "a", now() - Duration::minutes(1)).await;
        assert!(matches!(early, Err(Error::NotStarted)), "{early:?}");
        let late = claim(memory.ports(), &campaign.id, "a", now() + Duration::hours(1)).await;
        assert!(matches!(late, Err(Error::Ended)), "{late:?}");
        let none = claim(memory.ports(), "nope", "a", now()).await;
        assert!(matches!(none, Err(Error::NotFound(_))), "{none:?}");
    }

    #[tokio::test]
    async fn a_campaign_whose_split_would_overflow_is_refused() {
        let memory = Memory::default();
        let form = NewCampaign {
            name: "Overflow".into(),
            total_amount: validate::MAX_CENTS,
            count: MAX_PACKETS,
            begin: now(),
            end: now() + Duration::minutes(1),
            min_amount: i64::MAX / 2,
            guard: Guard::default(),
        };
        let refused = create(memory.ports(), form, now()).await;
        assert!(matches!(refused, Err(Error::Validation(_))), "{refused:?}");
    }

    fn taking(take: usize) -> PayoutLimits {
        PayoutLimits {
            take,
            ..PayoutLimits::default()
        }
    }

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
    async fn a_claim_is_told_only_once_the_ledger_has_it() {
        let memory = Memory::default();
        let campaign = rain(&memory, 100, 1).await;
        memory.ledger.faults.inject(Op::RecordClaim, 1, Fault::Fail);
        let refused = claim(memory.ports(), &campaign.id, "ann", now()).await;
        assert!(matches!(refused, Err(Error::Unavailable(_))), "{refused:?}");
        // The packet went back on the pool: the retry gets it.
        let packet = claim(memory.ports(), &campaign.id, "ann", now()).await.unwrap();
        assert_eq!(memory.ledger.claim_of(&campaign.id, "ann").await.unwrap(), Some(packet));
    }

    #[tokio::test]
    async fn a_claim_whose_ledger_reply_was_lost_is_found_there_and_never_doubled() {
        let memory = Memory::default();
        let campaign = rain(&memory, 300, 3).await;
        memory.ledger.faults.inject(Op::RecordClaim, 1, Fault::LoseReply);
        let lost = claim(memory.ports(), &campaign.id, "ann", now()).await;
        assert!(matches!(lost, Err(Error::Unavailable(_))), "{lost:?}");
        // The gate put the packet back; the ledger has it as ann's. Another
        // shopper popping it is refused by the ledger and pops the next.
        let bob = claim(memory.ports(), &campaign.id, "bob", now()).await.unwrap();
        let Err(Error::AlreadyClaimed(anns)) = claim(memory.ports(), &campaign.id, "ann", now()).await else {
            panic!("ann has the packet the ledger recorded");
        };
        assert_ne!(anns, bob);
        payout(memory.ports(), now(), taking(10)).await.unwrap();
        assert_paid_exactly(&memory, &campaign, &[("ann".into(), anns), ("bob".into(), bob)]).await;
    }

    #[tokio::test]
    async fn a_cache_that_forgot_a_claim_cannot_give_the_shopper_a_second_packet() {
        let memory = Memory::default();
        let campaign = rain(&memory, 300, 3).await;
        let first = claim(memory.ports(), &campaign.id, "ann", now()).await.unwrap();
        // A failover to a replica that missed the claim: the packet is back
        // on the pool and ann unknown to the cache.
        memory.gate.forget_claim(&campaign.id, "ann");
        let again = claim(memory.ports(), &campaign.id, "ann", now()).await;
        assert!(
            matches!(&again, Err(Error::AlreadyClaimed(p)) if *p == first),
            "{again:?}"
        );
        let (bob, cat) = (
            claim(memory.ports(), &campaign.id, "bob", now()).await.unwrap(),
            claim(memory.ports(), &campaign.id, "cat", now()).await.unwrap(),
        );
        let late = claim(memory.ports(), &campaign.id, "dan", now()).await;
        assert!(matches!(late, Err(Error::Exhausted)), "{late:?}");
        payout(memory.ports(), now(), taking(10)).await.unwrap();
        let won = [("ann".into(), first), ("bob".into(), bob), ("cat".into(), cat)];
        assert_paid_exactly(&memory, &campaign, &won).await;
    }

    #[tokio::test]
    async fn a_packet_the_ledger_gives_another_never_goes_back_on_the_pool() {
        let memory = Memory::default();
        let campaign = rain(&memory, 300, 3).await;
        let won = claims(&memory, &campaign, 2).await;
        // A failover forgets both claims: the pool is the second shopper's
        // packet, the first's, then the third.
        for (shopper, _) in &won {
            memory.gate.forget_claim(&campaign.id, shopper);
        }
        // The first shopper pops the second's packet: told of their own,
        // and the second's stays off the pool, as the ledger has it.
        let (first, anns) = &won[0];
        let again = claim(memory.ports(), &campaign.id, first, now()).await;
        assert!(
            matches!(&again, Err(Error::AlreadyClaimed(p)) if p == anns),
            "{again:?}"
        );
        let (pool, _) = memory.gate.counts(&campaign.id).await.unwrap();
        assert_eq!(pool, 2, "the first shopper's packet and the unclaimed one");
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

    #[tokio::test]
    async fn stats_count_what_is_left_and_what_was_claimed() {
        let memory = Memory::default();
        let campaign = rain(&memory, 500, 5).await;
        claims(&memory, &campaign, 2).await;
        let seen = stats(memory.ports(), &campaign.id).await.unwrap();
        assert_eq!((seen.remaining, seen.claimed), (3, 2));
        let missing = stats(memory.ports(), "nope").await;
        assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
    }

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

    #[tokio::test]
    async fn a_campaign_the_gate_lost_is_rebuilt_with_every_claim_the_ledger_has() {
        let memory = Memory::default();
        let campaign = rain(&memory, 300, 3).await;
        let first = claim(memory.ports(), &campaign.id, "ann", now()).await.unwrap();
        memory.gate.lose_campaign(&campaign.id);
        assert!(rebuild(memory.ports(), &campaign).await.unwrap());
        let again = claim(memory.ports(), &campaign.id, "ann", now()).await;
        assert!(
            matches!(&again, Err(Error::AlreadyClaimed(p)) if *p == first),
            "{again:?}"
        );
        let seen = stats(memory.ports(), &campaign.id).await.unwrap();
        assert_eq!((seen.remaining, seen.claimed), (2, 1));
    }
}
