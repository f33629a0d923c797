//! [`PacketPool`] in memory, as `load_packets.lua`, `claim.lua` and
//! `amend_claim.lua` make it.

use chrono::{DateTime, Utc};

use super::{CampaignGate, MemoryGate, Op};
use crate::{
    model::{Campaign, Packet},
    ports::{Amend, CLAIM_SETTLE_MS, ClaimOutcome, PacketPool, PortError, PortResult, RETIRE_AFTER_END_MS},
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
                        last_pop_ms: 0,
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
                    return Ok(match now - gate.last_pop_ms < CLAIM_SETTLE_MS {
                        true => ClaimOutcome::Settling,
                        false => ClaimOutcome::Exhausted,
                    });
                };
                let claimed = packet(&json)?;
                gate.claimed.insert(username.to_owned(), json);
                gate.last_pop_ms = now;
                Ok(ClaimOutcome::Claimed(claimed))
            })
            .await
    }

    async fn amend_claim(
        &self,
        campaign_id: &str,
        username: &str,
        popped: &Packet,
        amend: Amend<'_>,
    ) -> PortResult<()> {
        self.faults
            .run(Op::AmendClaim, || {
                let json = |p: &Packet| serde_json::to_string(p).expect("a packet serialises");
                let mut state = self.state();
                let Some(gate) = state.campaigns.get_mut(campaign_id) else {
                    return Ok(());
                };
                if gate.claimed.get(username) != Some(&json(popped)) {
                    return Ok(());
                }
                let back = match amend {
                    Amend::Theirs { theirs, popped_taken } => {
                        gate.claimed.insert(username.to_owned(), json(theirs));
                        !popped_taken
                    }
                    Amend::Unrecorded | Amend::TakenByAnother => {
                        gate.claimed.remove(username);
                        amend == Amend::Unrecorded
                    }
                };
                if back {
                    gate.pool.push_front(json(popped));
                }
                Ok(())
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

    async fn retire_if_over(&self, campaign_id: &str, now: DateTime<Utc>) -> PortResult<bool> {
        self.faults
            .run(Op::RetireIfOver, || {
                let mut state = self.state();
                let done = state
                    .campaigns
                    .get(campaign_id)
                    .is_none_or(|gate| gate.end_ms + RETIRE_AFTER_END_MS <= ts::millis(&now));
                if done {
                    state.live_campaigns.remove(campaign_id);
                }
                Ok(done)
            })
            .await
    }
}
