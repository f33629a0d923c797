//! [`PacketPool`] in memory, as `load_packets.lua` and `claim.lua` and the
//! payout job's list moves make it.

use chrono::{DateTime, Utc};

use super::{CampaignGate, MemoryGate, Op};
use crate::{
    model::{Campaign, ClaimRecord, Packet},
    ports::{ClaimOutcome, PacketPool, PortError, PortResult, RETIRE_AFTER_END_MS, Waiting, claimed_at},
    ts,
};

fn packet(json: &str) -> PortResult<Packet> {
    serde_json::from_str(json).map_err(|e| PortError::Unavailable(format!("unreadable packet: {e}")))
}

impl PacketPool for MemoryGate {
    async fn load(&self, campaign: &Campaign, packets: &[Packet], claimed: &[(String, Packet)]) -> PortResult<bool> {
        self.faults
            .run(Op::Load, || {
                let mut state = self.state();
                state.live_campaigns.insert(campaign.id.clone());
                if state.campaigns.contains_key(&campaign.id) {
                    return Ok(false);
                }
                let json = |p: &Packet| serde_json::to_string(p).expect("a packet serialises");
                let pool = packets.iter().map(json).collect();
                let claimed = claimed.iter().map(|(user, p)| (user.clone(), json(p))).collect();
                state.campaigns.insert(
                    campaign.id.clone(),
                    CampaignGate {
                        begin_ms: ts::millis(&campaign.begin),
                        end_ms: ts::millis(&campaign.end),
                        pool,
                        claimed,
                        ..CampaignGate::default()
                    },
                );
                Ok(true)
            })
            .await
    }

    async fn claim(&self, campaign_id: &str, username: &str, now: DateTime<Utc>) -> PortResult<ClaimOutcome> {
        self.faults
            .run(Op::Claim, || {
                let mut state = self.state();
                let Some(gate) = state.campaigns.get_mut(campaign_id) else {
                    return Ok(ClaimOutcome::NotFound);
                };
                let now = ts::millis(&now);
                if now < gate.begin_ms {
                    return Ok(ClaimOutcome::NotStarted);
                }
                if now >= gate.end_ms {
                    return Ok(ClaimOutcome::Ended);
                }
                if let Some(mine) = gate.claimed.get(username) {
                    return Ok(ClaimOutcome::AlreadyClaimed(packet(mine)?));
                }
                let Some(json) = gate.pool.pop_front() else {
                    return Ok(ClaimOutcome::Exhausted);
                };
                let claimed = packet(&json)?;
                gate.claimed.insert(username.to_owned(), json);
                let record = ClaimRecord {
                    red_packet_id: claimed.red_packet_id.clone(),
                    amount: claimed.amount,
                    username: username.to_owned(),
                    campaign_id: campaign_id.to_owned(),
                    claimed_at: Some(now),
                };
                gate.records
                    .push_back(serde_json::to_string(&record).expect("a record serialises"));
                Ok(ClaimOutcome::Claimed(claimed))
            })
            .await
    }

    async fn waiting(&self, campaign_id: &str) -> PortResult<Waiting> {
        self.faults
            .run(Op::Waiting, || {
                let state = self.state();
                let Some(gate) = state.campaigns.get(campaign_id) else {
                    return Ok(Waiting::default());
                };
                let oldest = gate.processing.first().or(gate.records.front());
                Ok(Waiting {
                    records: u64::try_from(gate.records.len() + gate.processing.len()).unwrap_or(u64::MAX),
                    oldest_claimed_at: oldest.and_then(|record| claimed_at(record)),
                })
            })
            .await
    }

    async fn counts(&self, campaign_id: &str) -> PortResult<(u64, u64)> {
        self.faults
            .run(Op::Counts, || {
                Ok(self
                    .state()
                    .campaigns
                    .get(campaign_id)
                    .map_or((0, 0), |gate| (gate.pool.len() as u64, gate.claimed.len() as u64)))
            })
            .await
    }

    async fn live_campaigns(&self) -> PortResult<Vec<String>> {
        self.faults
            .run(Op::LiveCampaigns, || {
                Ok(self.state().live_campaigns.iter().cloned().collect())
            })
            .await
    }

    async fn in_processing(&self, campaign_id: &str, limit: usize) -> PortResult<Vec<String>> {
        self.faults
            .run(Op::InProcessing, || {
                Ok(self
                    .state()
                    .campaigns
                    .get(campaign_id)
                    .map(|gate| gate.processing.iter().take(limit).cloned().collect())
                    .unwrap_or_default())
            })
            .await
    }

    async fn take(&self, campaign_id: &str, limit: usize) -> PortResult<Vec<String>> {
        self.faults
            .run(Op::Take, || {
                let mut state = self.state();
                let Some(gate) = state.campaigns.get_mut(campaign_id) else {
                    return Ok(Vec::new());
                };
                let count = limit.min(gate.records.len());
                let moved: Vec<String> = gate.records.drain(..count).collect();
                gate.processing.extend(moved.iter().cloned());
                Ok(moved)
            })
            .await
    }

    async fn done(&self, campaign_id: &str, raw_records: &[String]) -> PortResult<()> {
        self.faults
            .run(Op::Done, || {
                if let Some(gate) = self.state().campaigns.get_mut(campaign_id) {
                    for raw in raw_records {
                        if let Some(at) = gate.processing.iter().position(|r| r == raw) {
                            gate.processing.remove(at);
                        }
                    }
                }
                Ok(())
            })
            .await
    }

    async fn retire_if_paid_out(&self, campaign_id: &str, now: DateTime<Utc>) -> PortResult<bool> {
        self.faults
            .run(Op::RetireIfPaidOut, || {
                let mut state = self.state();
                let done = state.campaigns.get(campaign_id).is_some_and(|gate| {
                    gate.end_ms + RETIRE_AFTER_END_MS <= ts::millis(&now)
                        && gate.records.is_empty()
                        && gate.processing.is_empty()
                });
                if done {
                    state.live_campaigns.remove(campaign_id);
                }
                Ok(done)
            })
            .await
    }
}
