//! The ports: what the domain needs from the outside world, as traits, and
//! the vocabulary they speak (outcomes, pages, search filters). Adapters
//! implement them: `gate` (Redis) the stock gate and packet pool, `ledger`
//! (DynamoDB) the ledger's stores, `payments` the provider, and `memory`
//! all of them for tests. Every method fails with the one [`PortError`].

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    ops::Range,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    error::Error,
    model::{
        Address, Admin, AdminStatus, Campaign, CategoryFields, ClaimRecord, Credit, Order, OrderStatus, Packet,
        PayMethod, Profile, Record, ReservedUnit, Sku, SkuActivity, Stored, User,
    },
};

/// How a port call failed. The distinctions the domain acts on: a
/// conditional write whose condition did not hold (the record is not as
/// the caller read it), and a write that met a concurrent transaction on
/// its items and wrote nothing (the condition was never checked: try
/// again). Everything else is a backend that could not answer (or whose
/// answer was lost).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("the conditional write lost to a concurrent change")]
    ConditionFailed,
    #[error("a concurrent transaction held the items; nothing was written")]
    TransactionConflict,
    #[error("the cursor is not one this listing returned")]
    InvalidCursor,
    #[error("{0}")]
    Unavailable(String),
}

impl From<PortError> for Error {
    fn from(error: PortError) -> Self {
        match error {
            PortError::ConditionFailed => Error::Conflict("the record changed concurrently; retry".into()),
            PortError::TransactionConflict => Error::Conflict("a concurrent change held the record; retry".into()),
            PortError::InvalidCursor => {
                Error::Validation("`cursor` is not one this API returned for this listing".into())
            }
            PortError::Unavailable(detail) => Error::Unavailable(detail),
        }
    }
}

pub type PortResult<T> = Result<T, PortError>;

/// The ports a flow works with, by name, so that two of one type (the
/// ledger serves orders and SKUs alike) can never be passed the wrong way
/// round. A flow bounds only the ones it uses.
pub struct Ports<'a, Gate, Ledger, Payments> {
    /// Redis: stock, holds, packet pools ([`StockGate`], [`PacketPool`]).
    pub gate: &'a Gate,
    /// DynamoDB: orders, SKUs, catalog records, accounts, campaigns.
    pub ledger: &'a Ledger,
    pub payments: &'a Payments,
}

impl<G, L, P> Clone for Ports<'_, G, L, P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<G, L, P> Copy for Ports<'_, G, L, P> {}

/// One page of a listing and the opaque cursor of the next, if any.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The same page, each item turned into another.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// The storefront's filters (`GET /seckill/items`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SaleSearch {
    /// Sales starting within `[from, to)`: today's window of a time slot.
    pub starting: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// A category id at any of the three levels.
    pub category: Option<String>,
    pub brand: Option<String>,
    /// A piece of the name (case-sensitive, as DynamoDB's `contains`).
    pub q: Option<String>,
}

/// Which live SKUs [`SkuStore::live_skus_matching`] looks for.
#[derive(Debug, Clone, Copy)]
pub enum LiveFilter<'a> {
    Brand(&'a str),
    Category(&'a str),
    Ids(&'a [String]),
}

/// The outcome of a reservation, one variant per reply of `grab.lua`.
#[derive(Debug, Clone, PartialEq)]
pub enum Reservation {
    Reserved(ReservedUnit),
    NotPublished,
    NotStarted,
    Ended,
    AlreadyPurchased,
    SoldOut,
}

/// The outcome of `publish.lua`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishOutcome {
    Published {
        remaining: i64,
    },
    Republished {
        remaining: i64,
    },
    BelowSold {
        sold: i64,
    },
    /// The gate does not have the SKU: call again with its ledger.
    NeedsLedger,
}

/// What `restore.lua` did with the orders it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// Orders the gate had forgotten, now held (or bought) again.
    pub orders: Vec<String>,
    /// Of those, the ones for which no unit was left: the gate had sold it
    /// again before the repair.
    pub oversold: Vec<String>,
}

/// The outcome of `release.lua` and `confirm.lua`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldOutcome {
    Released,
    Confirmed,
    NotHeld,
}

