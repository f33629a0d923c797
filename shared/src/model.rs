//! The records of the domain. JSON field names are the seed schema's column
//! names (`tb_sku`, `tb_order`, `tb_user`, `tb_admin`) so data and habits
//! migrate 1:1; money is integer cents, instants RFC 3339 UTC (`ts`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_repr::{Deserialize_repr, Serialize_repr};

use crate::ts;

/// `tb_sku.status`: whether the SKU takes part in a flash sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize_repr, Deserialize_repr)]
#[repr(u8)]
pub enum SkuStatus {
    #[default]
    Normal = 1,
    Seckill = 2,
}

/// `tb_sku.islock`: hot items are locked (isolated) by operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize_repr, Deserialize_repr)]
#[repr(u8)]
pub enum Lock {
    #[default]
    Unlocked = 1,
    Locked = 2,
}

pub const DEFAULT_PAY_TIMEOUT_SECONDS: u32 = 900;

/// How a sale (a SKU or a rain) admits its crowd, set by its operator; all
/// off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guard {
    /// Grabs (claims) need a ticket (`Sale-Ticket` header) from the sale's
    /// `…/ticket` route, issued to one shopper for one sale once it is open.
    #[serde(default)]
    pub ticket_required: bool,
    /// A ticket costs a proof of work: this many leading zero bits of
    /// SHA-256 (0 none). Any difficulty implies tickets.
    #[serde(default)]
    pub challenge_difficulty: u8,
    /// Accounts younger than this many hours may not grab (claim).
    #[serde(default)]
    pub min_account_age_hours: u32,
    /// A waiting room (0 none): shoppers take a place in the sale's line
    /// (`…/queue`), and this many places a second are called from the
    /// opening; only a called shopper gets a ticket. Implies tickets.
    #[serde(default)]
    pub waiting_room_rate: u32,
}

impl Guard {
    pub fn needs_ticket(&self) -> bool {
        self.ticket_required || self.challenge_difficulty > 0 || self.has_waiting_room()
    }

    pub fn has_waiting_room(&self) -> bool {
        self.waiting_room_rate > 0
    }
}

fn default_pay_timeout() -> u32 {
    DEFAULT_PAY_TIMEOUT_SECONDS
}

/// How long after delivery a shopper may ask to return an order, unless
/// the SKU says otherwise: the 7 days of China's no-reason returns
/// (七天无理由退货).
pub const DEFAULT_RETURN_DAYS: u32 = 7;

fn default_return_days() -> u32 {
    DEFAULT_RETURN_DAYS
}

/// What an operator writes about a SKU: every `tb_sku` column that is not
/// server-assigned, plus the pay window of its flash-sale orders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkuFields {
    pub name: String,
    pub price: i64,
    pub seckill_price: i64,
    pub seckill_num: i64,
    #[serde(with = "ts")]
    pub seckill_begin: DateTime<Utc>,
    #[serde(with = "ts")]
    pub seckill_end: DateTime<Utc>,
    #[serde(default = "default_pay_timeout")]
    pub pay_timeout_seconds: u32,
    /// Days after delivery its orders may be returned; 0 takes none back.
    #[serde(default = "default_return_days")]
    pub return_days: u32,
    #[serde(default)]
    pub num: Option<i64>,
    #[serde(default)]
    pub alert_num: Option<i64>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub images: Vec<String>,
    #[serde(default)]
    pub spu_id: Option<String>,
    #[serde(default)]
    pub category1_id: Option<String>,
    #[serde(default)]
    pub category2_id: Option<String>,
    #[serde(default)]
    pub category3_id: Option<String>,
    #[serde(default)]
    pub category1_name: Option<String>,
    #[serde(default)]
    pub category2_name: Option<String>,
    #[serde(default)]
    pub category3_name: Option<String>,
    #[serde(default)]
    pub brand_id: Option<String>,
    #[serde(default)]
    pub brand_name: Option<String>,
    #[serde(default)]
    pub spec: Option<String>,
    #[serde(default)]
    pub islock: Lock,
    #[serde(default)]
    pub guard: Guard,
}

