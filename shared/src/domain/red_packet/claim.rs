//! One shopper's tap on a rain: the gate pops a packet, the ledger records
//! it, and only then is the shopper told.

use chrono::{DateTime, Utc};

use crate::{
    error::Error,
    model::{ClaimRecord, Packet},
    ports::{Amend, CLAIM_SETTLE_MS, CampaignStore, ClaimOutcome, ClaimRecorded, PacketPool, Ports},
    ts,
};

/// How often a claim pops again when the ledger says the packet popped is
/// another's. A failover that forgot claims leaves their packets on the
/// pool, next to be popped; each pop that meets one drops it for good, so
/// the claims of the moment drain them together, and one claim gives up
/// (503, try again) only after this many (half a second or so in the
/// cloud, a ledger refusal each).
const CLAIM_ATTEMPTS: usize = 32;

/// How often a claim asks again while the gate says a popped packet may
/// yet come back (`Settling`), and for how long at most: past the gate's
/// settle window it vouches for `EXHAUSTED`, unless packets keep moving
/// (then 503, try again).
const SETTLE_POLL: std::time::Duration = std::time::Duration::from_millis(200);
const SETTLE_BUDGET: std::time::Duration = std::time::Duration::from_millis(CLAIM_SETTLE_MS as u64 + 500);

