//! Scripted faults: which call of which operation goes wrong, and how.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{Arc, Mutex},
};

use crate::ports::{PortError, PortResult};

/// How a scripted call goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Fails before it changes anything (a backend that is down).
    Fail,
    /// Does its work, then the reply is lost: the caller sees a failure.
    LoseReply,
    /// Loses as a conditional write does to a concurrent writer.
    ConditionFailed,
    /// Writes nothing, as a transaction that met another on its items.
    TransactionConflict,
    /// Does its work, and its caller dies before hearing back: the call
    /// never returns (a simulation drops the caller).
    Crash,
    /// Answers from a read that lags: as if the latest writes had not
    /// happened yet (a provider's query served by a replica behind its
    /// primary). Operations whose reads cannot lag fail instead.
    Stale,
}

/// Every operation of every port, by its method's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    // StockScripts (the stock gate, a script or read on one shard)
    Grab,
    Release,
    Confirm,
    Publish,
    Restore,
    Split,
    Join,
    Lend,
    Receive,
    ForgetTransfer,
    Lent,
    RetireIfFinished,
    Meta,
    LayoutsOf,
    Stocks,
    Census,
    Overdue,
    UnknownOrders,
    LiveSkus,
    MarkLive,
    // PacketPool
    Load,
    Claim,
    AmendClaim,
    Counts,
    LiveCampaigns,
    RetireIfOver,
    // RateLimiter
    Admit,
    ResetLimit,
    // WaitingRoom
    JoinRoom,
    AdmitFromRoom,
    RoomLine,
    // OrderStore
    InsertOrder,
    ReplaceOrder,
    GetOrder,
    OrdersOfUser,
    OrdersWithStatus,
    LiveOrdersOfSku,
    OrdersOfSku,
    OrdersWithPaymentDue,
    // SkuStore
    GetSku,
    PutSku,
    DeleteSku,
    SkuPage,
    SkusOnSale,
    LiveSkusMatching,
    MarkPublished,
    TakeOffSale,
    SetSkuShards,
    // RecordStore
    InsertRecord,
    PutRecord,
    GetRecord,
    DeleteRecord,
    PageRecords,
    ChildCategories,
    Link,
    Unlink,
    SkusOfActivity,
    ActivitiesOfSku,
    // AccountStore
    InsertUser,
    UserCredentials,
    UpdateProfile,
    InsertAdmin,
    AdminCredentials,
    AdminPage,
    SetAdminStatus,
    AddressBook,
    ChangeAddressBook,
    // CampaignStore
    InsertCampaign,
    GetCampaign,
    CampaignsEndingAfter,
    InsertSplit,
    SplitOf,
    RecordClaim,
    ClaimOf,
    CreditsOfPackets,
    Owed,
    Credit,
    Balance,
    CreditsOfUser,
    // PaymentProvider
    Charge,
    Close,
    Refund,
    Lookup,
}

/// Which adapter an operation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    Gate,
    Ledger,
    Payments,
}

impl Op {
    pub fn port(self) -> Port {
        match self {
            Op::Charge | Op::Close | Op::Refund | Op::Lookup => Port::Payments,
            Op::InsertOrder
            | Op::ReplaceOrder
            | Op::GetOrder
            | Op::OrdersOfUser
            | Op::OrdersWithStatus
            | Op::LiveOrdersOfSku
            | Op::OrdersOfSku
            | Op::OrdersWithPaymentDue
            | Op::GetSku
            | Op::PutSku
            | Op::DeleteSku
            | Op::SkuPage
            | Op::SkusOnSale
            | Op::LiveSkusMatching
            | Op::MarkPublished
            | Op::TakeOffSale
            | Op::SetSkuShards
            | Op::InsertRecord
            | Op::PutRecord
            | Op::GetRecord
            | Op::DeleteRecord
            | Op::PageRecords
            | Op::ChildCategories
            | Op::Link
            | Op::Unlink
            | Op::SkusOfActivity
            | Op::ActivitiesOfSku
            | Op::InsertUser
            | Op::UserCredentials
            | Op::UpdateProfile
            | Op::InsertAdmin
            | Op::AdminCredentials
            | Op::AdminPage
            | Op::SetAdminStatus
            | Op::AddressBook
            | Op::ChangeAddressBook
            | Op::InsertCampaign
            | Op::GetCampaign
            | Op::CampaignsEndingAfter
            | Op::InsertSplit
            | Op::SplitOf
            | Op::RecordClaim
            | Op::ClaimOf
            | Op::CreditsOfPackets
            | Op::Owed
            | Op::Credit
            | Op::Balance
            | Op::CreditsOfUser => Port::Ledger,
            _ => Port::Gate,
        }
    }
}