impl SkuFields {
    /// The required fields; every optional `tb_sku` column left empty.
    pub fn new(
        name: &str,
        (price, seckill_price): (i64, i64),
        seckill_num: i64,
        (seckill_begin, seckill_end): (DateTime<Utc>, DateTime<Utc>),
    ) -> Self {
        SkuFields {
            name: name.to_owned(),
            price,
            seckill_price,
            seckill_num,
            seckill_begin,
            seckill_end,
            pay_timeout_seconds: DEFAULT_PAY_TIMEOUT_SECONDS,
            return_days: DEFAULT_RETURN_DAYS,
            num: None,
            alert_num: None,
            image: None,
            images: Vec::new(),
            spu_id: None,
            category1_id: None,
            category2_id: None,
            category3_id: None,
            category1_name: None,
            category2_name: None,
            category3_name: None,
            brand_id: None,
            brand_name: None,
            spec: None,
            islock: Lock::Unlocked,
            guard: Guard::default(),
        }
    }
}

/// A SKU as stored and shown: the operator's fields plus what the server
/// keeps about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sku {
    pub id: String,
    #[serde(flatten)]
    pub fields: SkuFields,
    pub status: SkuStatus,
    #[serde(default)]
    pub sale_num: i64,
    #[serde(default)]
    pub comment_num: i64,
    #[serde(with = "ts")]
    pub create_time: DateTime<Utc>,
    #[serde(with = "ts")]
    pub update_time: DateTime<Utc>,
    /// Set the first time the SKU is loaded into Redis; from then on its
    /// stock lives there and the ledger is what rebuilds it.
    #[serde(with = "ts::option", default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
    /// Over how many Redis shards its stock is split, once it was found hot
    /// (see `gate::shards`); kept here so a rebuild after Redis lost data
    /// knows where each shopper's orders belong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
}

impl Sku {
    /// Whether a write of this record puts it in the on-sale listing:
    /// published, and not written after its sale ended (an edit of an ended
    /// sale leaves it out; extending the sale puts it back).
    pub fn listed_on_sale(&self) -> bool {
        self.status == SkuStatus::Seckill && self.fields.seckill_end > self.update_time
    }
}

/// Where a SKU's sale stands, as shown to shoppers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SaleState {
    Upcoming,
    Active,
    Ended,
    SoldOut,
}

impl SaleState {
    pub fn of(fields: &SkuFields, remaining: i64, now: DateTime<Utc>) -> Self {
        Self::of_stock(fields.seckill_begin, fields.seckill_end, remaining, now)
    }

    /// Where a window with `remaining` left stands at `now` (a rain's pool
    /// as a SKU's stock).
    pub fn of_stock(begin: DateTime<Utc>, end: DateTime<Utc>, remaining: i64, now: DateTime<Utc>) -> Self {
        match Self::of_window(begin, end, now) {
            SaleState::Active if remaining <= 0 => SaleState::SoldOut,
            state => state,
        }
    }

    /// Where a window stands at `now`, whatever is left.
    pub fn of_window(begin: DateTime<Utc>, end: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        if now < begin {
            SaleState::Upcoming
        } else if now >= end {
            SaleState::Ended
        } else {
            SaleState::Active
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    /// To be paid in cash on delivery: it ships as a paid order does.
    Confirmed,
    Shipped,
    Completed,
    /// Its shopper asked to send it back; the operator decides on receipt.
    ReturnRequested,
    /// Taken back, its payment refunded. The unit stays sold: a sale's
    /// count is of units sold, not of goods kept.
    Returned,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "PENDING_PAYMENT",
            OrderStatus::Paid => "PAID",
            OrderStatus::Confirmed => "CONFIRMED",
            OrderStatus::Shipped => "SHIPPED",
            OrderStatus::Completed => "COMPLETED",
            OrderStatus::ReturnRequested => "RETURN_REQUESTED",
            OrderStatus::Returned => "RETURNED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    /// Whether the shopper has settled how the order is paid (paid, or
    /// chosen cash on delivery): it can no longer be paid or cancelled.
    pub fn settled(self) -> bool {
        !matches!(self, OrderStatus::PendingPayment | OrderStatus::Cancelled)
    }

    /// Whether an order in this state keeps its unit sold.
    pub fn holds_unit(self) -> bool {
        self != OrderStatus::Cancelled
    }
}

/// Why an order was closed without being paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CloseReason {
    CancelledByUser,
    PaymentTimeout,
    /// The unit was reserved but the order could not be written; the record
    /// exists so a late write of it can never succeed.
    OrderWriteFailed,
}

/// The seed's `pay_type`: paid online (through a [`PayMethod`]) or in cash
/// to the courier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayType {
    #[default]
    Online,
    CashOnDelivery,
}

