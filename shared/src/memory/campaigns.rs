//! [`CampaignStore`] in memory: a claim's credit and the shopper's claim are
//! written together, and a credit, its balance and the campaign's counters
//! change together or not at all, as in the DynamoDB transactions.

use chrono::{DateTime, Utc};

use super::{LedgerState, MemoryLedger, Op, page};
use crate::{
    model::{Campaign, ClaimRecord, Claimant, Credit, Packet},
    ports::{CampaignStore, ClaimRecorded, CreditOutcome, Page, PortError, PortResult, Waiting},
    ts,
};

/// The owed claims, the oldest first.
fn owed_of(state: &LedgerState) -> Vec<ClaimRecord> {
    let mut owed: Vec<&Credit> = state
        .credits
        .values()
        .filter(|credit| credit.payout_shard.is_some())
        .collect();
    owed.sort_by(|a, b| (a.claimed_at, &a.red_packet_id).cmp(&(b.claimed_at, &b.red_packet_id)));
    owed.into_iter()
        .map(|credit| ClaimRecord {
            red_packet_id: credit.red_packet_id.clone(),
            amount: credit.amount,
            username: credit.username.clone(),
            campaign_id: credit.campaign_id.clone(),
            claimed_at: credit.claimed_at.map(|at| ts::millis(&at)),
        })
        .collect()
}

impl CampaignStore for MemoryLedger {
    async fn insert_campaign(&self, campaign: &Campaign) -> PortResult<()> {
        self.faults
            .run(Op::InsertCampaign, || {
                let mut state = self.state();
                if state.campaigns.contains_key(&campaign.id) {
                    return Err(PortError::ConditionFailed);
                }
                state.campaigns.insert(campaign.id.clone(), campaign.clone());
                Ok(())
            })
            .await
    }

    async fn get_campaign(&self, id: &str) -> PortResult<Option<Campaign>> {
        self.faults
            .run(Op::GetCampaign, || Ok(self.state().campaigns.get(id).cloned()))
            .await
    }

    async fn campaigns_ending_after(&self, cutoff: DateTime<Utc>) -> PortResult<Vec<Campaign>> {
        self.faults
            .run(Op::CampaignsEndingAfter, || {
                Ok(self
                    .state()
                    .campaigns
                    .values()
                    .filter(|c| c.end > cutoff)
                    .cloned()
                    .collect())
            })
            .await
    }

    async fn insert_split(&self, campaign_id: &str, packets: &[Packet]) -> PortResult<()> {
        self.faults
            .run(Op::InsertSplit, || {
                self.state().splits.insert(campaign_id.to_owned(), packets.to_vec());
                Ok(())
            })
            .await
    }

    async fn split_of(&self, campaign_id: &str) -> PortResult<Vec<Packet>> {
        self.faults
            .run(Op::SplitOf, || {
                Ok(self.state().splits.get(campaign_id).cloned().unwrap_or_default())
            })
            .await
    }

    async fn record_claim(&self, claim: &ClaimRecord) -> PortResult<ClaimRecorded> {
        self.faults
            .run(Op::RecordClaim, || {
                let mut state = self.state();
                let mine = (claim.username.clone(), claim.campaign_id.clone());
                if let Some(theirs) = state.claimants.get(&mine)
                    && theirs.red_packet_id != claim.red_packet_id
                {
                    let popped = state.credits.get(&claim.red_packet_id);
                    return Ok(ClaimRecorded::AlreadyHas {
                        theirs: Packet {
                            red_packet_id: theirs.red_packet_id.clone(),
                            amount: theirs.amount,
                        },
                        popped_taken: popped.is_some(),
                    });
                }
                match state.credits.get(&claim.red_packet_id) {
                    Some(holder) if holder.username != claim.username => return Ok(ClaimRecorded::PacketTaken),
                    Some(_) => return Ok(ClaimRecorded::RecordedBefore),
                    None => {}
                }
                state.credits.insert(
                    claim.red_packet_id.clone(),
                    Credit {
                        red_packet_id: claim.red_packet_id.clone(),
                        campaign_id: claim.campaign_id.clone(),
                        username: claim.username.clone(),
                        amount: claim.amount,
                        claimed_at: claim.claimed_at.map(ts::from_millis),
                        credited_at: None,
                        payout_shard: Some("00".into()),
                    },
                );
                state.claimants.insert(
                    mine,
                    Claimant {
                        username: claim.username.clone(),
                        campaign_id: claim.campaign_id.clone(),
                        red_packet_id: claim.red_packet_id.clone(),
                        amount: claim.amount,
                    },
                );
                Ok(ClaimRecorded::Recorded)
            })
            .await
    }

