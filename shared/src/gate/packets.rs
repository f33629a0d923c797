//! [`PacketPool`] on Redis: `load_packets.lua` and `claim.lua`, and the
//! claim-record lists the payout job drains.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use redis::Script;

use super::{RedisGate, RetiringKeys, field, split_reply, unexpected};
use crate::{
    model::{Campaign, Packet},
    ports::{ClaimOutcome, PacketPool, PortError, PortResult, Waiting, claimed_at},
    ts,
};

static LOAD: LazyLock<Script> = LazyLock::new(|| Script::new(lua::LOAD_PACKETS));
static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(lua::CLAIM));

const CAMPAIGN: &str = "rp";

/// The keys of one campaign (see the headers of the scripts in `lua/`).
struct CampaignKeys {
    meta: String,
    pool: String,
    claimed: String,
    records: String,
    processing: String,
}

impl RedisGate {
    fn campaign_keys(&self, campaign_id: &str) -> CampaignKeys {
        CampaignKeys {
            meta: self.key(CAMPAIGN, campaign_id, "meta"),
            pool: self.key(CAMPAIGN, campaign_id, "pool"),
            claimed: self.key(CAMPAIGN, campaign_id, "claimed"),
            records: self.key(CAMPAIGN, campaign_id, "records"),
            processing: self.key(CAMPAIGN, campaign_id, "processing"),
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
            .key(&keys.records)
            .arg(username)
            .arg(ts::millis(&now))
            .arg(campaign_id);
        let (status, values) = split_reply(self.run(&CLAIM, &claim, &keys.meta).await?)?;
        Ok(match status.as_str() {
            "CLAIMED" => ClaimOutcome::Claimed(packet(field(&values, 0)?)?),
            "ALREADY_CLAIMED" => ClaimOutcome::AlreadyClaimed(packet(field(&values, 0)?)?),
            "NOT_FOUND" => ClaimOutcome::NotFound,
            "NOT_STARTED" => ClaimOutcome::NotStarted,
            "ENDED" => ClaimOutcome::Ended,
            "EXHAUSTED" => ClaimOutcome::Exhausted,
            other => return Err(unexpected("claim", other)),
        })
    }

    async fn waiting(&self, campaign_id: &str) -> PortResult<Waiting> {
        let keys = self.campaign_keys(campaign_id);
        // Processing holds the records taken first; each list is in claim order.
        let (records, processing, oldest_taken, oldest_left): (u64, u64, Option<String>, Option<String>) =
            redis::pipe()
                .cmd("LLEN")
                .arg(&keys.records)
                .cmd("LLEN")
                .arg(&keys.processing)
                .cmd("LINDEX")
                .arg(&keys.processing)
                .arg(0)
                .cmd("LINDEX")
                .arg(&keys.records)
                .arg(0)
                .query_async(&mut self.connection())
                .await?;
        Ok(Waiting {
            records: records + processing,
            oldest_claimed_at: oldest_taken.or(oldest_left).as_deref().and_then(claimed_at),
        })
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

    async fn in_processing(&self, campaign_id: &str, limit: usize) -> PortResult<Vec<String>> {
        let last = isize::try_from(limit).unwrap_or(isize::MAX) - 1;
        Ok(redis::cmd("LRANGE")
            .arg(self.campaign_keys(campaign_id).processing)
            .arg(0)
            .arg(last)
            .query_async(&mut self.connection())
            .await?)
    }

    async fn take(&self, campaign_id: &str, limit: usize) -> PortResult<Vec<String>> {
        let keys = self.campaign_keys(campaign_id);
        let mut pipe = redis::pipe();
        for _ in 0..limit {
            pipe.cmd("LMOVE")
                .arg(&keys.records)
                .arg(&keys.processing)
                .arg("LEFT")
                .arg("RIGHT");
        }
        let moved: Vec<Option<String>> = pipe.query_async(&mut self.connection()).await?;
        Ok(moved.into_iter().flatten().collect())
    }

    async fn done(&self, campaign_id: &str, raw_records: &[String]) -> PortResult<()> {
        if raw_records.is_empty() {
            return Ok(());
        }
        let processing = self.campaign_keys(campaign_id).processing;
        let mut pipe = redis::pipe();
        for raw in raw_records {
            pipe.cmd("LREM").arg(&processing).arg(1).arg(raw).ignore();
        }
        pipe.exec_async(&mut self.connection()).await?;
        Ok(())
    }

    async fn retire_if_paid_out(&self, campaign_id: &str, now: DateTime<Utc>) -> PortResult<bool> {
        let keys = self.campaign_keys(campaign_id);
        let retiring = RetiringKeys {
            meta: &keys.meta,
            outstanding: &[&keys.records, &keys.processing],
            others: &[&keys.pool, &keys.claimed],
        };
        self.retire_keys(Some(CAMPAIGN), campaign_id, retiring, ts::millis(&now))
            .await
    }
}