/// The seed's `pay_status`, read from the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayStatus {
    Unpaid,
    Paid,
    /// The provider declined the last attempt; the shopper may try again.
    Failed,
}

/// The seed's `consign_status`, read from the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsignStatus {
    Unshipped,
    Shipped,
    Received,
}

/// The seed's `order_status`, read from the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedOrderStatus {
    Incomplete,
    Complete,
    Returned,
}

/// How a shopper pays an order online: through which provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayMethod {
    /// The local stand-in: answers at once, moves no money.
    #[default]
    Sandbox,
    Alipay,
    Wechat,
    Stripe,
}

impl PayMethod {
    pub const ALL: [PayMethod; 4] = [
        PayMethod::Sandbox,
        PayMethod::Alipay,
        PayMethod::Wechat,
        PayMethod::Stripe,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PayMethod::Sandbox => "sandbox",
            PayMethod::Alipay => "alipay",
            PayMethod::Wechat => "wechat",
            PayMethod::Stripe => "stripe",
        }
    }

    pub fn parse(name: &str) -> Option<PayMethod> {
        PayMethod::ALL.into_iter().find(|method| method.as_str() == name)
    }
}

/// What a shopper chose to pay an order with: a provider by its method's
/// name, or `cod`, cash on delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum PayChoice {
    Online(PayMethod),
    OnDelivery,
}

impl From<PayChoice> for &'static str {
    fn from(choice: PayChoice) -> Self {
        match choice {
            PayChoice::Online(method) => method.as_str(),
            PayChoice::OnDelivery => "cod",
        }
    }
}

impl Default for PayChoice {
    fn default() -> Self {
        PayChoice::Online(PayMethod::default())
    }
}

impl TryFrom<String> for PayChoice {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        match name.as_str() {
            "cod" => Ok(PayChoice::OnDelivery),
            _ => PayMethod::parse(&name)
                .map(PayChoice::Online)
                .ok_or_else(|| format!("unknown method `{name}`: sandbox, alipay, wechat, stripe or cod")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    /// A payment arrived after the order was closed; it is owed back, and
    /// the payments job retries the refund until the provider takes it.
    Pending,
    Refunded,
}

/// How long after an order's last change a payment attempt may still be in
/// flight: well over the pay function's timeout (10 s) and the SDK's. The
/// payments job leaves younger attempts alone, so it never asks the
/// provider about a charge that is still being made.
pub const PAYMENT_IN_FLIGHT_SECONDS: i64 = 60;

/// A flash-sale order (`tb_order`). One unit of one SKU for one shopper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub sku_id: String,
    pub name: String,
    pub username: String,
    pub price: i64,
    pub total_num: u32,
    pub status: OrderStatus,
    #[serde(default)]
    pub pay_type: PayType,
    #[serde(with = "ts")]
    pub pay_deadline: DateTime<Utc>,
    #[serde(with = "ts")]
    pub create_time: DateTime<Utc>,
    #[serde(with = "ts")]
    pub update_time: DateTime<Utc>,
    #[serde(with = "ts::option", default, skip_serializing_if = "Option::is_none")]
    pub pay_time: Option<DateTime<Utc>>,
    #[serde(with = "ts::option", default, skip_serializing_if = "Option::is_none")]
    pub close_time: Option<DateTime<Utc>>,
    #[serde(with = "ts::option", default, skip_serializing_if = "Option::is_none")]
    pub consign_time: Option<DateTime<Utc>>,
    #[serde(with = "ts::option", default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_reason: Option<CloseReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// Set before the provider is asked to charge the order, cleared once
    /// its answer is recorded (paid, declined, or a refund owed). One left
    /// set means the answer was lost, and the payments job asks the
    /// provider for it.
    #[serde(with = "ts::option", default, skip_serializing_if = "Option::is_none")]
    pub payment_started: Option<DateTime<Utc>>,
    /// Whom the last payment attempt went to: the payments job asks that
    /// provider, and paying another way first closes its trade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_method: Option<PayMethod>,
    /// Why the provider declined the last attempt; cleared by the next
    /// one. The shopper may try again until the deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_failure: Option<String>,
    /// The provider's own id of the trade `pay_method` holds, where it has
    /// one to look it up by (a Stripe PaymentIntent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_status: Option<RefundStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_transaction_id: Option<String>,
    /// Whom that transaction is refunded through (the order may have been
    /// paid another way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_method: Option<PayMethod>,
    /// When its shopper last asked to return it, and why.
    #[serde(with = "ts::option", default, skip_serializing_if = "Option::is_none")]
    pub return_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_reason: Option<String>,
    /// Why the operator refused that return (the order is `COMPLETED`
    /// again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_refusal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver_contact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver_mobile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver_address: Option<String>,
    /// Bumped by every change; writes are conditional on the version they
    /// read, so two writers can never both change the same order.
    #[serde(default)]
    pub version: u32,
}

impl Order {
    /// A new order for a unit the gate has just reserved.
    pub fn pending(id: String, sku_id: &str, unit: &ReservedUnit, username: &str, now: DateTime<Utc>) -> Self {
        Order {
            id,
            sku_id: sku_id.to_owned(),
            name: unit.name.clone(),
            username: username.to_owned(),
            price: unit.price,
            total_num: 1,
            status: OrderStatus::PendingPayment,
            pay_type: PayType::Online,
            pay_deadline: unit.pay_deadline,
            create_time: now,
            update_time: now,
            pay_time: None,
            close_time: None,
            consign_time: None,
            end_time: None,
            close_reason: None,
            transaction_id: None,
            payment_started: None,
            pay_method: None,
            payment_failure: None,
            trade_id: None,
            refund_status: None,
            refund_transaction_id: None,
            refund_method: None,
            return_time: None,
            return_reason: None,
            return_refusal: None,
            receiver_contact: None,
            receiver_mobile: None,
            receiver_address: None,
            version: 0,
        }
    }