/// A unit held in the gate for an order that has not been paid (or whose
/// payment has not been confirmed to the gate yet).
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    pub sku_id: String,
    pub order_id: String,
    pub username: String,
    pub pay_deadline: DateTime<Utc>,
    pub price: i64,
    pub name: String,
}

/// What waits for the payout job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Waiting {
    pub records: u64,
    /// When the oldest waiting claim was made (ms since the epoch).
    pub oldest_claimed_at: Option<i64>,
}

/// The outcome of `claim.lua`, one variant per reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    Claimed(Packet),
    AlreadyClaimed(Packet),
    NotFound,
    NotStarted,
    Ended,
    Exhausted,
    /// The pool is empty, but a packet was popped less than
    /// [`CLAIM_SETTLE_MS`] ago: its claim may yet be refused by the ledger
    /// (a shopper the cache forgot) and the packet come back. Ask again.
    Settling,
}

/// How long after a packet was popped an empty pool may still get it
/// back: a claim's ledger write and the gate's amend, with room for a slow
/// write. Only then does the gate vouch for `EXHAUSTED`.
pub const CLAIM_SETTLE_MS: i64 = 3000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditOutcome {
    Credited,
    AlreadyCredited,
}

/// What a payment attempt asks of the provider: one trade per order, under
/// the merchant's trade number (the order id), open until `expires`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest<'a> {
    pub order_id: &'a str,
    pub amount_cents: i64,
    /// What the shopper sees on the provider's page.
    pub subject: &'a str,
    pub expires: DateTime<Utc>,
    /// The provider's own id of the trade, once known, for a provider that
    /// looks trades up by it (a Stripe PaymentIntent).
    pub trade_id: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// Charged at once (the sandbox).
    Approved {
        transaction_id: String,
    },
    Declined(String),
    /// The shopper finishes on the provider's side; the provider's
    /// notification (or the payments job's query) brings the answer.
    Pending {
        action: PayAction,
        /// The provider's id of the trade, where it has one of its own.
        trade_id: Option<String>,
    },
}

/// What the shopper's client needs to finish paying with the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PayAction {
    /// Open this page: the provider's cashier (Alipay's page or wap pay).
    Redirect { url: String },
    /// Show this as a QR code for the wallet app (WeChat Pay Native).
    QrCode { code_url: String },
    /// Confirm the card in the browser with Stripe.js.
    ClientSecret { client_secret: String },
}

/// What the provider's books say of an order's trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeLookup {
    Charged {
        transaction_id: String,
        amount_cents: i64,
    },
    /// Not charged (never, declined, or not yet): no money moved.
    NotCharged,
}

/// A provider's notification, already verified by its adapter (signature,
/// age, merchant): the domain believes it, and checks it against the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub method: PayMethod,
    /// The provider's id of this notification; repeats carry the same.
    pub id: String,
    pub order_id: String,
    pub event: NoticeEvent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeEvent {
    Charged {
        transaction_id: String,
        amount_cents: i64,
    },
    /// The provider declined an attempt (a card refused); the shopper may
    /// try again.
    Declined {
        reason: String,
    },
}

/// How long after its end a SKU or campaign stays among the live ones the
/// jobs visit: a grab or claim from a Lambda whose clock lags may still land
/// just after it.
pub const RETIRE_AFTER_END_MS: i64 = 5 * 60 * 1000;