/// Something another writer does just before a call.
type Interleaved = Box<dyn FnOnce() + Send>;

/// What decides, call by call, when each port call runs and what goes
/// wrong with it: a simulation's scheduler (see the `simulation` crate).
/// Every call of an adapter that has one waits for its answer first.
pub trait Director: Send + Sync {
    /// Resolves once the call of `op` may run, with the fault it meets.
    fn call(&self, op: Op) -> Pin<Box<dyn Future<Output = Option<Fault>> + Send>>;
}

#[derive(Default)]
struct Script {
    calls: HashMap<Op, u32>,
    /// (operation, the call number that fails, how)
    planned: Vec<(Op, u32, Fault)>,
    /// (operation, the call number it runs before, what happens)
    interleaved: Vec<(Op, u32, Interleaved)>,
}

#[derive(Default)]
pub struct Faults {
    script: Mutex<Script>,
    director: Mutex<Option<Arc<dyn Director>>>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").field("calls", &self.script().calls).finish()
    }
}

impl Faults {
    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script
            .lock()
            .expect("a test thread panicked holding the fault script")
    }

    /// From now on every call waits for `director`, and meets the fault it
    /// says (besides any scripted one).
    pub fn direct(&self, director: Arc<dyn Director>) {
        *self.director.lock().expect("the director lock") = Some(director);
    }

    /// The `nth` call of `op` from now (1 = the next one) goes wrong.
    pub fn inject(&self, op: Op, nth: u32, fault: Fault) {
        let mut script = self.script();
        let at = script.calls.get(&op).copied().unwrap_or(0) + nth;
        script.planned.push((op, at, fault));
    }

    /// Just before the `nth` call of `op` from now, `write` happens: another
    /// writer that gets in between a flow's read and its write.
    pub fn before(&self, op: Op, nth: u32, write: impl FnOnce() + Send + 'static) {
        let mut script = self.script();
        let at = script.calls.get(&op).copied().unwrap_or(0) + nth;
        script.interleaved.push((op, at, Box::new(write)));
    }

    /// How many calls of `op` were made so far.
    pub fn calls(&self, op: Op) -> u32 {
        self.script().calls.get(&op).copied().unwrap_or(0)
    }

    /// Runs one call of `op`, as scripted and directed: `apply` is the
    /// call's effect.
    pub(super) async fn run<T>(&self, op: Op, apply: impl FnOnce() -> PortResult<T>) -> PortResult<T> {
        let lagging = || Err(PortError::Unavailable(format!("injected: {op:?} failed")));
        self.run_read(op, apply, lagging).await
    }

    /// [`run`](Self::run) for a read that can lag: `stale` is its answer
    /// from behind.
    pub(super) async fn run_read<T>(
        &self,
        op: Op,
        apply: impl FnOnce() -> PortResult<T>,
        stale: impl FnOnce() -> PortResult<T>,
    ) -> PortResult<T> {
        let director = self.director.lock().expect("the director lock").clone();
        let directed = match director {
            Some(director) => director.call(op).await,
            None => None,
        };
        let (fault, interleaved) = {
            let mut script = self.script();
            let call = script.calls.entry(op).or_default();
            *call += 1;
            let call = *call;
            let planned = script.planned.iter().position(|(o, at, _)| *o == op && *at == call);
            let interleaved = script.interleaved.iter().position(|(o, at, _)| *o == op && *at == call);
            (
                planned.map(|index| script.planned.remove(index).2),
                interleaved.map(|index| script.interleaved.remove(index).2),
            )
        };
        if let Some(write) = interleaved {
            write();
        }
        match fault.or(directed) {
            None => apply(),
            Some(Fault::Stale) => stale(),
            Some(Fault::Fail) => Err(PortError::Unavailable(format!("injected: {op:?} failed"))),
            Some(Fault::ConditionFailed) => Err(PortError::ConditionFailed),
            Some(Fault::TransactionConflict) => Err(PortError::TransactionConflict),
            Some(Fault::Crash) => {
                let _ = apply();
                std::future::pending().await
            }
            Some(Fault::LoseReply) => {
                // The effect stands whatever it was; only the answer is gone.
                let _ = apply();
                Err(PortError::Unavailable(format!(
                    "injected: the reply to {op:?} was lost"
                )))
            }
        }
    }
}