    /// When the payments job should settle this order's money, if it is
    /// unsettled: a refund owed at once, a charge with no recorded answer
    /// once the pay that asked for it cannot still be running.
    pub fn payment_due(&self) -> Option<DateTime<Utc>> {
        if self.refund_status == Some(RefundStatus::Pending) {
            Some(self.update_time)
        } else {
            self.payment_started
                .map(|_| self.update_time + chrono::Duration::seconds(PAYMENT_IN_FLIGHT_SECONDS))
        }
    }

    /// The merchant's number for the refund of one of this order's
    /// charges: the provider's idempotency key for it, the same on every
    /// retry, and another for each charge (at most 64 characters, as
    /// Alipay's `out_request_no` and WeChat Pay's `out_refund_no`).
    pub fn refund_key(&self, transaction_id: &str) -> String {
        format!("R{}-{transaction_id}", self.id)
    }

    /// When the shopper can no longer pay: the provider's trade expires at
    /// the pay deadline, and its books may lag a moment behind.
    pub fn pay_window_closes(&self) -> DateTime<Utc> {
        self.pay_deadline + chrono::Duration::seconds(PAYMENT_IN_FLIGHT_SECONDS)
    }

    pub fn payment_unsettled(&self) -> bool {
        self.payment_due().is_some()
    }

    /// Whether a provider holds this order's payment: paid online, and
    /// neither closed nor returned.
    pub fn holds_charge(&self) -> bool {
        self.pay_type == PayType::Online && self.status.settled() && self.status != OrderStatus::Returned
    }

    /// The seed's three status columns beside `status`, read from it.
    pub fn columns(&self) -> SeedColumns {
        SeedColumns {
            pay_status: match (self.pay_time, &self.payment_failure) {
                (Some(_), _) => PayStatus::Paid,
                (None, Some(_)) => PayStatus::Failed,
                (None, None) => PayStatus::Unpaid,
            },
            consign_status: match (self.consign_time, self.end_time) {
                (_, Some(_)) => ConsignStatus::Received,
                (Some(_), None) => ConsignStatus::Shipped,
                (None, None) => ConsignStatus::Unshipped,
            },
            order_status: match self.status {
                OrderStatus::Completed | OrderStatus::ReturnRequested => SeedOrderStatus::Complete,
                OrderStatus::Returned => SeedOrderStatus::Returned,
                _ => SeedOrderStatus::Incomplete,
            },
        }
    }
}

/// The seed's status columns that are read from an order, never set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SeedColumns {
    pub pay_status: PayStatus,
    pub consign_status: ConsignStatus,
    pub order_status: SeedOrderStatus,
}

/// An order as the ledger writes it and the API answers it: its fields
/// and, for readers of the seed's schema, its [`SeedColumns`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderRecord {
    #[serde(flatten)]
    pub order: Order,
    #[serde(flatten)]
    pub columns: SeedColumns,
}

