//! Units lent between the shards of a split SKU (`lend.lua`,
//! `receive.lua`), so that it sells out completely however its crowd is
//! spread over the shards, and the delivery of transfers whose lender died
//! before finishing them.

use tracing::warn;

use crate::{
    gate::scripts::{LendReply, ReceiveReply, Shard, StockScripts},
    ids,
    ports::{PortError, PortResult},
};

/// A lent record older than this is taken for one whose lender died before
/// delivering it, and the timeout sweep delivers it. Far longer than a
/// request's own timeouts, so the two never race for long (and a delivery
/// counts once however many race).
const TRANSFER_GRACE_MS: i64 = 10_000;

/// Takes units from the other shards, in turn from the one after `home`,
/// until one lends some; whether any did.
pub(super) async fn borrow(
    scripts: &impl StockScripts,
    sku_id: &str,
    home: u32,
    shards: u32,
    now_ms: i64,
) -> PortResult<bool> {
    let to = Shard::of(sku_id, home, shards);
    for step in 1..shards {
        let from = Shard::of(sku_id, (home + step) % shards, shards);
        let transfer = ids::fresh();
        match scripts.lend(&from, &transfer, home, now_ms).await? {
            LendReply::Empty => continue,
            LendReply::Lent(units) => {
                deliver(scripts, &transfer, units, &to, &from).await?;
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Puts lent units on the borrowing shard (or back on the lender if the
/// borrower is gone), then drops the lender's record of them.
async fn deliver(scripts: &impl StockScripts, transfer: &str, units: i64, to: &Shard, from: &Shard) -> PortResult<()> {
    match scripts.receive(to, transfer, units).await? {
        ReceiveReply::Received | ReceiveReply::Duplicate => {}
        ReceiveReply::Missing => {
            if scripts.receive(from, transfer, units).await? == ReceiveReply::Missing {
                return Err(PortError::Unavailable("a lent unit has no shard to go to".into()));
            }
        }
    }
    scripts.forget_transfer(from, transfer).await
}

/// Moves every unit of the other shards onto the first, so a lower
/// `seckill_num` can be checked against what is sold there alone.
pub(super) async fn gather(scripts: &impl StockScripts, sku_id: &str, shards: u32, now_ms: i64) -> PortResult<()> {
    while borrow(scripts, sku_id, 0, shards, now_ms).await? {}
    Ok(())
}

/// Delivers the units of transfers older than the grace period: their
/// lender died between lending and delivering.
pub(super) async fn deliver_stranded(
    scripts: &impl StockScripts,
    sku_id: &str,
    shards: u32,
    now_ms: i64,
) -> PortResult<()> {
    let all = Shard::all(sku_id, shards);
    for from in &all {
        for (transfer, record) in scripts.lent(from).await? {
            let mut parts = record.split(':').map(str::parse::<i64>);
            let (Some(Ok(units)), Some(Ok(to)), Some(Ok(since))) = (parts.next(), parts.next(), parts.next()) else {
                return Err(PortError::Unavailable(format!("unreadable lent record `{record}`")));
            };
            if now_ms - since < TRANSFER_GRACE_MS {
                continue;
            }
            let to = usize::try_from(to)
                .ok()
                .and_then(|to| all.get(to))
                .ok_or_else(|| PortError::Unavailable(format!("lent record `{record}` names no shard")))?;
            warn!(sku_id, transfer, units, "delivering units a dead caller lent");
            deliver(scripts, &transfer, units, to, from).await?;
        }
    }
    Ok(())
}
