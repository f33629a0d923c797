//! What operators watch during a sale: the live board of one flash sale or
//! one red-packet rain. It is read every second or two while the crowd is
//! on, so it costs what the gate already keeps — the stock or pool counts
//! and the last minute of the shared per-second hit buckets (see `hot`) —
//! and never a scan of the ledger: a SKU's orders by status
//! (`flash_sale::sale_stats`) read every order, so a board reads them
//! seldom.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;

use crate::{
    domain::{
        hot::Hit,
        red_packet::{self, CampaignStats},
    },
    error::Error,
    model::SaleState,
    ports::{CampaignStore, HotItems, PacketPool, Ports, SkuStore, StockGate},
};

/// Seconds of traffic a board shows.
const WINDOW: i64 = 60;

/// One second of a sale's traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Second {
    #[serde(with = "crate::ts")]
    pub at: DateTime<Utc>,
    /// Grabs (claims) that arrived.
    pub taps: u64,
    /// How many were answered with each code (`CREATED`, `SOLD_OUT`, …).
    pub answers: BTreeMap<String, u64>,
}

/// The last minute of a sale's traffic, oldest second first (the second
/// under way is left out: its counts are still coming in).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Traffic {
    pub seconds: Vec<Second>,
    /// Taps a second over the last 10 s.
    pub rate_10s: f64,
    /// Answers by code over the whole minute.
    pub answers_60s: BTreeMap<String, u64>,
}

/// The last minute of `hit`s on one item, from every instance's counts,
/// with the answers `codes` (every code a grab or claim can answer): only
/// this item's fields of each bucket are read, whatever else it holds.
pub async fn traffic(
    hot: &impl HotItems,
    hit: Hit,
    id: &str,
    codes: &[&str],
    now: DateTime<Utc>,
) -> Result<Traffic, Error> {
    let current = now.timestamp();
    let fields: Vec<String> = std::iter::once(hit.field(None, id))
        .chain(codes.iter().map(|code| hit.field(Some(code), id)))
        .collect();
    let buckets = hot.hits_of(current - WINDOW..current, &fields).await?;
    let mut answers_60s = BTreeMap::new();
    let mut seconds = Vec::with_capacity(buckets.len());
    for (second, counts) in (current - WINDOW..).zip(buckets) {
        let taps = counts.first().copied().unwrap_or_default();
        let answers: BTreeMap<String, u64> = codes
            .iter()
            .zip(counts.iter().skip(1))
            .filter(|(_, count)| **count > 0)
            .map(|(code, count)| ((*code).to_owned(), *count))
            .collect();
        for (code, count) in &answers {
            *answers_60s.entry(code.clone()).or_default() += count;
        }
        seconds.push(Second {
            at: Utc.timestamp_opt(second, 0).single().unwrap_or(now),
            taps,
            answers,
        });
    }
    let recent: u64 = seconds.iter().rev().take(10).map(|second| second.taps).sum();
    Ok(Traffic {
        rate_10s: recent as f64 / 10.0,
        seconds,
        answers_60s,
    })
}

/// `GET /admin/skus/{sku_id}/live`.
#[derive(Debug, Clone, Serialize)]
pub struct SaleBoard {
    pub sku_id: String,
    pub name: String,
    pub seckill_num: i64,
    /// Units left; `None` while the gate does not hold the sale (not
    /// published, or lost and not yet rebuilt).
    pub remaining: Option<i64>,
    /// Units held by live orders (unpaid or paid): `seckill_num - remaining`.
    pub sold: Option<i64>,
    pub state: SaleState,
    #[serde(flatten)]
    pub traffic: Traffic,
}