impl From<Order> for OrderRecord {
    fn from(order: Order) -> Self {
        OrderRecord {
            columns: order.columns(),
            order,
        }
    }
}

/// What the gate hands out for a successful grab: the terms the unit was
/// sold at, read in the same atomic step as the decrement.
#[derive(Debug, Clone, PartialEq)]
pub struct ReservedUnit {
    pub pay_deadline: DateTime<Utc>,
    pub price: i64,
    pub name: String,
}

/// A shopper account (`tb_user`), without its password hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(with = "ts")]
    pub created: DateTime<Utc>,
    #[serde(with = "ts")]
    pub updated: DateTime<Utc>,
}

/// `tb_admin.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize_repr, Deserialize_repr)]
#[repr(u8)]
pub enum AdminStatus {
    #[default]
    Enabled = 1,
    Disabled = 2,
}

/// An operator account (`tb_admin`), without its password hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Admin {
    pub id: String,
    pub login_name: String,
    pub status: AdminStatus,
}

/// `tb_activity.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize_repr, Deserialize_repr)]
#[repr(u8)]
pub enum ActivityStatus {
    #[default]
    Open = 1,
    NotOpen = 2,
}

/// `tb_activity.is_del`: activities are soft-deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize_repr, Deserialize_repr)]
#[repr(u8)]
pub enum Deleted {
    #[default]
    No = 1,
    Yes = 2,
}

/// `tb_seckill_time.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize_repr, Deserialize_repr)]
#[repr(u8)]
pub enum Enabled {
    #[default]
    Yes = 1,
    No = 2,
}

/// A catalog record as stored and shown: its id and the fields an operator
/// writes (`POST` assigns the id, `PUT /…/{id}` lets the operator choose it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored<F> {
    pub id: String,
    #[serde(flatten)]
    pub fields: F,
}

/// A promotion (`tb_activity`) grouping the SKUs linked to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityFields {
    pub name: String,
    #[serde(default)]
    pub status: ActivityStatus,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub startdate: Option<chrono::NaiveDate>,
    #[serde(with = "ts::option", default)]
    pub begintime: Option<DateTime<Utc>>,
    #[serde(with = "ts::option", default)]
    pub endtime: Option<DateTime<Utc>>,
    /// Hours; computed from `begintime` and `endtime` when left out.
    #[serde(default)]
    pub total_time: Option<f64>,
    #[serde(default)]
    pub is_del: Deleted,
}

/// A daily time slot of the seckill timetable (`tb_seckill_time`); times of
/// day are `HH:MM:SS` in the sale's time zone (`SLOT_UTC_OFFSET`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotFields {
    pub name: String,
    pub starttime: chrono::NaiveTime,
    pub endtime: chrono::NaiveTime,
    /// Hours; computed from `starttime` and `endtime` when left out.
    #[serde(default)]
    pub total_time: Option<f64>,
    #[serde(default)]
    pub status: Enabled,
    #[serde(default)]
    pub sort: i32,
}

/// `tb_brand`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrandFields {
    pub name: String,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub letter: Option<String>,
    #[serde(default)]
    pub seq: i32,
}

/// `tb_category`: a three-level tree through `parent_id` (`"0"` at the top).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryFields {
    pub name: String,
    #[serde(default)]
    pub goods_num: i64,
    /// `"1"` shown, `"0"` hidden.
    #[serde(default = "yes")]
    pub is_show: String,
    /// `"1"` in the navigation menu, `"0"` not.
    #[serde(default = "no")]
    pub is_menu: String,
    #[serde(default)]
    pub seq: i32,
    #[serde(default = "root_category")]
    pub parent_id: String,
    #[serde(default)]
    pub template_id: Option<i64>,
}

fn yes() -> String {
    "1".into()
}

fn no() -> String {
    "0".into()
}

fn root_category() -> String {
    ROOT_CATEGORY.into()
}

/// The root of the category tree, as `parent_id`.
pub const ROOT_CATEGORY: &str = "0";

/// The kinds of catalog record that share one life cycle as [`Stored`]
/// records (the domain's `catalog` module; SKUs have a life of their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    Activity,
    Slot,
    Brand,
    Category,
}

impl RecordKind {
    /// Its name in messages ("brand not found").
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Activity => "activity",
            RecordKind::Slot => "slot",
            RecordKind::Brand => "brand",
            RecordKind::Category => "category",
        }
    }
}

/// The fields of one kind of catalog record, as stored.
pub trait Record: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    const KIND: RecordKind;
}

