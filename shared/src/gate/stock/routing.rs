//! A shopper's calls on their home shard (see `shards.rs`): grab, release
//! and confirm. Each instance routes by the layout it remembers; a shard
//! that has another layout says so (`RESHARDED`), and one still being
//! opened by a split says `NOT_READY`, so the memory costs no round trip.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{layout_now, lending, splitting};
use rand::RngExt;

use crate::{
    gate::{
        scripts::{GrabReply, SettleReply, Shard, StockScripts},
        shards,
    },
    ids,
    model::ReservedUnit,
    ports::{HoldOutcome, PortError, PortResult, Reservation},
    ts,
};

/// How long a call waits in all for a shard that is being opened (between
/// `split.lua` and its `publish.lua`: a few milliseconds) before it answers
/// 503.
const SHARD_OPENING_WAIT: Duration = Duration::from_millis(500);
const SHARD_OPENING_POLL: Duration = Duration::from_millis(20);

/// How long one grab of a split SKU keeps trying while the last units are
/// on the move between its shards (given back, lent, taken in), so that it
/// can neither get one nor vouch that none is left; past it the grab
/// answers 503 (try again) rather than a sold-out it cannot vouch for.
const SETTLING_BUDGET: Duration = Duration::from_secs(2);

/// How long a grab waits before looking again, at first and at most, with
/// jitter so that a crowd waiting on the same units spreads out.
const SETTLING: (Duration, Duration) = (Duration::from_millis(2), Duration::from_millis(32));

/// A loan older than this is taken for one its borrower died with, and a
/// grab that finds it delivers it (the sweep would, later): a borrower
/// takes its loan in a round trip after lending it.
const LOAN_GRACE_MS: i64 = 2_000;

