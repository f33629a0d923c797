//! Splitting a hot SKU's stock over shards (`split.lua`, then
//! `publish.lua` on each other shard, then `join.lua`), resumable: a split
//! whose caller died is finished by the next caller, which `split.lua`
//! hands the same shares.

use std::collections::BTreeMap;

use tracing::info;

use super::{lending, publish};
use crate::{
    gate::{
        scripts::{LiveOrder, Shard, SplitReply, StockScripts, Terms},
        shards,
    },
    ports::{PortError, PortResult, PublishOutcome},
};

/// Splits a SKU's stock over `wanted` shards, or finishes a split that an
/// earlier caller began; the SKU's shards after, or `None` if it is not
/// loaded.
pub(super) async fn split(scripts: &impl StockScripts, sku_id: &str, wanted: u32) -> PortResult<Option<u32>> {
    let shards = match scripts.split(sku_id, wanted).await? {
        SplitReply::NotPublished => return Ok(None),
        SplitReply::Sharded(shards) => shards,
        SplitReply::Split { shards, shares, orders } => {
            open_shards(scripts, sku_id, shards, &shares, &orders).await?;
            shards
        }
    };
    scripts.layouts().set(sku_id, shards);
    Ok(Some(shards))
}

/// The rest of a split: each other shard opened with its share and its
/// shoppers' orders, then the first drops what moved.
async fn open_shards(
    scripts: &impl StockScripts,
    sku_id: &str,
    shards: u32,
    shares: &[i64],
    orders: &[(String, String, i64)],
) -> PortResult<()> {
    let terms = terms_of_first(&scripts.meta(&Shard::first(sku_id)).await?)?;
    let mut moved = Vec::new();
    for (index, share) in (1..shards).zip(shares) {
        let theirs: Vec<LiveOrder> = orders
            .iter()
            .filter(|(username, ..)| shards::home(username, shards) == index)
            .map(|(username, order_id, deadline)| (username.as_str(), order_id.as_str(), *deadline))
            .collect();
        let shard = Shard::of(sku_id, index, shards);
        match publish::publish_on(scripts, &shard, &terms, Some((*share, &theirs)), shards).await? {
            PublishOutcome::Published { .. } | PublishOutcome::Republished { .. } => {}
            other => {
                return Err(PortError::Unavailable(format!(
                    "opening shard {index} of SKU {sku_id}: {other:?}"
                )));
            }
        }
        moved.extend(theirs.iter().map(|&(username, order_id, _)| (username, order_id)));
    }
    scripts.join(sku_id, shards, &moved).await?;
    info!(sku_id, shards, moved = moved.len(), "SKU split over shards");
    Ok(())
}

/// The terms kept on a SKU's first shard, to open the others with.
fn terms_of_first(meta: &BTreeMap<String, String>) -> PortResult<Terms> {
    let number = |name: &str| meta.get(name).and_then(|value| value.parse::<i64>().ok());
    let lost = || PortError::Unavailable("a SKU being split lost its terms".into());
    Ok(Terms {
        num: number("num").ok_or_else(lost)?,
        begin_ms: number("begin_ms").ok_or_else(lost)?,
        end_ms: number("end_ms").ok_or_else(lost)?,
        pay_timeout_ms: number("pay_timeout_ms").ok_or_else(lost)?,
        price: number("price").ok_or_else(lost)?,
        name: meta.get("name").cloned().ok_or_else(lost)?,
    })
}

/// Finishes a split a caller that died began (its shares are carved and
/// waiting on the first shard), so no other shard is taken for lost while
/// only unopened; the SKU's shards.
pub(super) async fn finish(scripts: &impl StockScripts, sku_id: &str) -> PortResult<u32> {
    let meta = scripts.meta(&Shard::first(sku_id)).await?;
    let shards = meta
        .get("shards")
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    if meta.contains_key("splitting") {
        split(scripts, sku_id, shards).await?;
    }
    scripts.layouts().set(sku_id, shards);
    Ok(shards)
}

/// Finishes what a caller that died left half done on a sharded SKU: a
/// split, and units lent but never delivered. The timeout sweep calls it
/// for every live SKU.
pub(super) async fn repair(scripts: &impl StockScripts, sku_id: &str, now_ms: i64) -> PortResult<()> {
    let shards = finish(scripts, sku_id).await?;
    if shards <= 1 {
        return Ok(());
    }
    lending::deliver_stranded(scripts, sku_id, shards, now_ms, lending::TRANSFER_GRACE_MS).await?;
    Ok(())
}
