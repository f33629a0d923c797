//! Admission: grab and claim as the crowd reaches them: what an instance checks before
//! a tap may cost the gate a script call.
//!
//! Almost every tap of a flash sale loses, and most lose to `SOLD_OUT` or
//! `EXHAUSTED`. Once an instance has heard that answer from the gate it
//! repeats it from memory ([`SoldOutMemo`]) for a bounded time, then asks
//! again: a unit a cancel or timeout gives back is on sale again for this
//! instance within that bound.
//!
//! Every other tap is counted ([`Limits`], one GCRA key per client and
//! action in the gate): each shopper on grab, claim and pay, each client
//! address on register and login. Sign-ins are counted per account too,
//! before the password is checked (so guesses sent at once are all
//! counted): per account and address, which slows one guesser without
//! touching the owner elsewhere, and per account from every address, past
//! which a sign-in must bring a solved proof-of-work challenge rather than
//! be refused, so a crowd of guessers pays for each guess and still cannot
//! lock the owner out.
//!
//! A sale's operator may also ask more of its crowd (its `Guard`): an
//! account of some age, and a ticket per shopper issued once the sale is
//! open, perhaps for a proof of work (`tickets`). Each instance reads a
//! sale's guard and window from the ledger at most once per [`TERMS_TTL`].
//!
//! * `memo` — the sold-out memo;
//! * `limits` — the counted actions and their rates;
//! * `sign_in` — registrations and sign-ins, counted and challenged;
//! * `guard` — a sale's terms: its window, the account age and tickets;
//! * `edge` — the edge's list of sales that ask tickets, so a ticketless
//!   tap is refused before it reaches the API;
//! * `room` — a sale's waiting room, whose called shoppers alone get
//!   tickets;
//! * here — what an instance keeps ([`CrowdControl`]) and the pipeline
//!   of a grab, a claim and a publish through it.

pub mod edge;
mod guard;
mod limits;
mod memo;
pub mod room;
mod sign_in;

use chrono::{DateTime, Utc};

pub use guard::{TERMS_TTL, Terms, challenge, ticket};
pub use limits::{Action, Limits};
use memo::SALES_REMEMBERED;
pub use memo::SoldOutMemo;
pub use sign_in::{SIGN_IN_DIFFICULTY, admin_login, login, register};

use super::{
    auth::Claims,
    flash_sale::{self, PublishedSku},
    red_packet,
    tickets::Tickets,
};
use crate::{
    error::Error,
    model::{Order, Packet},
    ports::{CampaignStore, OrderStore, PacketPool, Ports, RateLimiter, SkuStore, StockGate},
};

/// Which sale a memo is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sale<'a> {
    Sku(&'a str),
    Campaign(&'a str),
}

impl Sale<'_> {
    /// `sku:<id>` or `rp:<id>`, what a ticket is signed for.
    pub fn key(self) -> String {
        match self {
            Sale::Sku(id) => format!("sku:{id}"),
            Sale::Campaign(id) => format!("rp:{id}"),
        }
    }

    fn over(self) -> Error {
        match self {
            Sale::Sku(_) => Error::SoldOut,
            Sale::Campaign(_) => Error::Exhausted,
        }
    }
}

/// What an instance keeps to turn the crowd away cheaply.
pub struct CrowdControl {
    pub sold_out: SoldOutMemo,
    pub limits: Limits,
    pub tickets: Tickets,
    /// Each sale's terms by [`Sale::key`]. A cache that loads a key once
    /// for all who ask at the same moment: a crowd arriving at a cold
    /// instance makes one read, not one per tap.
    terms: moka::future::Cache<String, Option<Terms>>,
    /// The most places a second any waiting room calls: what the
    /// deployment's warm instances serve (`WarmSettings::room_rate`). An
    /// operator's higher rate is held to it.
    room_rate_cap: Option<u32>,
}

impl CrowdControl {
    /// `secret` is the token secret, from which the tickets' keys derive.
    pub fn new(sold_out: SoldOutMemo, limits: Limits, secret: &[u8]) -> Self {
        CrowdControl {
            sold_out,
            limits,
            tickets: Tickets::new(secret),
            terms: moka::future::Cache::builder()
                .max_capacity(SALES_REMEMBERED as u64)
                .time_to_live(TERMS_TTL)
                .build(),
            room_rate_cap: None,
        }
    }

