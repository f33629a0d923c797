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

/// A lent record older than this is taken for one whose borrower died
/// before taking it in, and the timeout sweep delivers it. Far longer than a
/// request's own timeouts, so the two rarely race (and a delivery counts
/// once however many race).
pub(super) const TRANSFER_GRACE_MS: i64 = 10_000;

/// Units one shard lent to another, on their way.
pub(super) struct Loan {
    pub transfer: String,
    pub units: i64,
    pub from: Shard,
}

/// Asks the other shards, in turn from the one after `home`, to lend
/// `home` some units; the first loan, or `None` if every one was empty.
pub(super) async fn lend_to(
    scripts: &impl StockScripts,
    sku_id: &str,
    home: u32,
    shards: u32,
    now_ms: i64,
) -> PortResult<Option<Loan>> {
    for step in 1..shards {
        let from = Shard::of(sku_id, (home + step) % shards, shards);
        let transfer = ids::fresh();
        if let LendReply::Lent(units) = scripts.lend(&from, &transfer, home, now_ms).await? {
            return Ok(Some(Loan { transfer, units, from }));
        }
    }
    Ok(None)
}

/// Takes units from the other shards onto `home` (see [`lend_to`]);
/// whether any came.
pub(super) async fn borrow(
    scripts: &impl StockScripts,
    sku_id: &str,
    home: u32,
    shards: u32,
    now_ms: i64,
) -> PortResult<bool> {
    let Some(loan) = lend_to(scripts, sku_id, home, shards, now_ms).await? else {
        return Ok(false);
    };
    deliver(scripts, &loan, &Shard::of(sku_id, home, shards)).await?;
    Ok(true)
}

/// Puts lent units on the borrowing shard (or back on the lender if the
/// borrower is gone), then drops the lender's record of them.
pub(super) async fn deliver(scripts: &impl StockScripts, loan: &Loan, to: &Shard) -> PortResult<()> {
    match scripts.receive(to, &loan.transfer, loan.units).await? {
        ReceiveReply::Received | ReceiveReply::Duplicate => {}
        ReceiveReply::Missing => {
            if scripts.receive(&loan.from, &loan.transfer, loan.units).await? == ReceiveReply::Missing {
                return Err(PortError::Unavailable("a lent unit has no shard to go to".into()));
            }
        }
    }
    scripts.forget_transfer(&loan.from, &loan.transfer).await
}

/// Moves every unit of the other shards onto the first, so a lower
/// `seckill_num` can be checked against what is sold there alone.
pub(super) async fn gather(scripts: &impl StockScripts, sku_id: &str, shards: u32, now_ms: i64) -> PortResult<()> {
    while borrow(scripts, sku_id, 0, shards, now_ms).await? {}
    Ok(())
}

/// Delivers the units of transfers older than `grace_ms`: their borrower
/// died between the loan and taking it in. Whether it delivered any.
pub(super) async fn deliver_stranded(
    scripts: &impl StockScripts,
    sku_id: &str,
    shards: u32,
    now_ms: i64,
    grace_ms: i64,
) -> PortResult<bool> {
    let all = Shard::all(sku_id, shards);
    let mut delivered = false;
    for from in &all {
        for (transfer, record) in scripts.lent(from).await? {
            let mut parts = record.split(':').map(str::parse::<i64>);
            let (Some(Ok(units)), Some(Ok(to)), Some(Ok(since))) = (parts.next(), parts.next(), parts.next()) else {
                return Err(PortError::Unavailable(format!("unreadable lent record `{record}`")));
            };
            if now_ms - since < grace_ms {
                continue;
            }
            let to = usize::try_from(to)
                .ok()
                .and_then(|to| all.get(to))
                .ok_or_else(|| PortError::Unavailable(format!("lent record `{record}` names no shard")))?;
            warn!(sku_id, transfer, units, "delivering units a dead caller lent");
            let loan = Loan {
                transfer,
                units,
                from: from.clone(),
            };
            deliver(scripts, &loan, to).await?;
            delivered = true;
        }
    }
    Ok(delivered)
}
