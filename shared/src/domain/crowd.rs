//! Grab and claim as the crowd reaches them: what an instance checks before
//! a tap may cost the gate a script call.
//!
//! Almost every tap of a flash sale loses, and most lose to `SOLD_OUT` or
//! `EXHAUSTED`. Once an instance has heard that answer from the gate it
//! repeats it from memory ([`SoldOutMemo`]) for a bounded time, then asks
//! again: a unit a cancel or timeout gives back is on sale again for this
//! instance within that bound.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{
    flash_sale::{self, PublishedSku},
    recent::Recent,
    red_packet,
};
use crate::{
    error::Error,
    model::{Order, Packet},
    ports::{CampaignStore, OrderStore, PacketPool, Ports, SkuStore, StockGate},
};

/// Which sale a memo is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sale<'a> {
    Sku(&'a str),
    Campaign(&'a str),
}

impl Sale<'_> {
    fn over(self) -> Error {
        match self {
            Sale::Sku(_) => Error::SoldOut,
            Sale::Campaign(_) => Error::Exhausted,
        }
    }
}

/// The sales this instance has lately heard are sold out or exhausted,
/// each remembered for at most its time to live.
pub struct SoldOutMemo {
    /// `None` when the time to live is zero: every tap asks the gate.
    sales: Option<Sales>,
}

struct Sales {
    skus: Recent<()>,
    campaigns: Recent<()>,
}

impl Sales {
    fn of<'a>(&self, sale: Sale<'a>) -> (&Recent<()>, &'a str) {
        match sale {
            Sale::Sku(id) => (&self.skus, id),
            Sale::Campaign(id) => (&self.campaigns, id),
        }
    }
}

/// Sales sold out at once on one instance; more only empties the memo.
const SALES_REMEMBERED: usize = 10_000;

impl SoldOutMemo {
    pub fn new(ttl: Duration) -> Self {
        SoldOutMemo {
            sales: (!ttl.is_zero()).then(|| Sales {
                skus: Recent::new(ttl, SALES_REMEMBERED),
                campaigns: Recent::new(ttl, SALES_REMEMBERED),
            }),
        }
    }

    /// `SOLD_OUT` or `EXHAUSTED` if the sale is remembered as over.
    pub fn check(&self, sale: Sale<'_>) -> Result<(), Error> {
        let Some(sales) = &self.sales else { return Ok(()) };
        let (memo, id) = sales.of(sale);
        match memo.get(id) {
            Some(()) => Err(sale.over()),
            None => Ok(()),
        }
    }

    /// Remembers the sale if `result` says it is over.
    pub fn note<T>(&self, sale: Sale<'_>, result: Result<T, Error>) -> Result<T, Error> {
        if let (Some(sales), Err(Error::SoldOut | Error::Exhausted)) = (&self.sales, &result) {
            let (memo, id) = sales.of(sale);
            memo.put(id, ());
        }
        result
    }

    /// Forgets the sale: its operator published it again, perhaps with
    /// more stock.
    pub fn forget(&self, sale: Sale<'_>) {
        if let Some(sales) = &self.sales {
            let (memo, id) = sales.of(sale);
            memo.remove(id);
        }
    }
}

/// What an instance keeps to turn the crowd away cheaply.
pub struct CrowdControl {
    pub sold_out: SoldOutMemo,
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
    ports: Ports<'_, impl StockGate, impl OrderStore + SkuStore, impl Sync>,
    control: &CrowdControl,
    shopper: impl FnOnce() -> Result<String, Error>,
    sku_id: &str,
    now: DateTime<Utc>,
) -> Result<Order, Error> {
    let sale = Sale::Sku(sku_id);
    control.sold_out.check(sale)?;
    let username = shopper()?;
    let result = flash_sale::grab(ports, &username, sku_id, now).await;
    control.sold_out.note(sale, result)
}

