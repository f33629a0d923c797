//! The gate's Redis scripts, one decision each (see each file's header for
//! its KEYS, ARGV and replies). They live here, at the top of the workspace,
//! so the atomic core of the system can be read in one place; the Redis
//! adapter (`shared::gate`) wraps each once as a `redis::Script` and maps its
//! replies to one Rust enum.

/// Reserve one unit of a SKU for one shopper.
pub const GRAB: &str = include_str!("grab.lua");
/// Put a held unit back on sale (cancelled, timed out, never written).
pub const RELEASE: &str = concat!(include_str!("misrouted.lua"), include_str!("release.lua"));
/// Stop the clock on a held unit that was paid for.
pub const CONFIRM: &str = concat!(include_str!("misrouted.lua"), include_str!("confirm.lua"));
/// Put a SKU on sale, update its terms, or rebuild it from the ledger.
pub const PUBLISH: &str = include_str!("publish.lua");
/// Put a campaign's pre-split packets on its pool, once.
pub const LOAD_PACKETS: &str = include_str!("load_packets.lua");
/// One shopper's claim of a red packet.
pub const CLAIM: &str = include_str!("claim.lua");
/// Put right a claim the ledger did not take.
pub const AMEND_CLAIM: &str = include_str!("amend_claim.lua");
/// Let the keys of a finished, settled SKU or campaign expire.
pub const RETIRE: &str = include_str!("retire.lua");
/// Put back the live orders of the ledger that the gate forgot.
pub const RESTORE: &str = concat!(include_str!("misrouted.lua"), include_str!("restore.lua"));
/// May one client do one action now (GCRA, one key per client and action).
pub const RATE_LIMIT: &str = include_str!("rate_limit.lua");
/// Start sharding a SKU: carve its stock into shares, hand back its orders.
pub const SPLIT: &str = include_str!("split.lua");
/// Finish sharding a SKU: its first shard drops the orders that moved.
pub const JOIN: &str = include_str!("join.lua");
/// One shard of a SKU lends units to another whose shoppers found it empty.
pub const LEND: &str = include_str!("lend.lua");
/// A shard takes in units lent to it, once per transfer.
pub const RECEIVE: &str = include_str!("receive.lua");
/// A shopper's place in a sale's waiting room: a draw before the opening,
/// the next number after.
pub const ROOM_JOIN: &str = include_str!("room_join.lua");
/// Admit a shopper whose place in the waiting room has been called.
pub const ROOM_ADMIT: &str = concat!(include_str!("room_line.lua"), include_str!("room_admit.lua"));
/// A waiting room's line as its public document shows it.
pub const ROOM_STATUS: &str = concat!(include_str!("room_line.lua"), include_str!("room_status.lua"));