/// The gate's flash-sale side: live stock, buyers and held units of every
/// SKU on sale.
pub trait StockGate: Sync {
    /// Loads or updates a SKU; `ledger` (its live orders) is needed only to
    /// load it, and without one a SKU the gate lacks is `NeedsLedger`.
    fn publish(
        &self,
        sku: &Sku,
        ledger: Option<&[Order]>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = PortResult<PublishOutcome>> + Send;
    fn reserve(
        &self,
        sku_id: &str,
        username: &str,
        order_id: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = PortResult<Reservation>> + Send;
    /// Puts the unit `username` holds for `order_id` back on sale.
    fn release(
        &self,
        sku_id: &str,
        username: &str,
        order_id: &str,
    ) -> impl Future<Output = PortResult<HoldOutcome>> + Send;
    /// Stops the clock on the unit `username` holds for `order_id`: paid.
    fn confirm(
        &self,
        sku_id: &str,
        username: &str,
        order_id: &str,
    ) -> impl Future<Output = PortResult<HoldOutcome>> + Send;
    /// Units left, or `None` if the SKU is not loaded.
    fn remaining(&self, sku_id: &str) -> impl Future<Output = PortResult<Option<i64>>> + Send;
    /// The same for many SKUs in one round trip.
    fn remaining_of(&self, sku_ids: &[&str]) -> impl Future<Output = PortResult<Vec<Option<i64>>>> + Send;
    /// SKUs that are on sale or still hold units.
    fn live_skus(&self) -> impl Future<Output = PortResult<Vec<String>>> + Send;
    /// Held units of one SKU whose pay deadline is at or before `due`.
    fn overdue(
        &self,
        sku_id: &str,
        due: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = PortResult<Vec<Hold>>> + Send;
    /// Drops a SKU from the live set once its sale has ended and it holds
    /// nothing; returns whether it did.
    fn retire_if_finished(&self, sku_id: &str, now: DateTime<Utc>) -> impl Future<Output = PortResult<bool>> + Send;
    /// Ids of the live `orders` the gate does not know (an unpaid one
    /// without its hold, a paid one whose shopper is not a buyer); `None`
    /// if the SKU is not loaded at all.
    fn unknown_orders(
        &self,
        sku_id: &str,
        orders: &[Order],
    ) -> impl Future<Output = PortResult<Option<Vec<String>>>> + Send;
    /// Puts back those of the live `orders` the gate does not know, each
    /// taking a unit off sale, and puts the SKU among the live ones the
    /// sweeps visit; `None` if the SKU is not loaded.
    fn restore(
        &self,
        sku_id: &str,
        orders: &[Order],
        now: DateTime<Utc>,
    ) -> impl Future<Output = PortResult<Option<Restored>>> + Send;
    /// Splits a hot SKU's stock over `shards` shards so its grabs spread
    /// over the cache's masters, keeping every guarantee (see
    /// `gate::shards`), or finishes a split begun earlier. A SKU keeps its
    /// shards once split. Returns its shards after, or `None` if the gate
    /// does not have the SKU.
    fn split(&self, sku_id: &str, shards: u32) -> impl Future<Output = PortResult<Option<u32>>> + Send;
    /// Finishes what a caller that died left half done on a sharded SKU:
    /// a split, units lent from one shard to another.
    fn repair(&self, sku_id: &str, now: DateTime<Utc>) -> impl Future<Output = PortResult<()>> + Send;
    /// How many masters serve the gate: what a hot SKU is split over unless
    /// configured otherwise.
    fn masters(&self) -> impl Future<Output = PortResult<u32>> + Send;
}

/// The gate's red-packet side: each campaign's pool and who claimed. It
/// filters the crowd; the ledger ([`CampaignStore::record_claim`]) has the
/// last word on every claim, and the payout reads its queue from there.
pub trait PacketPool: Sync {
    /// Opens the campaign with `pool` to hand out and, when it is rebuilt,
    /// the shoppers who already have a packet; `false` if it was loaded
    /// already (nothing changes then).
    fn load(
        &self,
        campaign: &Campaign,
        pool: &[Packet],
        claimed: &[(String, Packet)],
    ) -> impl Future<Output = PortResult<bool>> + Send;
    fn claim(
        &self,
        campaign_id: &str,
        username: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = PortResult<ClaimOutcome>> + Send;
    /// The ledger did not take `popped` as `username`'s claim: the shopper
    /// has `theirs` instead (a packet the ledger holds for them), or none;
    /// `popped` goes back on the pool unless the ledger gave it to someone
    /// else. Changes nothing if the gate has moved on since.
    fn amend_claim(
        &self,
        campaign_id: &str,
        username: &str,
        popped: &Packet,
        amend: Amend<'_>,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// (unclaimed packets, claimed packets).
    fn counts(&self, campaign_id: &str) -> impl Future<Output = PortResult<(u64, u64)>> + Send;
    /// Campaigns the gate holds (for its sweep).
    fn live_campaigns(&self) -> impl Future<Output = PortResult<Vec<String>>> + Send;
    /// Lets an ended campaign's keys expire; whether it did.
    fn retire_if_over(&self, campaign_id: &str, now: DateTime<Utc>) -> impl Future<Output = PortResult<bool>> + Send;
}

/// What the ledger made of a packet the gate popped for a shopper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amend<'a> {
    /// Not recorded (the ledger could not be reached): back on the pool,
    /// the shopper with none.
    Unrecorded,
    /// The ledger has it as another shopper's: it stays off the pool.
    TakenByAnother,
    /// The ledger holds this packet for the shopper already: theirs is
    /// that one, and the popped one goes back on the pool unless the ledger
    /// has it as another's (`popped_taken`).
    Theirs { theirs: &'a Packet, popped_taken: bool },
}

/// What recording a claim in the ledger found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimRecorded {
    /// Recorded: durable now.
    Recorded,
    /// Recorded before, the same claim (a retry, or a cache that forgot it
    /// handed the shopper the same packet again).
    RecordedBefore,
    /// The packet is another shopper's in the ledger: a cache that forgot
    /// handed it out again.
    PacketTaken,
    /// The shopper has `theirs` of the campaign in the ledger already; the
    /// packet popped is another shopper's there too if `popped_taken`.
    AlreadyHas { theirs: Packet, popped_taken: bool },
}

/// A rate: at most `count` per `period`, of which all `count` may come at
/// once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period: std::time::Duration,
}

/// The answer of a [`RateLimiter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    Limited { retry_after: std::time::Duration },
}

/// Counts what each client does, one key per client and action, on a
/// clock all instances share (the `rate_limit.lua` script).
pub trait RateLimiter: Sync {
    /// Counts one request under `key` against `rate`, unless it is over.
    fn admit(&self, key: &str, rate: Rate) -> impl Future<Output = PortResult<Admission>> + Send;
    /// Forgets what `key` counted (a login that succeeded clears its
    /// account's attempts).
    fn reset(&self, key: &str) -> impl Future<Output = PortResult<()>> + Send;
}

/// A shopper's place in a sale's waiting room (`domain::admission::room`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "place", rename_all = "snake_case")]
pub enum Place {
    /// Came before the opening: the early crowd is called in the order of
    /// its draws (random, below 2^53).
    Drawn { draw: u64 },
    /// Came after: called by number, first come, first served, after every
    /// draw.
    Arrived { number: u64 },
}

/// How a waiting room calls its line: from `opening`, `rate` places a
/// second; a place called more than `grace` ago and not taken goes to the
/// next in line. Its places are forgotten at `expires`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomSchedule {
    pub opening: DateTime<Utc>,
    pub rate: u32,
    pub grace: std::time::Duration,
    pub expires: DateTime<Utc>,
}

impl RoomSchedule {
    /// Places called on the schedule alone by `at`: the most admitted by
    /// then.
    pub fn scheduled(&self, at: DateTime<Utc>) -> u64 {
        let elapsed = (at - self.opening).num_milliseconds().max(0);
        u64::try_from(elapsed).unwrap_or(0) * u64::from(self.rate) / 1000
    }