/// A shopper's claim, answered from memory when the rain is known
/// exhausted, before `shopper` is asked who is calling (as [`grab`]).
pub async fn claim(
    ports: Ports<'_, impl PacketPool, impl CampaignStore, impl Sync>,
    control: &CrowdControl,
    shopper: impl FnOnce() -> Result<String, Error>,
    campaign_id: &str,
    now: DateTime<Utc>,
) -> Result<Packet, Error> {
    let sale = Sale::Campaign(campaign_id);
    control.sold_out.check(sale)?;
    let username = shopper()?;
    let result = red_packet::claim(ports, campaign_id, &username, now).await;
    control.sold_out.note(sale, result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{
            flash_sale::{
                cancel,
                tests::{now, on_sale},
            },
            red_packet::tests::{now as rain_time, rain},
        },
        memory::{Memory, Op},
    };

    const MEMO: Duration = Duration::from_millis(300);

    fn who(username: &str) -> impl FnOnce() -> Result<String, Error> {
        let username = username.to_owned();
        move || Ok(username)
    }

    fn control() -> CrowdControl {
        CrowdControl {
            sold_out: SoldOutMemo::new(MEMO),
        }
    }

    #[tokio::test]
    async fn a_sold_out_sku_is_answered_from_memory_without_the_gate() {
        let memory = Memory::default();
        let control = control();
        let sku = on_sale(&memory, 1).await;
        grab(memory.ports(), &control, who("alice"), &sku, now()).await.unwrap();
        let lost = grab(memory.ports(), &control, who("bob"), &sku, now()).await;
        assert!(matches!(lost, Err(Error::SoldOut)), "{lost:?}");
        let asked = memory.gate.faults.calls(Op::Reserve);
        let remembered = grab(memory.ports(), &control, who("carol"), &sku, now()).await;
        assert!(matches!(remembered, Err(Error::SoldOut)), "{remembered:?}");
        assert_eq!(memory.gate.faults.calls(Op::Reserve), asked, "the gate was not asked");
    }

    #[tokio::test]
    async fn a_sold_out_answer_comes_before_asking_who_is_calling() {
        let memory = Memory::default();
        let control = control();
        let sku = on_sale(&memory, 1).await;
        grab(memory.ports(), &control, who("alice"), &sku, now()).await.unwrap();
        let anonymous = || Err(Error::Unauthorized("no token"));
        let first = grab(memory.ports(), &control, anonymous, &sku, now()).await;
        assert!(matches!(first, Err(Error::Unauthorized(_))), "not yet known: {first:?}");
        grab(memory.ports(), &control, who("bob"), &sku, now())
            .await
            .unwrap_err();
        let then = grab(memory.ports(), &control, anonymous, &sku, now()).await;
        assert!(matches!(then, Err(Error::SoldOut)), "{then:?}");
    }

    #[tokio::test]
    async fn a_unit_given_back_is_sellable_again_once_the_memo_expires() {
        let memory = Memory::default();
        let control = control();
        let sku = on_sale(&memory, 1).await;
        let order = grab(memory.ports(), &control, who("alice"), &sku, now()).await.unwrap();
        let lost = grab(memory.ports(), &control, who("bob"), &sku, now()).await;
        assert!(matches!(lost, Err(Error::SoldOut)), "{lost:?}");
        cancel(memory.ports(), "alice", &order.id, now()).await.unwrap();
        tokio::time::sleep(MEMO + Duration::from_millis(50)).await;
        let won = grab(memory.ports(), &control, who("bob"), &sku, now()).await.unwrap();
        assert_eq!(won.username, "bob");
    }

    #[tokio::test]
    async fn a_forgotten_sale_asks_the_gate_again_at_once() {
        let memory = Memory::default();
        let control = control();
        let sku = on_sale(&memory, 1).await;
        let order = grab(memory.ports(), &control, who("alice"), &sku, now()).await.unwrap();
        grab(memory.ports(), &control, who("bob"), &sku, now())
            .await
            .unwrap_err();
        cancel(memory.ports(), "alice", &order.id, now()).await.unwrap();
        control.sold_out.forget(Sale::Sku(&sku));
        grab(memory.ports(), &control, who("bob"), &sku, now()).await.unwrap();
    }

    #[tokio::test]
    async fn an_exhausted_rain_is_answered_from_memory() {
        let memory = Memory::default();
        let control = control();
        let campaign = rain(&memory, 100, 1).await.id;
        claim(memory.ports(), &control, who("alice"), &campaign, rain_time())
            .await
            .unwrap();
        let late = claim(memory.ports(), &control, who("bob"), &campaign, rain_time()).await;
        assert!(matches!(late, Err(Error::Exhausted)), "{late:?}");
        let asked = memory.gate.faults.calls(Op::Claim);
        let remembered = claim(memory.ports(), &control, who("carol"), &campaign, rain_time()).await;
        assert!(matches!(remembered, Err(Error::Exhausted)), "{remembered:?}");
        assert_eq!(memory.gate.faults.calls(Op::Claim), asked, "the gate was not asked");
    }

    #[tokio::test]
    async fn a_memo_of_zero_always_asks_the_gate() {
        let memory = Memory::default();
        let control = CrowdControl {
            sold_out: SoldOutMemo::new(Duration::ZERO),
        };
        let sku = on_sale(&memory, 1).await;
        let order = grab(memory.ports(), &control, who("alice"), &sku, now()).await.unwrap();
        grab(memory.ports(), &control, who("bob"), &sku, now())
            .await
            .unwrap_err();
        cancel(memory.ports(), "alice", &order.id, now()).await.unwrap();
        grab(memory.ports(), &control, who("bob"), &sku, now()).await.unwrap();
    }
}
