//! The domain flows, over the ports only: they know nothing of Redis,
//! DynamoDB or HTTP.
//!
//! * `flash_sale` — publish → grab → pay / cancel / time out → ship → receive.
//! * `payments` — paying an order, and the job that settles every charge
//!   whose answer was lost and every refund owed.
//! * `red_packet` — campaigns, claims, and the exactly-once payout.
//! * `admission` — grab and claim as the crowd reaches them: what an
//!   instance answers before a tap may cost the gate a script.
//! * `catalog` — what is for sale and how it is organised: SKUs and the
//!   activities, time slots, brands and categories around them.
//! * `storefront` — the catalog as shoppers see it, with live stock.
//! * `hot` — hot-item discovery: counting, the sweep that marks hot SKUs,
//!   and splitting a hot SKU's stock over the cache's masters.
//! * `board` — a sale's live board for operators: stock, taps a second,
//!   answers, payout.
//! * `reconcile` — repairs the gate toward the ledger after Redis forgot.
//! * `accounts` and `auth` — shoppers, operators, addresses, tokens.
//! * `tickets` — signed sale tickets and their proof-of-work challenges.
//! * `warm` — the crowd's functions warmed before each opening.
//! * `recent` — a small map of what an instance learned lately (sales sold
//!   out, tokens verified), cheap enough for every tap.

pub mod accounts;
pub mod admission;
pub mod auth;
pub mod board;
pub mod catalog;
pub mod flash_sale;
pub mod hot;
pub mod payments;
pub mod recent;
pub mod reconcile;
pub mod red_packet;
pub mod storefront;
pub mod tickets;
pub mod warm;

/// Conditional writes of one record that lose to other writers before a
/// flow gives up (each loss re-reads the record, whose newer state most
/// often settles the matter): a retry the caller may make, not a hot loop.
const WRITE_ATTEMPTS: usize = 3;