    /// Called places taken by nobody within the grace: given to the next.
    pub fn abandoned(&self, now: DateTime<Utc>, admitted: u64) -> u64 {
        let grace = chrono::Duration::from_std(self.grace).unwrap_or(chrono::Duration::zero());
        self.scheduled(now - grace).saturating_sub(admitted)
    }

    /// How many places have been called by `now`, `admitted` of them taken:
    /// `room_line.lua`'s `calls`, for the adapters that are not Redis.
    pub fn calls(&self, now: DateTime<Utc>, admitted: u64) -> u64 {
        self.scheduled(now) + self.abandoned(now, admitted)
    }
}

/// The answer of [`WaitingRoom::admit_from_room`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomAdmission {
    /// Called: admitted now, or before.
    Admitted,
    /// Not yet: this many places are still to be called before it.
    Waiting { ahead: u64 },
    /// The shopper never joined the room.
    NoPlace,
}

/// A waiting room's line as its public document shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoomLine {
    /// Places drawn before the opening.
    pub draws: u64,
    /// Places numbered after it.
    pub arrivals: u64,
    /// Shoppers admitted.
    pub admitted: u64,
    /// Places called so far.
    pub called: u64,
    /// The draw of the last place called, if any: a drawn place is called
    /// when its draw is at most this.
    pub last_called_draw: Option<u64>,
    /// Arrived places are called up to this number.
    pub arrivals_called: u64,
}

