//! [`CampaignStore`] in memory: a credit, its balance and the campaign's
//! counters change together or not at all, as in the DynamoDB transaction.

use chrono::{DateTime, Utc};

use super::{MemoryLedger, Op, page};
use crate::{
    model::{Campaign, ClaimRecord, Credit, Packet},
    ports::{CampaignStore, CreditOutcome, Page, PortError, PortResult},
};

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

    async fn credit(&self, record: &ClaimRecord, now: DateTime<Utc>) -> PortResult<CreditOutcome> {
        self.faults
            .run(Op::Credit, || {
                let mut state = self.state();
                if state.credits.contains_key(&record.red_packet_id) {
                    return Ok(CreditOutcome::AlreadyCredited);
                }
                let campaign = state
                    .campaigns
                    .get_mut(&record.campaign_id)
                    .ok_or_else(|| PortError::Unavailable("credit for a campaign the ledger lacks".into()))?;
                campaign.credited += 1;
                campaign.credited_amount += record.amount;
                *state.balances.entry(record.username.clone()).or_default() += record.amount;
                state.credits.insert(
                    record.red_packet_id.clone(),
                    Credit {
                        red_packet_id: record.red_packet_id.clone(),
                        campaign_id: record.campaign_id.clone(),
                        username: record.username.clone(),
                        amount: record.amount,
                        credited_at: now,
                    },
                );
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
                    .filter(|c| c.username == username)
                    .cloned()
                    .collect();
                credits.sort_by(|a, b| (b.credited_at, &b.red_packet_id).cmp(&(a.credited_at, &a.red_packet_id)));
                page(credits, limit, cursor)
            })
            .await
    }
}