/// What runs on a shopper's home shard.
#[derive(Clone, Copy)]
pub(super) enum HomeCall<'a> {
    Grab { order_id: &'a str, now_ms: i64 },
    Release { order_id: &'a str },
    Confirm { order_id: &'a str },
}

/// The answer of a [`HomeCall`].
enum Answer {
    Reservation(Reservation),
    Hold(HoldOutcome),
}

/// What a home call answered, or why it must be asked again elsewhere.
enum Routed {
    Done(Answer),
    Resharded(u32),
    NotReady,
}

/// One call on `home`, routed by `shards`.
async fn call_on(
    scripts: &impl StockScripts,
    home: &Shard,
    shards: u32,
    username: &str,
    call: HomeCall<'_>,
) -> PortResult<Routed> {
    let reserved = |reservation| Routed::Done(Answer::Reservation(reservation));
    let settled = |reply| match reply {
        SettleReply::Released => Routed::Done(Answer::Hold(HoldOutcome::Released)),
        SettleReply::Confirmed => Routed::Done(Answer::Hold(HoldOutcome::Confirmed)),
        SettleReply::NotHeld => Routed::Done(Answer::Hold(HoldOutcome::NotHeld)),
        SettleReply::Resharded(shards) => Routed::Resharded(shards),
        SettleReply::NotReady => Routed::NotReady,
    };
    Ok(match call {
        HomeCall::Grab { order_id, now_ms } => {
            let reply = scripts.grab(home, username, order_id, now_ms, shards, None).await?;
            match reservation_of(reply, home) {
                Ok(reservation) => reserved(reservation),
                Err(routed) => routed,
            }
        }
        HomeCall::Release { order_id } => settled(scripts.release(home, order_id, shards).await?),
        HomeCall::Confirm { order_id } => settled(scripts.confirm(home, order_id, shards).await?),
    })
}

/// A grab's reply as the shopper's reservation, or why the grab must be
/// routed again.
fn reservation_of(reply: GrabReply, home: &Shard) -> Result<Reservation, Routed> {
    Ok(match reply {
        GrabReply::Reserved {
            deadline_ms,
            price,
            name,
        } => Reservation::Reserved(ReservedUnit {
            pay_deadline: ts::from_millis(deadline_ms),
            price,
            name,
        }),
        GrabReply::Resharded(shards) => return Err(Routed::Resharded(shards)),
        GrabReply::NotPublished if home.index > 0 => return Err(Routed::NotReady),
        GrabReply::NotPublished => Reservation::NotPublished,
        GrabReply::NotStarted => Reservation::NotStarted,
        GrabReply::Ended => Reservation::Ended,
        GrabReply::AlreadyPurchased => Reservation::AlreadyPurchased,
        GrabReply::SoldOut => Reservation::SoldOut,
    })
}

/// Runs `call` on the home shard of `username` under the layout this
/// instance knows, routing again when the shard says the layout changed
/// and waiting a moment for a shard still being opened. Returns the answer
/// and the layout it was got by.
async fn on_home(
    scripts: &impl StockScripts,
    sku_id: &str,
    username: &str,
    call: HomeCall<'_>,
) -> PortResult<(Answer, u32)> {
    let mut waited = Duration::ZERO;
    let mut reroutes = 0;
    loop {
        let shards = scripts.layouts().get(sku_id);
        let home = Shard::of(sku_id, shards::home(username, shards), shards);
        match call_on(scripts, &home, shards, username, call).await? {
            Routed::Done(answer) => return Ok((answer, shards)),
            Routed::Resharded(now) if reroutes < 3 => {
                reroutes += 1;
                scripts.layouts().set(sku_id, now);
            }
            Routed::NotReady if waited < SHARD_OPENING_WAIT => {
                tokio::time::sleep(SHARD_OPENING_POLL).await;
                waited += SHARD_OPENING_POLL;
                layout_now(scripts, sku_id).await?;
            }
            _ => {
                return Err(PortError::Unavailable(format!(
                    "shard {} of SKU {sku_id} is not open",
                    home.index
                )));
            }
        }
    }
}

/// One grab on the home shard. A split SKU's home shard that is sold out
/// borrows from the others and grabs from the loan as it lands (so the
/// units borrowed are not all taken by others first); the SKU is sold out
/// only once no unit is left anywhere: none on a shard, none lent on its
/// way, no shard still to open.
pub(super) async fn reserve(
    scripts: &impl StockScripts,
    sku_id: &str,
    username: &str,
    order_id: &str,
    now: DateTime<Utc>,
) -> PortResult<Reservation> {
    let now_ms = ts::millis(&now);
    let give_up = tokio::time::Instant::now() + SETTLING_BUDGET;
    let mut settling = SETTLING.0;
    loop {
        let (answer, shards) = on_home(scripts, sku_id, username, HomeCall::Grab { order_id, now_ms }).await?;
        let Answer::Reservation(reservation) = answer else {
            return Err(PortError::Unavailable("a grab answered as a settle".into()));
        };
        if reservation != Reservation::SoldOut || shards <= 1 {
            return Ok(reservation);
        }
        let home = Shard::of(sku_id, shards::home(username, shards), shards);
        match lending::lend_to(scripts, sku_id, home.index, shards, now_ms).await? {
            Some(loan) => {
                let loaned = Some((loan.transfer.as_str(), loan.units));
                let reply = scripts.grab(&home, username, order_id, now_ms, shards, loaned).await?;
                match reservation_of(reply, &home) {
                    // The loan had landed before (the sweep delivers a loan
                    // that seems abandoned) and others bought it: look again.
                    Ok(Reservation::SoldOut) => scripts.forget_transfer(&loan.from, &loan.transfer).await?,
                    Ok(reservation) => {
                        scripts.forget_transfer(&loan.from, &loan.transfer).await?;
                        return Ok(reservation);
                    }
                    // Not taken in: delivered as any loan is.
                    Err(_) => lending::deliver(scripts, &loan, &home).await?,
                }
            }
            None => {
                let stranded = lending::deliver_stranded(scripts, sku_id, shards, now_ms, LOAN_GRACE_MS).await?;
                match sold_out(scripts, sku_id, shards).await? {
                    Settled::SoldOut if !stranded => return Ok(Reservation::SoldOut),
                    // A split whose caller died holds shares for shards it
                    // never opened: finished here, they go on sale.
                    Settled::Opening => {
                        splitting::finish(scripts, sku_id).await?;
                    }
                    _ => {}
                }
                if tokio::time::Instant::now() >= give_up {
                    return Err(PortError::Unavailable(format!(
                        "the last units of SKU {sku_id} kept moving between its shards"
                    )));
                }
                tokio::time::sleep(settling.mul_f64(ids::rng().random_range(0.5..1.5))).await;
                settling = (settling * 2).min(SETTLING.1);
            }
        }
    }
}

/// Where a split SKU's last units stand.
enum Settled {
    /// None is left anywhere.
    SoldOut,
    /// A shard is not open.
    Opening,
    /// Some are on sale, on their way, or moved while looked at.
    Moving,
}

/// Whether no unit of a split SKU is left anywhere, read twice over every
/// shard: if nothing changed between the two reads (no unit came on sale
/// anywhere, no loan began or ended), there was a moment between them when
/// the first read was the whole truth. One read alone could miss a unit
/// that moved from a shard not yet read to one read already.
async fn sold_out(scripts: &impl StockScripts, sku_id: &str, shards: u32) -> PortResult<Settled> {
    let all = Shard::all(sku_id, shards);
    let first = scripts.census(&all).await?;
    if first.iter().any(|shard| shard.stock.is_none()) {
        return Ok(Settled::Opening);
    }
    let empty = first
        .iter()
        .all(|shard| shard.stock.is_some_and(|stock| stock <= 0) && !shard.lending);
    Ok(if empty && scripts.census(&all).await? == first {
        Settled::SoldOut
    } else {
        Settled::Moving
    })
}

/// `release.lua` or `confirm.lua` on the home shard of `username`.
pub(super) async fn settle(
    scripts: &impl StockScripts,
    sku_id: &str,
    username: &str,
    call: HomeCall<'_>,
) -> PortResult<HoldOutcome> {
    match on_home(scripts, sku_id, username, call).await? {
        (Answer::Hold(outcome), _) => Ok(outcome),
        (Answer::Reservation(_), _) => Err(PortError::Unavailable("a settle answered as a grab".into())),
    }
}