/// The waiting rooms of sales: places in the gate, one room per sale, each
/// on one master (its keys share a hash tag).
pub trait WaitingRoom: Sync {
    /// The shopper's place in `room`: the one they have, else a new one
    /// (`draw` if the room has not opened by `now`).
    fn join_room(
        &self,
        room: &str,
        username: &str,
        draw: u64,
        schedule: RoomSchedule,
        now: DateTime<Utc>,
    ) -> impl Future<Output = PortResult<Place>> + Send;
    /// Admits the shopper if their place has been called by `now`.
    fn admit_from_room(
        &self,
        room: &str,
        username: &str,
        schedule: RoomSchedule,
        now: DateTime<Utc>,
    ) -> impl Future<Output = PortResult<RoomAdmission>> + Send;
    /// The room's line at `now`.
    fn room_line(
        &self,
        room: &str,
        schedule: RoomSchedule,
        now: DateTime<Utc>,
    ) -> impl Future<Output = PortResult<RoomLine>> + Send;
}

/// Why a SKU is hot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HotReason {
    /// Its request rate crossed the threshold.
    Detected,
    /// An operator marked it (ahead of a sale, say); only an operator
    /// unmarks it.
    Marked,
}

/// A SKU that is hot: since when and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotMark {
    #[serde(with = "crate::ts")]
    pub since: DateTime<Utc>,
    pub why: HotReason,
}

/// Requests per item, counted by every instance, in buckets of one second
/// that expire after a few minutes; and which SKUs are hot now.
pub trait HotItems: Sync {
    /// Adds an instance's counts to the bucket of `second` (seconds since
    /// the epoch), in one round trip.
    fn add_hits(&self, second: i64, hits: &[(String, u64)]) -> impl Future<Output = PortResult<()>> + Send;
    /// The buckets of `seconds`, in order: each item's count in that second.
    fn hits(&self, seconds: Range<i64>) -> impl Future<Output = PortResult<Vec<HashMap<String, u64>>>> + Send;
    /// Of the buckets of `seconds`, in order, only the counts of `fields`
    /// (0 where absent): one item's figures without the rest of each bucket.
    fn hits_of(&self, seconds: Range<i64>, fields: &[String])
    -> impl Future<Output = PortResult<Vec<Vec<u64>>>> + Send;
    /// The SKUs hot now.
    fn hot_marks(&self) -> impl Future<Output = PortResult<BTreeMap<String, HotMark>>> + Send;
    /// Marks a SKU hot, or (`None`) not.
    fn set_hot_mark(&self, sku_id: &str, mark: Option<HotMark>) -> impl Future<Output = PortResult<()>> + Send;
}