    /// Holds every waiting room's rate to `cap` (none: the operator's).
    pub fn with_room_rate_cap(self, cap: Option<u32>) -> Self {
        CrowdControl {
            room_rate_cap: cap,
            ..self
        }
    }
}

/// An operator's publish, after which this instance asks the gate again:
/// the SKU may have more stock now. Other instances ask within their memo.
pub async fn publish(
    ports: Ports<'_, impl StockGate, impl OrderStore + SkuStore, impl Sync>,
    control: &CrowdControl,
    sku_id: &str,
    now: DateTime<Utc>,
) -> Result<PublishedSku, Error> {
    let published = flash_sale::publish(ports, sku_id, now).await;
    control.sold_out.forget(Sale::Sku(sku_id));
    published
}

/// A shopper's grab, answered from memory when the SKU is known sold out.
/// That answer is public (the item page says it too), so it is given
/// before `shopper`, which verifies the caller's token, is asked who
/// is calling.
pub async fn grab(
    ports: Ports<'_, impl StockGate + RateLimiter, impl OrderStore + SkuStore + CampaignStore, impl Sync>,
    control: &CrowdControl,
    shopper: impl FnOnce() -> Result<Claims, Error>,
    ticket: Option<&str>,
    sku_id: &str,
    now: DateTime<Utc>,
) -> Result<Order, Error> {
    let sale = Sale::Sku(sku_id);
    control.sold_out.check(sale)?;
    let claims = shopper()?;
    control.guard(ports.ledger, sale, &claims, ticket, now).await?;
    let username = claims.sub;
    control.admit(ports.gate, Action::Grab, &username).await?;
    let result = flash_sale::grab(ports, &username, sku_id, now).await;
    control.sold_out.note(sale, result)
}

/// A shopper's claim, answered from memory when the rain is known
/// exhausted, before `shopper` is asked who is calling (as [`grab`]).
pub async fn claim(
    ports: Ports<'_, impl PacketPool + RateLimiter, impl SkuStore + CampaignStore, impl Sync>,
    control: &CrowdControl,
    shopper: impl FnOnce() -> Result<Claims, Error>,
    ticket: Option<&str>,
    campaign_id: &str,
    now: DateTime<Utc>,
) -> Result<Packet, Error> {
    let sale = Sale::Campaign(campaign_id);
    control.sold_out.check(sale)?;
    let claims = shopper()?;
    control.guard(ports.ledger, sale, &claims, ticket, now).await?;
    let username = claims.sub;
    control.admit(ports.gate, Action::Claim, &username).await?;
    let result = red_packet::claim(ports, campaign_id, &username, now).await;
    control.sold_out.note(sale, result)
}

#[cfg(test)]
pub(crate) mod tests {
    pub(crate) use std::time::Duration;

    pub(crate) use chrono::Duration as Span;

    pub(crate) use super::*;
    pub(crate) use crate::{
        domain::{
            accounts::Registration,
            auth::Role,
            flash_sale::{
                cancel,
                tests::{now, on_sale},
            },
            red_packet::tests::{now as rain_time, rain},
        },
        memory::{Fault, Memory, Op},
    };

    pub(crate) const MEMO: Duration = Duration::from_millis(300);

    pub(crate) const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    pub(crate) fn claims_of(username: &str) -> Claims {
        Claims {
            sub: username.to_owned(),
            role: Role::User,
            iat: 0,
            exp: i64::MAX,
            since: None,
        }
    }

    pub(crate) fn who(username: &str) -> impl FnOnce() -> Result<Claims, Error> {
        let claims = claims_of(username);
        move || Ok(claims)
    }

    pub(crate) fn registration(username: &str) -> Registration {
        serde_json::from_value(serde_json::json!({"username": username, "password": "correct horse"})).unwrap()
    }

    pub(crate) fn control() -> CrowdControl {
        CrowdControl::new(SoldOutMemo::new(MEMO), Limits::none(), SECRET)
    }
}