pub async fn sale(
    ports: Ports<'_, impl StockGate + HotItems, impl SkuStore, impl Sync>,
    sku_id: &str,
    codes: &[&str],
    now: DateTime<Utc>,
) -> Result<SaleBoard, Error> {
    let sku = ports.ledger.get_sku(sku_id).await?.ok_or(Error::NotFound("sku"))?;
    let (remaining, traffic) = tokio::try_join!(
        async { Ok::<_, Error>(ports.gate.remaining(sku_id).await?) },
        traffic(ports.gate, Hit::Grab, sku_id, codes, now),
    )?;
    Ok(SaleBoard {
        sold: remaining.map(|remaining| sku.fields.seckill_num.saturating_sub(remaining)),
        // Not in the gate: not published (or lost), so where its window stands.
        state: match remaining {
            Some(remaining) => SaleState::of(&sku.fields, remaining, now),
            None => SaleState::of_window(sku.fields.seckill_begin, sku.fields.seckill_end, now),
        },
        seckill_num: sku.fields.seckill_num,
        name: sku.fields.name,
        sku_id: sku.id,
        remaining,
        traffic,
    })
}

/// `GET /admin/red-packets/{campaign_id}/live`: the campaign's counts and
/// payout progress (`claimed`, `credited`, `credited_amount`) with its
/// traffic.
#[derive(Debug, Clone, Serialize)]
pub struct RainBoard {
    #[serde(flatten)]
    pub stats: CampaignStats,
    #[serde(flatten)]
    pub traffic: Traffic,
}

pub async fn rain(
    ports: Ports<'_, impl PacketPool + HotItems, impl CampaignStore, impl Sync>,
    campaign_id: &str,
    codes: &[&str],
    now: DateTime<Utc>,
) -> Result<RainBoard, Error> {
    let (stats, traffic) = tokio::try_join!(
        red_packet::stats(ports, campaign_id),
        traffic(ports.gate, Hit::Claim, campaign_id, codes, now),
    )?;
    Ok(RainBoard { stats, traffic })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{
            flash_sale::tests::{now, on_sale},
            hot::Hits,
        },
        memory::Memory,
    };

    const CODES: &[&str] = &["CREATED", "SOLD_OUT", "ALREADY_PURCHASED"];

    #[tokio::test]
    async fn a_board_shows_each_seconds_taps_and_answers_of_its_sale_only() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 100).await;
        let hits = Hits::default();
        for _ in 0..3 {
            hits.count(Hit::Grab, &sku);
        }
        hits.answered(Hit::Grab, &sku, "CREATED");
        hits.answered(Hit::Grab, &sku, "SOLD_OUT");
        hits.answered(Hit::Grab, &sku, "SOLD_OUT");
        hits.count(Hit::Grab, "another");
        hits.answered(Hit::Grab, "another", "SOLD_OUT");
        hits.count(Hit::View, &sku);
        let second = now().timestamp() - 2;
        memory.gate.add_hits(second, &hits.take()).await.unwrap();

        let board = sale(memory.ports(), &sku, CODES, now()).await.unwrap();
        assert_eq!(board.traffic.seconds.len(), 60);
        let busy = &board.traffic.seconds[58];
        assert_eq!(busy.at.timestamp(), second);
        assert_eq!(busy.taps, 3);
        let expected = BTreeMap::from([("CREATED".to_owned(), 1), ("SOLD_OUT".to_owned(), 2)]);
        assert_eq!(busy.answers, expected);
        assert_eq!(board.traffic.answers_60s, expected);
        assert_eq!(board.traffic.rate_10s, 0.3);
        assert_eq!((board.remaining, board.sold), (Some(100), Some(0)));
    }

    #[tokio::test]
    async fn a_sale_the_gate_does_not_hold_shows_no_stock_and_where_its_window_stands() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 100).await;
        memory.gate.lose_sku(&sku);
        let board = sale(memory.ports(), &sku, CODES, now()).await.unwrap();
        assert_eq!(
            (board.remaining, board.sold, board.state),
            (None, None, SaleState::Active)
        );
    }

    #[tokio::test]
    async fn a_board_of_an_unknown_sale_is_not_found() {
        let memory = Memory::default();
        let error = sale(memory.ports(), "nope", CODES, now()).await.unwrap_err();
        assert!(matches!(error, Error::NotFound("sku")));
    }
}