/// One shopper's claim: the gate pops a packet, the ledger records it, and
/// only then is the shopper told.
pub async fn claim(
    ports: Ports<'_, impl PacketPool, impl CampaignStore, impl Sync>,
    campaign_id: &str,
    username: &str,
    now: DateTime<Utc>,
) -> Result<Packet, Error> {
    let started = tokio::time::Instant::now();
    let mut attempts = 0;
    while attempts < CLAIM_ATTEMPTS {
        // The gate's clock is the caller's, moved on by any wait here.
        let asked_at = now + chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
        let (popped, fresh) = match ports.gate.claim(campaign_id, username, asked_at).await? {
            ClaimOutcome::Claimed(packet) => (packet, true),
            // The gate's word alone is not enough: the ledger's is.
            ClaimOutcome::AlreadyClaimed(packet) => match ports.ledger.claim_of(campaign_id, username).await? {
                Some(theirs) if theirs == packet => return Err(Error::AlreadyClaimed(theirs)),
                // None, or another packet: the gate popped this one for a
                // shopper whose claim the ledger already had, and never
                // heard back (a reply past its timeout, a claim that died).
                // Recording it finds theirs and puts the gate right: the
                // popped one back on the pool unless it is another's.
                _ => (packet, false),
            },
            ClaimOutcome::NotFound => return Err(not_raining(ports.ledger, campaign_id, now).await),
            ClaimOutcome::NotStarted => return Err(Error::NotStarted),
            ClaimOutcome::Ended => return Err(Error::Ended),
            // A shopper the cache forgot (a failover) whose packet another's
            // pop took off the pool has it all the same. Only an answer the
            // gate gave costs this read: the sold-out memo gives the rest.
            ClaimOutcome::Exhausted => {
                return Err(match ports.ledger.claim_of(campaign_id, username).await {
                    Ok(Some(theirs)) => Error::AlreadyClaimed(theirs),
                    Ok(None) | Err(_) => Error::Exhausted,
                });
            }
            ClaimOutcome::Settling if started.elapsed() < SETTLE_BUDGET => {
                tokio::time::sleep(SETTLE_POLL).await;
                continue;
            }
            ClaimOutcome::Settling => {
                return Err(Error::unavailable("packets are still coming back to the pool"));
            }
        };
        attempts += 1;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::red_packet::tests::*;

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

    /// ann's claim is the ledger's, and a failover forgot it; bob's tap
    /// popped ann's packet (the ledger's: dropped) and took the next. The
    /// pool is then the one packet nobody has.
    async fn forgotten_and_dropped(memory: &Memory, packets: u32) -> (Campaign, Packet, Packet) {
        let campaign = rain(memory, 100 * i64::from(packets), packets).await;
        let anns = claim(memory.ports(), &campaign.id, "ann", now()).await.unwrap();
        memory.gate.forget_claim(&campaign.id, "ann");
        let bobs = claim(memory.ports(), &campaign.id, "bob", now()).await.unwrap();
        assert_ne!(anns, bobs);
        (campaign, anns, bobs)
    }

    #[tokio::test]
    async fn a_packet_popped_for_a_shopper_the_ledger_has_is_not_lost_when_the_answer_was() {
        let memory = Memory::default();
        let (campaign, anns, bobs) = forgotten_and_dropped(&memory, 3).await;
        // ann taps: the gate pops the free packet for her, and the answer
        // is lost (a Redis reply past its timeout).
        memory.gate.faults.inject(Op::Claim, 1, Fault::LoseReply);
        let lost = claim(memory.ports(), &campaign.id, "ann", now()).await;
        assert!(matches!(lost, Err(Error::Unavailable(_))), "{lost:?}");
        // Her next tap: the gate says she has that packet, the ledger says
        // hers is the first. She is told of hers; the free one is free.
        let again = claim(memory.ports(), &campaign.id, "ann", now()).await;
        assert!(
            matches!(&again, Err(Error::AlreadyClaimed(p)) if *p == anns),
            "{again:?}"
        );
        let cat = claim(memory.ports(), &campaign.id, "cat", now()).await;
        assert!(cat.is_ok(), "a packet nobody has is left for cat: {cat:?}");
        payout(memory.ports(), now(), taking(10)).await.unwrap();
        let won = [("ann".into(), anns), ("bob".into(), bobs), ("cat".into(), cat.unwrap())];
        assert_paid_exactly(&memory, &campaign, &won).await;
    }

    #[tokio::test]
    async fn a_shopper_the_cache_forgot_is_told_of_their_packet_once_the_pool_is_empty() {
        let memory = Memory::default();
        let (campaign, anns, _) = forgotten_and_dropped(&memory, 3).await;
        claim(memory.ports(), &campaign.id, "cat", now()).await.unwrap();
        // Every packet is someone's; the cache does not know ann's.
        let again = claim(memory.ports(), &campaign.id, "ann", now()).await;
        assert!(
            matches!(&again, Err(Error::AlreadyClaimed(p)) if *p == anns),
            "{again:?}"
        );
        let late = claim(memory.ports(), &campaign.id, "dan", now()).await;
        assert!(matches!(late, Err(Error::Exhausted)), "{late:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_tap_while_a_forgotten_shoppers_pop_awaits_the_ledger_gets_that_packet_when_it_comes_back() {
        let memory = Memory::default();
        let (campaign, anns, _) = forgotten_and_dropped(&memory, 3).await;
        // ann taps again: the gate pops the last free packet for her, and
        // her claim is on its way to the ledger, which will refuse it.
        let ClaimOutcome::Claimed(free) = memory.gate.claim(&campaign.id, "ann", now()).await.unwrap() else {
            panic!("a packet is left");
        };
        let cat = claim(memory.ports(), &campaign.id, "cat", now());
        let ann_refused = async {
            tokio::task::yield_now().await;
            let theirs = Amend::Theirs {
                theirs: &anns,
                popped_taken: false,
            };
            memory
                .gate
                .amend_claim(&campaign.id, "ann", &free, theirs)
                .await
                .unwrap();
        };
        let (cat, ()) = tokio::join!(cat, ann_refused);
        assert_eq!(cat.unwrap(), free, "the packet came back, and cat got it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_tap_after_the_last_pop_has_settled_is_told_exhausted() {
        let memory = Memory::default();
        let campaign = rain(&memory, 100, 1).await;
        claim(memory.ports(), &campaign.id, "ann", now()).await.unwrap();
        let started = tokio::time::Instant::now();
        let late = claim(memory.ports(), &campaign.id, "bob", now()).await;
        assert!(matches!(late, Err(Error::Exhausted)), "{late:?}");
        assert!(
            started.elapsed().as_millis() >= u128::from(CLAIM_SETTLE_MS as u64),
            "it waited for the pool to settle"
        );
        let later = claim(
            memory.ports(),
            &campaign.id,
            "cat",
            now() + chrono::Duration::seconds(10),
        )
        .await;
        assert!(matches!(later, Err(Error::Exhausted)), "{later:?}");
    }
}
