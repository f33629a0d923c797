//! The sold-out memo: a `SOLD_OUT` or `EXHAUSTED` the gate answered,
//! repeated from memory for a bounded time.

use std::time::Duration;

use super::Sale;
use crate::{domain::recent::Recent, error::Error};

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
pub(super) const SALES_REMEMBERED: usize = 10_000;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::admission::tests::*;

    #[tokio::test]
    async fn a_sold_out_sku_is_answered_from_memory_without_the_gate() {
        let memory = Memory::default();
        let control = control();
        let sku = on_sale(&memory, 1).await;
        grab(memory.ports(), &control, who("alice"), None, &sku, now())
            .await
            .unwrap();
        let lost = grab(memory.ports(), &control, who("bob"), None, &sku, now()).await;
        assert!(matches!(lost, Err(Error::SoldOut)), "{lost:?}");
        let asked = memory.gate.faults.calls(Op::Grab);
        let remembered = grab(memory.ports(), &control, who("carol"), None, &sku, now()).await;
        assert!(matches!(remembered, Err(Error::SoldOut)), "{remembered:?}");
        assert_eq!(memory.gate.faults.calls(Op::Grab), asked, "the gate was not asked");
    }

    #[tokio::test]
    async fn a_sold_out_answer_comes_before_asking_who_is_calling() {
        let memory = Memory::default();
        let control = control();
        let sku = on_sale(&memory, 1).await;
        grab(memory.ports(), &control, who("alice"), None, &sku, now())
            .await
            .unwrap();
        let anonymous = || Err(Error::Unauthorized("no token"));
        let first = grab(memory.ports(), &control, anonymous, None, &sku, now()).await;
        assert!(matches!(first, Err(Error::Unauthorized(_))), "not yet known: {first:?}");
        grab(memory.ports(), &control, who("bob"), None, &sku, now())
            .await
            .unwrap_err();
        let then = grab(memory.ports(), &control, anonymous, None, &sku, now()).await;
        assert!(matches!(then, Err(Error::SoldOut)), "{then:?}");
    }

    /// A one-unit SKU that alice bought, bob lost to `SOLD_OUT` (which
    /// `control` may remember), and alice gave back.
    async fn sold_out_then_given_back(memory: &Memory, control: &CrowdControl) -> String {
        let sku = on_sale(memory, 1).await;
        let order = grab(memory.ports(), control, who("alice"), None, &sku, now())
            .await
            .unwrap();
        let lost = grab(memory.ports(), control, who("bob"), None, &sku, now()).await;
        assert!(matches!(lost, Err(Error::SoldOut)), "{lost:?}");
        cancel(memory.ports(), "alice", &order.id, now()).await.unwrap();
        sku
    }

    #[tokio::test]
    async fn a_unit_given_back_is_sellable_again_once_the_memo_expires() {
        let memory = Memory::default();
        let control = control();
        let sku = sold_out_then_given_back(&memory, &control).await;
        tokio::time::sleep(MEMO + Duration::from_millis(50)).await;
        let won = grab(memory.ports(), &control, who("bob"), None, &sku, now())
            .await
            .unwrap();
        assert_eq!(won.username, "bob");
    }

    #[tokio::test]
    async fn a_forgotten_sale_asks_the_gate_again_at_once() {
        let memory = Memory::default();
        let control = control();
        let sku = sold_out_then_given_back(&memory, &control).await;
        control.sold_out.forget(Sale::Sku(&sku));
        grab(memory.ports(), &control, who("bob"), None, &sku, now())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_exhausted_rain_is_answered_from_memory() {
        let memory = Memory::default();
        let control = control();
        let campaign = rain(&memory, 100, 1).await.id;
        claim(memory.ports(), &control, who("alice"), None, &campaign, rain_time())
            .await
            .unwrap();
        let late = claim(memory.ports(), &control, who("bob"), None, &campaign, rain_time()).await;
        assert!(matches!(late, Err(Error::Exhausted)), "{late:?}");
        let asked = memory.gate.faults.calls(Op::Claim);
        let remembered = claim(memory.ports(), &control, who("carol"), None, &campaign, rain_time()).await;
        assert!(matches!(remembered, Err(Error::Exhausted)), "{remembered:?}");
        assert_eq!(memory.gate.faults.calls(Op::Claim), asked, "the gate was not asked");
    }

    #[tokio::test]
    async fn a_memo_of_zero_always_asks_the_gate() {
        let memory = Memory::default();
        let control = CrowdControl::new(SoldOutMemo::new(Duration::ZERO), Limits::none(), SECRET);
        let sku = sold_out_then_given_back(&memory, &control).await;
        grab(memory.ports(), &control, who("bob"), None, &sku, now())
            .await
            .unwrap();
    }
}