/// The ledger's orders.
pub trait OrderStore: Sync {
    /// Writes a new order; `ConditionFailed` if the id exists.
    fn insert_order(&self, order: &Order) -> impl Future<Output = PortResult<()>> + Send;
    /// Replaces `current` by `next`; `ConditionFailed` if the stored order
    /// is no longer `current` (someone else changed it first).
    fn replace_order(&self, next: &Order, current: &Order) -> impl Future<Output = PortResult<()>> + Send;
    fn get_order(&self, id: &str) -> impl Future<Output = PortResult<Option<Order>>> + Send;
    /// A shopper's orders, newest first.
    fn orders_of_user(
        &self,
        username: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> impl Future<Output = PortResult<Page<Order>>> + Send;
    /// Orders in one status, newest first (the back office).
    fn orders_with_status(
        &self,
        status: OrderStatus,
        limit: usize,
        cursor: Option<&str>,
    ) -> impl Future<Output = PortResult<Page<Order>>> + Send;
    /// Every order of a SKU that still holds its unit, as far as the
    /// listing has caught up: a write shows in it [`listing_lag`] after it
    /// began at the latest.
    ///
    /// [`listing_lag`]: Self::listing_lag
    fn live_orders_of_sku(&self, sku_id: &str) -> impl Future<Output = PortResult<Vec<Order>>> + Send;
    /// Every order of a SKU, cancelled ones too (an audit of its sale).
    fn orders_of_sku(&self, sku_id: &str) -> impl Future<Output = PortResult<Vec<Order>>> + Send;
    /// How long after an order write began [`live_orders_of_sku`] surely
    /// shows it (its timeout, plus the index's propagation).
    ///
    /// [`live_orders_of_sku`]: Self::live_orders_of_sku
    fn listing_lag(&self) -> std::time::Duration;
    /// Up to `limit` orders whose money is due to be settled by `now`
    /// ([`Order::payment_due`]), longest due first.
    fn orders_with_payment_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = PortResult<Vec<Order>>> + Send;
}

/// The rendered item pages (模板静态化): each published SKU's detail page,
/// everything on it but the stock, which the page asks live. An edge serves
/// them, so a crowd's views and refreshes cost no function.
pub trait PageStore: Sync {
    /// Renders the SKU's page anew and keeps it where the edge serves it.
    fn put_item_page(&self, sku: &Sku) -> impl Future<Output = PortResult<()>> + Send;
    /// Takes its page away (none is fine).
    fn remove_item_page(&self, sku_id: &str) -> impl Future<Output = PortResult<()>> + Send;
}

/// The edge's ticket list: what the CloudFront Function in front of grab
/// and claim reads (a KeyValueStore) to refuse a ticketless tap before it
/// costs the API a request. It holds an entry per sale whose guard asks a
/// ticket, under the sale's ticket name (`sku:<id>`, `rp:<id>`), and the
/// key tickets are signed with.
pub trait TicketList: Sync {
    /// The value under `name`, if there is one.
    fn entry(&self, name: &str) -> impl Future<Output = PortResult<Option<String>>> + Send;
    /// Puts these entries and removes those, all or none.
    fn update(&self, puts: &[(String, String)], removes: &[String]) -> impl Future<Output = PortResult<()>> + Send;
}

/// The functions a sale's crowd reaches, each kept warm on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CrowdFunction {
    /// Grabs, and a sale's line, challenges and tickets.
    Grab,
    /// A rain's claims, line, challenges and tickets.
    Claim,
}

/// Instances of the crowd's functions kept started and initialised ahead
/// of the crowd (Lambda's provisioned concurrency), so the opening second
/// pays no cold starts and no scaling limit.
pub trait WarmCapacity: Sync {
    /// How many are asked for now (0: none).
    fn warm(&self, function: CrowdFunction) -> impl Future<Output = PortResult<u32>> + Send;
    /// Asks for exactly `instances` (0: gives them all back).
    fn set_warm(&self, function: CrowdFunction, instances: u32) -> impl Future<Output = PortResult<()>> + Send;
}

