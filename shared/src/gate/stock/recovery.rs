//! What the scheduled jobs read and repair, shard by shard: the holds past
//! their deadline, the ledger's live orders the gate does not know (after a
//! failover), putting those back (`restore.lua`), and letting a settled
//! sale's keys expire (`retire.lua`).

use chrono::{DateTime, Utc};

use super::{homed_at, layout_now, lending, splitting, unpaid_deadline};
use crate::{
    gate::{
        scripts::{RestoreReply, Shard, StockScripts},
        shards,
    },
    model::Order,
    ports::{Hold, PortError, PortResult, Restored},
    ts,
};

/// Up to `limit` holds due by `due_ms`, shard by shard.
pub(super) async fn overdue(
    scripts: &impl StockScripts,
    sku_id: &str,
    due_ms: i64,
    limit: usize,
) -> PortResult<Vec<Hold>> {
    let shards = layout_now(scripts, sku_id).await?;
    let mut holds = Vec::new();
    for shard in Shard::all(sku_id, shards) {
        if holds.len() >= limit {
            break;
        }
        holds.extend(scripts.overdue(&shard, due_ms, limit - holds.len()).await?);
    }
    Ok(holds)
}

/// Retires the SKU once every shard is over and settled: the other shards
/// first, as the first one's retirement takes the SKU off the live set.
pub(super) async fn retire(scripts: &impl StockScripts, sku_id: &str, now_ms: i64) -> PortResult<bool> {
    let shards = layout_now(scripts, sku_id).await?;
    for shard in Shard::all(sku_id, shards).iter().rev() {
        if !scripts.retire(shard, now_ms).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Ids of the live `orders` the gate does not know, each asked of its
/// shopper's home shard; `None` if a shard is not loaded.
pub(super) async fn unknown_orders(
    scripts: &impl StockScripts,
    sku_id: &str,
    orders: &[Order],
) -> PortResult<Option<Vec<String>>> {
    let shards = layout_now(scripts, sku_id).await?;
    let mut unknown = Vec::new();
    for shard in Shard::all(sku_id, shards) {
        let theirs: Vec<&Order> = orders
            .iter()
            .filter(|order| shards::home(&order.username, shards) == shard.index)
            .collect();
        let asked: Vec<(&str, bool)> = theirs
            .iter()
            .map(|order| (order.id.as_str(), unpaid_deadline(order) == 0))
            .collect();
        let Some(known) = scripts.known(&shard, &asked).await? else {
            return Ok(None);
        };
        unknown.extend(
            theirs
                .iter()
                .zip(known)
                .filter(|(_, known)| !known)
                .map(|(order, _)| order.id.clone()),
        );
    }
    Ok(Some(unknown))
}

/// How often a restore routes its orders again when a split changed the
/// SKU's layout under it.
const REROUTES: usize = 3;

/// Puts back those of the live `orders` the gate does not know, each on
/// its shopper's home shard; a shard short of units borrows them from the
/// others before any order is called oversold.
pub(super) async fn restore(
    scripts: &impl StockScripts,
    sku_id: &str,
    orders: &[Order],
    now: DateTime<Utc>,
) -> PortResult<Option<Restored>> {
    // A restored hold must be visited by the timeout sweep, even if the
    // SKU had been retired or the live set's own node forgot it.
    scripts.mark_live(sku_id).await?;
    let mut restored = Restored::default();
    for _ in 0..REROUTES {
        // A split under way is finished first: its shards are where the
        // orders go.
        let shards = splitting::finish(scripts, sku_id).await?;
        match restore_by(scripts, sku_id, orders, shards, ts::millis(&now), &mut restored).await? {
            Routed::Done => {
                scripts.mark_live(sku_id).await?;
                return Ok(Some(restored));
            }
            Routed::NotLoaded => return Ok(None),
            // What was restored stays restored (and known, so not again).
            Routed::Moved => continue,
        }
    }
    Err(PortError::Unavailable(format!(
        "the layout of SKU {sku_id} kept changing while restoring it"
    )))
}

/// How a restore under one layout went.
enum Routed {
    Done,
    NotLoaded,
    /// A shard has another layout now: route again.
    Moved,
}

/// `restore.lua` on each shard, with the orders homed there under
/// `shards`, adding what it did to `restored`.
async fn restore_by(
    scripts: &impl StockScripts,
    sku_id: &str,
    orders: &[Order],
    shards: u32,
    now_ms: i64,
    restored: &mut Restored,
) -> PortResult<Routed> {
    for shard in Shard::all(sku_id, shards) {
        let theirs = homed_at(orders, shard.index, shards);
        if theirs.is_empty() && shard.index > 0 {
            continue;
        }
        let (mut orders, mut oversold) = match scripts.restore(&shard, &theirs, shards).await? {
            RestoreReply::Restored { orders, oversold } => (orders, oversold),
            RestoreReply::NotLoaded => return Ok(Routed::NotLoaded),
            RestoreReply::Resharded(_) | RestoreReply::NotReady => return Ok(Routed::Moved),
        };
        if !oversold.is_empty() && shards > 1 {
            // Short here may not be short at all: borrow what this shard
            // lacks, and only what is still lacking after is oversold.
            let mut short = shortfall(scripts, &shard).await?;
            for _ in 0..oversold.len() {
                if short <= 0 || !lending::borrow(scripts, sku_id, shard.index, shards, now_ms).await? {
                    break;
                }
                short = shortfall(scripts, &shard).await?;
            }
            let short = usize::try_from(short.max(0)).unwrap_or(usize::MAX);
            let keep = oversold.len().saturating_sub(short);
            oversold.drain(..keep);
        }
        restored.orders.append(&mut orders);
        restored.oversold.append(&mut oversold);
    }
    Ok(Routed::Done)
}

/// Units a shard lacks: how far below zero its stock is.
async fn shortfall(scripts: &impl StockScripts, shard: &Shard) -> PortResult<i64> {
    let stock = scripts.stocks(std::slice::from_ref(shard)).await?.remove(0);
    Ok(-stock.unwrap_or(0))
}