    async fn claim_of(&self, campaign_id: &str, username: &str) -> PortResult<Option<Packet>> {
        self.faults
            .run(Op::ClaimOf, || {
                let key = (username.to_owned(), campaign_id.to_owned());
                Ok(self.state().claimants.get(&key).map(|theirs| Packet {
                    red_packet_id: theirs.red_packet_id.clone(),
                    amount: theirs.amount,
                }))
            })
            .await
    }

    async fn credits_of_packets(&self, packet_ids: &[String]) -> PortResult<Vec<Credit>> {
        self.faults
            .run(Op::CreditsOfPackets, || {
                let state = self.state();
                Ok(packet_ids
                    .iter()
                    .filter_map(|id| state.credits.get(id).cloned())
                    .collect())
            })
            .await
    }

    async fn owed(&self, limit: usize) -> PortResult<Vec<ClaimRecord>> {
        self.faults
            .run(Op::Owed, || {
                let mut owed = owed_of(&self.state());
                owed.truncate(limit);
                Ok(owed)
            })
            .await
    }

    async fn owed_count(&self) -> PortResult<Waiting> {
        self.faults
            .run(Op::Owed, || {
                let owed = owed_of(&self.state());
                Ok(Waiting {
                    records: owed.len() as u64,
                    oldest_claimed_at: owed.first().and_then(|record| record.claimed_at),
                })
            })
            .await
    }

    async fn credit(&self, record: &ClaimRecord, now: DateTime<Utc>) -> PortResult<CreditOutcome> {
        self.faults
            .run(Op::Credit, || {
                let mut state = self.state();
                let owed = state
                    .credits
                    .get(&record.red_packet_id)
                    .is_some_and(|credit| credit.payout_shard.is_some() && credit.username == record.username);
                if !owed {
                    return Ok(CreditOutcome::AlreadyCredited);
                }
                let campaign = state
                    .campaigns
                    .get_mut(&record.campaign_id)
                    .ok_or_else(|| PortError::Unavailable("credit for a campaign the ledger lacks".into()))?;
                campaign.credited += 1;
                campaign.credited_amount += record.amount;
                *state.balances.entry(record.username.clone()).or_default() += record.amount;
                let credit = state.credits.get_mut(&record.red_packet_id).expect("owed above");
                credit.credited_at = Some(now);
                credit.payout_shard = None;
                Ok(CreditOutcome::Credited)
            })
            .await
    }

    async fn credit_batch(&self, records: &[ClaimRecord], now: DateTime<Utc>) -> PortResult<Vec<CreditOutcome>> {
        let mut outcomes = Vec::with_capacity(records.len());
        for record in records {
            outcomes.push(self.credit(record, now).await?);
        }
        Ok(outcomes)
    }

    async fn balance(&self, username: &str) -> PortResult<i64> {
        self.faults
            .run(Op::Balance, || {
                Ok(self.state().balances.get(username).copied().unwrap_or(0))
            })
            .await
    }

    async fn credits_of_user(&self, username: &str, limit: usize, cursor: Option<&str>) -> PortResult<Page<Credit>> {
        self.faults
            .run(Op::CreditsOfUser, || {
                let mut credits: Vec<Credit> = self
                    .state()
                    .credits
                    .values()
                    .filter(|c| c.username == username && c.credited_at.is_some())
                    .cloned()
                    .collect();
                credits.sort_by(|a, b| (b.credited_at, &b.red_packet_id).cmp(&(a.credited_at, &a.red_packet_id)));
                page(credits, limit, cursor)
            })
            .await
    }
}
