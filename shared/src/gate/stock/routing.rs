//! A shopper's calls on their home shard (see `shards.rs`): grab, release
//! and confirm. Each instance routes by the layout it remembers; a shard
//! that has another layout says so (`RESHARDED`), and one still being
//! opened by a split says `NOT_READY`, so the memory costs no round trip.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{layout_now, lending};
use crate::{
    gate::{
        scripts::{GrabReply, SettleReply, Shard, StockScripts},
        shards,
    },
    model::ReservedUnit,
    ports::{HoldOutcome, PortError, PortResult, Reservation},
    ts,
};

/// How long a call waits in all for a shard that is being opened (between
/// `split.lua` and its `publish.lua`: a few milliseconds) before it answers
/// 503.
const SHARD_OPENING_WAIT: Duration = Duration::from_millis(500);
const SHARD_OPENING_POLL: Duration = Duration::from_millis(20);

/// Rounds of borrowing one grab may make when every unit it borrows is
/// taken by others first; past them, the shard is as good as sold out.
const BORROW_ROUNDS: usize = 8;

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
        HomeCall::Grab { order_id, now_ms } => match scripts.grab(home, username, order_id, now_ms, shards).await? {
            GrabReply::Reserved {
                deadline_ms,
                price,
                name,
            } => reserved(Reservation::Reserved(ReservedUnit {
                pay_deadline: ts::from_millis(deadline_ms),
                price,
                name,
            })),
            GrabReply::Resharded(shards) => Routed::Resharded(shards),
            GrabReply::NotPublished if home.index > 0 => Routed::NotReady,
            GrabReply::NotPublished => reserved(Reservation::NotPublished),
            GrabReply::NotStarted => reserved(Reservation::NotStarted),
            GrabReply::Ended => reserved(Reservation::Ended),
            GrabReply::AlreadyPurchased => reserved(Reservation::AlreadyPurchased),
            GrabReply::SoldOut => reserved(Reservation::SoldOut),
        },
        HomeCall::Release { order_id } => settled(scripts.release(home, order_id, shards).await?),
        HomeCall::Confirm { order_id } => settled(scripts.confirm(home, order_id, shards).await?),
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

/// One grab on the home shard; a split SKU's home shard that is sold out
/// borrows from the others before the SKU is called sold out.
pub(super) async fn reserve(
    scripts: &impl StockScripts,
    sku_id: &str,
    username: &str,
    order_id: &str,
    now: DateTime<Utc>,
) -> PortResult<Reservation> {
    let now_ms = ts::millis(&now);
    for _ in 0..BORROW_ROUNDS {
        let (answer, shards) = on_home(scripts, sku_id, username, HomeCall::Grab { order_id, now_ms }).await?;
        let Answer::Reservation(reservation) = answer else {
            return Err(PortError::Unavailable("a grab answered as a settle".into()));
        };
        // A shard of a split SKU is sold out; the SKU is sold out only
        // when no other shard has a unit to lend.
        if reservation != Reservation::SoldOut
            || shards <= 1
            || !lending::borrow(scripts, sku_id, shards::home(username, shards), shards, now_ms).await?
        {
            return Ok(reservation);
        }
    }
    Ok(Reservation::SoldOut)
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
