//! Publishing a SKU (`publish.lua` on each shard): its first load, a
//! re-publish that moves its terms but never brings a sold unit back, and a
//! rebuild from the ledger's live orders after the cache lost it.

use chrono::{DateTime, Utc};
use tracing::warn;

use super::{homed_at, lending, splitting};
use crate::{
    gate::scripts::{LiveOrder, PublishArgs, PublishReply, Shard, StockScripts, Terms},
    model::{Order, Sku},
    ports::{PortResult, PublishOutcome},
    ts,
};

/// The terms a SKU's catalog record gives its shards.
pub(super) fn terms_of(sku: &Sku) -> Terms {
    let fields = &sku.fields;
    Terms {
        num: fields.seckill_num,
        begin_ms: ts::millis(&fields.seckill_begin),
        end_ms: ts::millis(&fields.seckill_end),
        pay_timeout_ms: i64::from(fields.pay_timeout_seconds) * 1000,
        price: fields.seckill_price,
        name: fields.name.clone(),
    }
}

/// `publish.lua` on one shard; a shard that answers with its layout
/// teaches this instance the layout.
pub(super) async fn publish_on(
    scripts: &impl StockScripts,
    shard: &Shard,
    terms: &Terms,
    load: Option<(i64, &[LiveOrder<'_>])>,
    shards: u32,
) -> PortResult<PublishOutcome> {
    let args = PublishArgs {
        terms,
        first: shard.index == 0,
        load,
        shards,
    };
    Ok(match scripts.publish(shard, args).await? {
        PublishReply::Published { stock, shards } => {
            scripts.layouts().set(&shard.sku_id, shards);
            PublishOutcome::Published { remaining: stock }
        }
        PublishReply::Republished { stock, shards } => {
            scripts.layouts().set(&shard.sku_id, shards);
            PublishOutcome::Republished { remaining: stock }
        }
        PublishReply::BelowSold { sold } => PublishOutcome::BelowSold { sold },
        PublishReply::NeedsLedger => PublishOutcome::NeedsLedger,
    })
}

/// Loads or updates a SKU; with `ledger` (its live orders), rebuilds
/// whatever of it the gate lost. The SKU joins the live set before its
/// first script, so a SKU whose script ran is visited by the jobs even if
/// the caller died right after, and again after its last, so a retire that
/// ran in between cannot hide it.
pub(super) async fn publish(
    scripts: &impl StockScripts,
    sku: &Sku,
    ledger: Option<&[Order]>,
    now: DateTime<Utc>,
) -> PortResult<PublishOutcome> {
    scripts.mark_live(&sku.id).await?;
    let outcome = match ledger {
        Some(orders) => load(scripts, sku, orders).await?,
        None => {
            let first = Shard::first(&sku.id);
            let terms = terms_of(sku);
            let mut outcome = publish_on(scripts, &first, &terms, None, 1).await?;
            // A split begun and not finished has shards not open yet: they
            // are opened with their shares first, not taken for lost.
            let shards = splitting::finish(scripts, &sku.id).await?;
            if matches!(outcome, PublishOutcome::BelowSold { .. }) && shards > 1 {
                lending::gather(scripts, &sku.id, shards, ts::millis(&now)).await?;
                outcome = publish_on(scripts, &first, &terms, None, shards).await?;
            }
            if let PublishOutcome::Republished { remaining } = outcome {
                let mut remaining = remaining;
                for shard in Shard::all(&sku.id, shards).iter().skip(1) {
                    match publish_on(scripts, shard, &terms, None, shards).await? {
                        PublishOutcome::Republished { remaining: r } => remaining += r,
                        other => return Ok(other),
                    }
                }
                outcome = PublishOutcome::Republished { remaining };
                // The ledger says the SKU was split; a split that died
                // before it began is begun again here.
                if let Some(wanted) = sku.shards.filter(|&wanted| wanted > shards) {
                    splitting::split(scripts, &sku.id, wanted).await?;
                }
            }
            outcome
        }
    };
    scripts.mark_live(&sku.id).await?;
    Ok(outcome)
}

/// Loads the SKU's shards from the ledger: when the gate has none, all of
/// what is left onto the first shard alone, in one script, and then split
/// as the ledger says (so rebuilders racing each other cannot mix two
/// snapshots of the ledger across shards: the second finds the first shard
/// loaded and only helps finish the split). Otherwise only the shards it
/// lost, each with its shoppers' orders and no stock, as the units it had
/// cannot be told from the ledger while the others sell (they are logged
/// as stranded: re-publishing with a higher `seckill_num` puts them back
/// on sale).
async fn load(scripts: &impl StockScripts, sku: &Sku, orders: &[Order]) -> PortResult<PublishOutcome> {
    let wanted = sku.shards.unwrap_or(1).max(1);
    let terms = terms_of(sku);
    let by_ledger = Shard::all(&sku.id, wanted);
    let present = presence(scripts, &by_ledger).await?;
    let outcome = if present[0] {
        // The first shard's layout, read after it was seen loaded, says
        // which shards there are: one loaded since with another
        // rebuilder's snapshot, or opened by a split, is never taken for
        // lost. A split left half done is finished first.
        let layout = splitting::finish(scripts, &sku.id).await?;
        let all = Shard::all(&sku.id, layout);
        let present: Vec<bool> = scripts.stocks(&all).await?.iter().map(Option::is_some).collect();
        load_lost(scripts, sku, orders, &terms, &all, &present).await?
    } else if present.contains(&true) {
        load_lost(scripts, sku, orders, &terms, &by_ledger, &present).await?
    } else {
        let sold = i64::try_from(orders.len()).unwrap_or(i64::MAX);
        if sku.fields.seckill_num < sold {
            return Ok(PublishOutcome::BelowSold { sold });
        }
        let all_orders = homed_at(orders, 0, 1);
        let left = sku.fields.seckill_num - sold;
        publish_on(scripts, &by_ledger[0], &terms, Some((left, all_orders.as_slice())), 1).await?
    };
    if wanted > 1
        && matches!(
            outcome,
            PublishOutcome::Published { .. } | PublishOutcome::Republished { .. }
        )
    {
        splitting::split(scripts, &sku.id, wanted).await?;
    }
    Ok(outcome)
}

/// Which of `shards` the gate holds, the first shard read last.
///
/// The first shard is loaded before any other opens and leaves only with
/// the whole cache, so read after the others it tells a real loss from a
/// rebuild running beside this one: had it been read first (or with them,
/// as Redis answers each shard's GET on its own), a shard that rebuild
/// opened since would make the first look lost while its split was under
/// way, and reloading it then would open the split's next shard empty.
async fn presence(scripts: &impl StockScripts, shards: &[Shard]) -> PortResult<Vec<bool>> {
    let (first, others) = shards.split_first().expect("a SKU has a first shard");
    let others = scripts.stocks(others).await?;
    let first = scripts.stocks(std::slice::from_ref(first)).await?;
    Ok(first.iter().chain(&others).map(Option::is_some).collect())
}

/// Reloads the shards of a SKU the gate lost while it kept others.
async fn load_lost(
    scripts: &impl StockScripts,
    sku: &Sku,
    orders: &[Order],
    terms: &Terms,
    all: &[Shard],
    present: &[bool],
) -> PortResult<PublishOutcome> {
    let shards = u32::try_from(all.len()).unwrap_or(u32::MAX);
    let mut remaining = 0;
    // The first shard last: its layout is what sends shoppers elsewhere.
    for (shard, present) in all.iter().zip(present).rev() {
        let theirs = homed_at(orders, shard.index, shards);
        let load = (!present).then_some((0, theirs.as_slice()));
        if !present {
            warn!(
                sku_id = %sku.id,
                shard = shard.index,
                "a shard of the SKU was lost with its master: its unsold units are stranded until re-published"
            );
        }
        match publish_on(scripts, shard, terms, load, shards).await? {
            PublishOutcome::Published { remaining: r } | PublishOutcome::Republished { remaining: r } => remaining += r,
            other => return Ok(other),
        }
    }
    Ok(PublishOutcome::Republished { remaining })
}