/// The ledger's SKUs.
pub trait SkuStore: Sync {
    fn get_sku(&self, id: &str) -> impl Future<Output = PortResult<Option<Sku>>> + Send;
    fn put_sku(&self, sku: &Sku) -> impl Future<Output = PortResult<()>> + Send;
    fn delete_sku(&self, id: &str) -> impl Future<Output = PortResult<()>> + Send;
    /// Every SKU, a page at a time (the back office's list).
    fn sku_page(&self, limit: usize, cursor: Option<&str>) -> impl Future<Output = PortResult<Page<Sku>>> + Send;
    /// Published SKUs whose sale has not ended by `now`, by start time.
    fn skus_on_sale(
        &self,
        search: &SaleSearch,
        now: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> impl Future<Output = PortResult<Page<Sku>>> + Send;
    /// Ids of published SKUs whose sale has not ended by `now` and that
    /// match `filter`; a handful per live promotion.
    fn live_skus_matching(
        &self,
        filter: LiveFilter<'_>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = PortResult<Vec<String>>> + Send;
    /// Marks the SKU on sale (keeping the first `published_at`) and returns it.
    fn mark_published(&self, id: &str, now: DateTime<Utc>) -> impl Future<Output = PortResult<Sku>> + Send;
    /// Takes a SKU out of the on-sale listing if its sale ended before
    /// `ended_before` (it stays published; publishing it again lists it
    /// again); whether it did.
    fn take_off_sale(&self, id: &str, ended_before: DateTime<Utc>) -> impl Future<Output = PortResult<bool>> + Send;
    /// Records over how many Redis shards the SKU's stock is split
    /// (before the gate splits it, so a rebuild always knows), unless
    /// another count is recorded already: `ConditionFailed` then (a SKU
    /// keeps its first split).
    fn set_sku_shards(&self, id: &str, shards: u32) -> impl Future<Output = PortResult<()>> + Send;
}

/// The ledger's other catalog records (activities, slots, brands,
/// categories) and the SKU ↔ activity links.
pub trait RecordStore: Sync {
    /// `ConditionFailed` if the id exists.
    fn insert_record<F: Record>(&self, record: &Stored<F>) -> impl Future<Output = PortResult<()>> + Send;
    fn put_record<F: Record>(&self, record: &Stored<F>) -> impl Future<Output = PortResult<()>> + Send;
    fn get_record<F: Record>(&self, id: &str) -> impl Future<Output = PortResult<Option<Stored<F>>>> + Send;
    fn delete_record<F: Record>(&self, id: &str) -> impl Future<Output = PortResult<()>> + Send;
    fn page_records<F: Record>(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> impl Future<Output = PortResult<Page<Stored<F>>>> + Send;
    fn child_categories(
        &self,
        parent_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> impl Future<Output = PortResult<Page<Stored<CategoryFields>>>> + Send;
    fn link(&self, link: &SkuActivity) -> impl Future<Output = PortResult<()>> + Send;
    fn unlink(&self, link: &SkuActivity) -> impl Future<Output = PortResult<()>> + Send;
    fn skus_of_activity(
        &self,
        activity_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> impl Future<Output = PortResult<Page<SkuActivity>>> + Send;
    fn activities_of_sku(&self, sku_id: &str) -> impl Future<Output = PortResult<Vec<SkuActivity>>> + Send;
}

/// The ledger's accounts: shoppers, operators, addresses.
pub trait AccountStore: Sync {
    /// `ConditionFailed` if the username is taken.
    fn insert_user(&self, user: &User, password_hash: &str) -> impl Future<Output = PortResult<()>> + Send;
    fn user_credentials(&self, username: &str) -> impl Future<Output = PortResult<Option<(User, String)>>> + Send;
    /// `ConditionFailed` if there is no such user.
    fn update_profile(
        &self,
        username: &str,
        profile: &Profile,
        now: DateTime<Utc>,
    ) -> impl Future<Output = PortResult<User>> + Send;
    /// `ConditionFailed` if the login name is taken.
    fn insert_admin(&self, admin: &Admin, password_hash: &str) -> impl Future<Output = PortResult<()>> + Send;
    fn admin_credentials(&self, login_name: &str) -> impl Future<Output = PortResult<Option<(Admin, String)>>> + Send;
    fn admin_page(&self, limit: usize, cursor: Option<&str>) -> impl Future<Output = PortResult<Page<Admin>>> + Send;
    /// `ConditionFailed` if there is no such operator.
    fn set_admin_status(&self, login_name: &str, status: AdminStatus)
    -> impl Future<Output = PortResult<Admin>> + Send;
    fn address_book(&self, username: &str) -> impl Future<Output = PortResult<AddressBook>> + Send;
    /// At once: puts `put`, deletes the address `delete`, and moves the
    /// book to its next version, only if it is still at `version`
    /// (`ConditionFailed` if another change got in first).
    fn change_address_book(
        &self,
        username: &str,
        version: u64,
        put: &[Address],
        delete: Option<&str>,
    ) -> impl Future<Output = PortResult<()>> + Send;
}

/// A shopper's addresses as read, and the version of the book they were
/// read at: a change names it, so two concurrent changes (two "add"s past
/// the limit, two new defaults) cannot both apply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AddressBook {
    pub version: u64,
    pub addresses: Vec<Address>,
}

/// The ledger's red-packet side: campaigns, credits and balances.
pub trait CampaignStore: Sync {
    /// `ConditionFailed` if the id exists.
    fn insert_campaign(&self, campaign: &Campaign) -> impl Future<Output = PortResult<()>> + Send;
    /// The campaign with its credited totals.
    fn get_campaign(&self, id: &str) -> impl Future<Output = PortResult<Option<Campaign>>> + Send;
    /// Campaigns whose end is after `cutoff` (the reconciliation job's
    /// list; campaigns are few, made by operators).
    fn campaigns_ending_after(&self, cutoff: DateTime<Utc>) -> impl Future<Output = PortResult<Vec<Campaign>>> + Send;
    /// Keeps a campaign's split (its packets in pool order), so a campaign
    /// the gate lost can be rebuilt.
    fn insert_split(&self, campaign_id: &str, packets: &[Packet]) -> impl Future<Output = PortResult<()>> + Send;
    fn split_of(&self, campaign_id: &str) -> impl Future<Output = PortResult<Vec<Packet>>> + Send;
    /// At once, only if neither exists for another: the packet's credit,
    /// owed to the shopper, and the shopper's claim of the campaign. A
    /// claim is acknowledged only once this is written, so no cache
    /// failover or loss can forget it.
    fn record_claim(&self, claim: &ClaimRecord) -> impl Future<Output = PortResult<ClaimRecorded>> + Send;
    /// The packet the ledger holds for a shopper of a campaign.
    fn claim_of(&self, campaign_id: &str, username: &str) -> impl Future<Output = PortResult<Option<Packet>>> + Send;
    /// The credits (owed or credited) of those of these packets that were
    /// claimed.
    fn credits_of_packets(&self, packet_ids: &[String]) -> impl Future<Output = PortResult<Vec<Credit>>> + Send;
    /// Up to `limit` claims owed to a balance, of any campaign, the oldest
    /// first (the payout's queue).
    fn owed(&self, limit: usize) -> impl Future<Output = PortResult<Vec<ClaimRecord>>> + Send;
    /// How many claims are owed, and when the oldest was made.
    fn owed_count(&self) -> impl Future<Output = PortResult<Waiting>> + Send;
    /// At once: the owed credit marked credited (only if it is still
    /// owed), the balance, and the campaign's credited totals.
    fn credit(
        &self,
        record: &ClaimRecord,
        now: DateTime<Utc>,
    ) -> impl Future<Output = PortResult<CreditOutcome>> + Send;
    /// [`credit`](Self::credit) for several records of one campaign, in as
    /// few transactions as the store allows; each outcome in their order.
    fn credit_batch(
        &self,
        records: &[ClaimRecord],
        now: DateTime<Utc>,
    ) -> impl Future<Output = PortResult<Vec<CreditOutcome>>> + Send;
    fn balance(&self, username: &str) -> impl Future<Output = PortResult<i64>> + Send;
    /// A shopper's credits, newest first.
    fn credits_of_user(
        &self,
        username: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> impl Future<Output = PortResult<Page<Credit>>> + Send;
}

/// The payment providers, each reached by its [`PayMethod`]. Trades are
/// idempotent by the merchant's trade number (the order id), as at every
/// real provider: opening it again yields the same trade, so a retried or
/// doubled "pay" never takes money twice; it is the number by which
/// Alipay's and WeChat Pay's query APIs look a payment up.
pub trait PaymentProvider: Sync {
    /// Whether this deployment has keys for the method.
    fn offers(&self, method: PayMethod) -> bool;
    fn charge(
        &self,
        method: PayMethod,
        request: &ChargeRequest<'_>,
    ) -> impl Future<Output = PortResult<ChargeOutcome>> + Send;
    /// Closes an order's trade so that it can no longer be paid (before
    /// paying it another way); answers what it held when closed.
    fn close(
        &self,
        method: PayMethod,
        trade: &ChargeRequest<'_>,
    ) -> impl Future<Output = PortResult<ChargeLookup>> + Send;
    /// Pays back `amount_cents` of a transaction. The provider keeps the
    /// refund under `refund_key` (Alipay's `out_request_no`, WeChat Pay's
    /// `out_refund_no`, Stripe's `Idempotency-Key`): asked again with the
    /// same key, after a lost reply, it pays nothing more.
    fn refund(
        &self,
        method: PayMethod,
        transaction_id: &str,
        amount_cents: i64,
        refund_key: &str,
    ) -> impl Future<Output = PortResult<()>> + Send;
    fn lookup(
        &self,
        method: PayMethod,
        trade: &ChargeRequest<'_>,
    ) -> impl Future<Output = PortResult<ChargeLookup>> + Send;
}