impl Record for ActivityFields {
    const KIND: RecordKind = RecordKind::Activity;
}

impl Record for SlotFields {
    const KIND: RecordKind = RecordKind::Slot;
}

impl Record for BrandFields {
    const KIND: RecordKind = RecordKind::Brand;
}

impl Record for CategoryFields {
    const KIND: RecordKind = RecordKind::Category;
}

pub type Activity = Stored<ActivityFields>;
pub type Slot = Stored<SlotFields>;
pub type Brand = Stored<BrandFields>;
pub type Category = Stored<CategoryFields>;

/// The `tb_address` fields a shopper writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddressFields {
    pub contact: String,
    pub phone: String,
    pub address: String,
    #[serde(default)]
    pub provinceid: Option<String>,
    #[serde(default)]
    pub cityid: Option<String>,
    #[serde(default)]
    pub areaid: Option<String>,
    /// `"1"` the default address, `"0"` not.
    #[serde(default = "no")]
    pub is_default: String,
    #[serde(default)]
    pub alias: Option<String>,
}

/// A shipping address (`tb_address`), owned by one shopper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub id: String,
    pub username: String,
    #[serde(flatten)]
    pub fields: AddressFields,
}

/// The copy of a shipping address an order keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receiver {
    pub contact: String,
    pub mobile: String,
    pub address: String,
}

/// A SKU taking part in an activity (`tb_sku_act`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuActivity {
    pub activity_id: String,
    pub sku_id: String,
}

/// The `tb_user` fields a shopper edits (`PUT /me`); what is left out is
/// cleared.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Profile {
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub nick_name: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// A red-packet rain: `total_amount` cents split into `count` packets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    pub total_amount: i64,
    pub count: u32,
    pub min_amount: i64,
    #[serde(with = "ts")]
    pub begin: DateTime<Utc>,
    #[serde(with = "ts")]
    pub end: DateTime<Utc>,
    #[serde(with = "ts")]
    pub create_time: DateTime<Utc>,
    #[serde(default)]
    pub guard: Guard,
    /// Packets credited so far and their sum, kept by the payout job in
    /// the same transaction as each credit.
    #[serde(default)]
    pub credited: u32,
    #[serde(default)]
    pub credited_amount: i64,
}

/// One packet of a campaign's pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packet {
    pub red_packet_id: String,
    pub amount: i64,
}

impl Packet {
    /// Packet `number` of a campaign: its id is the campaign's id and the
    /// number, so a split stored as bare amounts names its packets again.
    pub fn numbered(campaign_id: &str, number: usize, amount: i64) -> Self {
        Packet {
            red_packet_id: format!("{campaign_id}-{number:06}"),
            amount,
        }
    }
}

/// A run of a campaign's split as the ledger keeps it (the `packet_splits`
/// table, a few thousand amounts per item to stay under DynamoDB's item
/// size): the amounts of packets `first`, `first + 1`, … in pool order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitChunk {
    pub campaign_id: String,
    /// `first`, zero-padded, so the chunks sort in pool order.
    pub chunk: String,
    pub first: usize,
    pub amounts: Vec<i64>,
}

/// One shopper's claim of one packet, as the ledger records it when the
/// claim is made and the payout credits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRecord {
    pub red_packet_id: String,
    pub amount: i64,
    pub username: String,
    pub campaign_id: String,
    /// When it was claimed (ms since the epoch), for the payout lag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<i64>,
}

/// A packet's credit (the `credits` table): owed from the moment the
/// packet is claimed (the claim is acknowledged only once this is
/// written), credited to the balance by the payout, once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credit {
    pub red_packet_id: String,
    pub campaign_id: String,
    pub username: String,
    pub amount: i64,
    #[serde(with = "ts::option", default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<DateTime<Utc>>,
    /// When the payout put it in the balance; `None` while owed.
    #[serde(with = "ts::option", default, skip_serializing_if = "Option::is_none")]
    pub credited_at: Option<DateTime<Utc>>,
    /// While owed, the shard of its campaign's payout queue it waits in
    /// (`<campaign_id>#<nn>`, a sparse index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_shard: Option<String>,
}

/// Which packet a shopper has of a campaign (the `claimants` table): the
/// ledger's word that they have one, so a cache that forgot cannot give
/// them a second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claimant {
    pub username: String,
    pub campaign_id: String,
    pub red_packet_id: String,
    pub amount: i64,
}
