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
//!
//! * here — a rain: its split, its creation and rebuild, what is left and
//!   what shoppers see of it;
//! * `claim` — one shopper's tap;
//! * `payout` — the job crediting what is owed.

mod claim;
mod payout;

pub use claim::claim;
pub use payout::{PayoutBacklog, PayoutLimits, PayoutReport, backlog, payout};

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use rand::{Rng, RngExt, seq::SliceRandom};
use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, invalid},
    ids,
    model::{Campaign, Credit, Guard, Packet, SaleState},
    ports::{CampaignStore, PacketPool, Ports},
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

#[cfg(test)]
pub(crate) mod tests {
    pub(crate) use chrono::Duration;
    use proptest::prelude::*;
    use rand::{SeedableRng, rngs::StdRng};

    pub(crate) use super::*;
    pub(crate) use crate::{
        memory::{Fault, Memory, Op},
        ports::CampaignStore,
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
    pub(crate) async fn claims(memory: &Memory, campaign: &Campaign, shoppers: usize) -> Vec<(String, Packet)> {
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
    pub(crate) async fn assert_paid_exactly(memory: &Memory, campaign: &Campaign, won: &[(String, Packet)]) {
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

    pub(crate) fn taking(take: usize) -> PayoutLimits {
        PayoutLimits {
            take,
            ..PayoutLimits::default()
        }
    }
}
