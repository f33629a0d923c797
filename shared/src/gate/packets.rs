//! [`PacketPool`] on Redis: `load_packets.lua`, `claim.lua` and
//! `amend_claim.lua`.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use redis::Script;

use super::{RedisGate, RetiringKeys, field, split_reply, unexpected};
use crate::{
    model::{Campaign, Packet},
    ports::{Amend, CLAIM_SETTLE_MS, ClaimOutcome, PacketPool, PortError, PortResult},
    ts,
};

static LOAD: LazyLock<Script> = LazyLock::new(|| Script::new(lua::LOAD_PACKETS));
static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(lua::CLAIM));
static AMEND_CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(lua::AMEND_CLAIM));

const CAMPAIGN: &str = "rp";

/// The keys of one campaign (see the headers of the scripts in `lua/`).
struct CampaignKeys {
    meta: String,
    pool: String,
    claimed: String,
}

impl RedisGate {
    fn campaign_keys(&self, campaign_id: &str) -> CampaignKeys {
        CampaignKeys {
            meta: self.key(CAMPAIGN, campaign_id, "meta"),
            pool: self.key(CAMPAIGN, campaign_id, "pool"),
            claimed: self.key(CAMPAIGN, campaign_id, "claimed"),
        }
    }
}

fn packet(json: String) -> PortResult<Packet> {
    serde_json::from_str(&json).map_err(|e| PortError::Unavailable(format!("unreadable packet `{json}`: {e}")))
}

impl PacketPool for RedisGate {
    async fn load(&self, campaign: &Campaign, packets: &[Packet], claimed: &[(String, Packet)]) -> PortResult<bool> {
        let keys = self.campaign_keys(&campaign.id);
        self.mark_live_in(CAMPAIGN, &campaign.id).await?;
        let json = |packet: &Packet| serde_json::to_string(packet).expect("a packet serialises");
        let mut invocation = LOAD.prepare_invoke();
        invocation
            .key(&keys.meta)
            .key(&keys.pool)
            .key(&keys.claimed)
            .arg(ts::millis(&campaign.begin))
            .arg(ts::millis(&campaign.end))
            .arg(claimed.len());
        for (username, packet) in claimed {
            invocation.arg(username).arg(json(packet));
        }
        for packet in packets {
            invocation.arg(json(packet));
        }
        let status: String = redis::from_redis_value(self.run(&LOAD, &invocation, &keys.meta).await?)?;
        let loaded = match status.as_str() {
            "LOADED" => true,
            "ALREADY_LOADED" => false,
            other => return Err(unexpected("load_packets", other)),
        };
        self.mark_live_in(CAMPAIGN, &campaign.id).await?;
        Ok(loaded)
    }

    async fn claim(&self, campaign_id: &str, username: &str, now: DateTime<Utc>) -> PortResult<ClaimOutcome> {
        let keys = self.campaign_keys(campaign_id);
        let mut claim = CLAIM.key(&keys.meta);
        claim
            .key(&keys.pool)
            .key(&keys.claimed)
            .arg(username)
            .arg(ts::millis(&now))
            .arg(CLAIM_SETTLE_MS);
        let (status, values) = split_reply(self.run(&CLAIM, &claim, &keys.meta).await?)?;
        Ok(match status.as_str() {
            "CLAIMED" => ClaimOutcome::Claimed(packet(field(&values, 0)?)?),
            "ALREADY_CLAIMED" => ClaimOutcome::AlreadyClaimed(packet(field(&values, 0)?)?),
            "NOT_FOUND" => ClaimOutcome::NotFound,
            "NOT_STARTED" => ClaimOutcome::NotStarted,
            "ENDED" => ClaimOutcome::Ended,
            "EXHAUSTED" => ClaimOutcome::Exhausted,
            "SETTLING" => ClaimOutcome::Settling,
            other => return Err(unexpected("claim", other)),
        })
    }

    async fn amend_claim(
        &self,
        campaign_id: &str,
        username: &str,
        popped: &Packet,
        amend: Amend<'_>,
    ) -> PortResult<()> {
        let keys = self.campaign_keys(campaign_id);
        let json = |packet: &Packet| serde_json::to_string(packet).expect("a packet serialises");
        let (back, theirs) = match amend {
            Amend::Unrecorded => ("BACK", String::new()),
            Amend::TakenByAnother => ("TAKEN", String::new()),
            Amend::Theirs { theirs, popped_taken } => (if popped_taken { "TAKEN" } else { "BACK" }, json(theirs)),
        };
        let mut invocation = AMEND_CLAIM.key(&keys.pool);
        invocation
            .key(&keys.claimed)
            .arg(username)
            .arg(json(popped))
            .arg(back)
            .arg(theirs);
        let status: String = redis::from_redis_value(self.run(&AMEND_CLAIM, &invocation, &keys.pool).await?)?;
        match status.as_str() {
            "AMENDED" | "STALE" => Ok(()),
            other => Err(unexpected("amend_claim", other)),
        }
    }

    async fn counts(&self, campaign_id: &str) -> PortResult<(u64, u64)> {
        let keys = self.campaign_keys(campaign_id);
        Ok(redis::pipe()
            .cmd("LLEN")
            .arg(&keys.pool)
            .cmd("HLEN")
            .arg(&keys.claimed)
            .query_async(&mut self.connection())
            .await?)
    }

    async fn live_campaigns(&self) -> PortResult<Vec<String>> {
        Ok(redis::cmd("SMEMBERS")
            .arg(self.live_key(CAMPAIGN))
            .query_async(&mut self.connection())
            .await?)
    }

    async fn retire_if_over(&self, campaign_id: &str, now: DateTime<Utc>) -> PortResult<bool> {
        let keys = self.campaign_keys(campaign_id);
        let retiring = RetiringKeys {
            meta: &keys.meta,
            outstanding: &[],
            others: &[&keys.pool, &keys.claimed],
        };
        self.retire_keys(Some(CAMPAIGN), campaign_id, retiring, ts::millis(&now))
            .await
    }
}
