//! A sale's terms as its crowd meets them: the window, the account age
//! and the tickets its guard asks, read from the ledger at most once per
//! [`TERMS_TTL`].

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{CrowdControl, Sale, room};
use crate::{
    domain::{
        auth::Claims,
        tickets::{Challenge, Solution, Ticket},
    },
    error::Error,
    model::{Campaign, Guard, Sku},
    ports::{CampaignStore, Ports, SkuStore, WaitingRoom},
};

/// How long an instance keeps a sale's guard and window: an operator's
/// change reaches every instance within this.
pub const TERMS_TTL: Duration = Duration::from_secs(5);

/// What the crowd of one sale is checked against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Terms {
    pub guard: Guard,
    pub begin: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Terms {
    fn of_sku(sku: Sku) -> Self {
        Terms {
            guard: sku.fields.guard,
            begin: sku.fields.seckill_begin,
            end: sku.fields.seckill_end,
        }
    }

    fn of_campaign(campaign: Campaign) -> Self {
        Terms {
            guard: campaign.guard,
            begin: campaign.begin,
            end: campaign.end,
        }
    }

    /// Whether `claims`' account is old enough.
    pub(super) fn admits(&self, claims: &Claims, now: DateTime<Utc>) -> Result<(), Error> {
        let hours = self.guard.min_account_age_hours;
        if hours == 0 {
            return Ok(());
        }
        let old_enough = claims
            .since
            .is_some_and(|since| now.timestamp() - since >= i64::from(hours) * 3600);
        if old_enough {
            Ok(())
        } else {
            Err(Error::AccountTooNew(hours))
        }
    }

    /// The terms with the waiting room's rate held to `cap`, if any.
    fn held_to(mut self, cap: Option<u32>) -> Self {
        if let Some(cap) = cap
            && self.guard.has_waiting_room()
        {
            self.guard.waiting_room_rate = self.guard.waiting_room_rate.min(cap.max(1));
        }
        self
    }

    fn open(&self, now: DateTime<Utc>) -> Result<(), Error> {
        if now < self.begin {
            Err(Error::NotStarted)
        } else if now >= self.end {
            Err(Error::Ended)
        } else {
            Ok(())
        }
    }
}

impl CrowdControl {
    /// The sale's terms, `None` if the ledger has no such sale.
    pub async fn terms(
        &self,
        ledger: &(impl SkuStore + CampaignStore),
        sale: Sale<'_>,
    ) -> Result<Option<Terms>, Error> {
        let cap = self.room_rate_cap;
        let read = async move {
            let terms = match sale {
                Sale::Sku(id) => ledger.get_sku(id).await.map(|sku| sku.map(Terms::of_sku)),
                Sale::Campaign(id) => ledger.get_campaign(id).await.map(|rain| rain.map(Terms::of_campaign)),
            };
            terms.map(|terms| terms.map(|terms| terms.held_to(cap)))
        };
        self.terms
            .try_get_with(sale.key(), read)
            .await
            .map_err(|error| Error::from((*error).clone()))
    }

    /// The sale's terms; `NOT_FOUND` if the ledger has no such sale.
    pub(super) async fn known_terms(
        &self,
        ledger: &(impl SkuStore + CampaignStore),
        sale: Sale<'_>,
    ) -> Result<Terms, Error> {
        self.terms(ledger, sale).await?.ok_or(Error::NotFound("sale"))
    }

    /// Refuses a tap its sale's guard does not admit: too young an
    /// account, no ticket or a wrong one.
    pub(super) async fn guard(
        &self,
        ledger: &(impl SkuStore + CampaignStore),
        sale: Sale<'_>,
        claims: &Claims,
        ticket: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let Some(terms) = self.terms(ledger, sale).await? else {
            return Ok(());
        };
        terms.admits(claims, now)?;
        if terms.guard.needs_ticket() {
            self.tickets.check(ticket, &claims.sub, &sale.key(), now)?;
        }
        Ok(())
    }

    /// An open sale's terms for one who asks a challenge or ticket of it,
    /// admitted from its waiting room if it has one.
    async fn open_terms(
        &self,
        ports: Ports<'_, impl WaitingRoom, impl SkuStore + CampaignStore, impl Sync>,
        sale: Sale<'_>,
        claims: &Claims,
        now: DateTime<Utc>,
    ) -> Result<Terms, Error> {
        let terms = self.known_terms(ports.ledger, sale).await?;
        terms.open(now)?;
        terms.admits(claims, now)?;
        room::admit(ports.gate, &terms, sale, &claims.sub, now).await?;
        Ok(terms)
    }
}

/// `GET …/challenge`: the work a ticket to an open sale costs this shopper
/// (once the sale's waiting room, if any, has called them).
pub async fn challenge(
    ports: Ports<'_, impl WaitingRoom, impl SkuStore + CampaignStore, impl Sync>,
    control: &CrowdControl,
    claims: &Claims,
    sale: Sale<'_>,
    now: DateTime<Utc>,
) -> Result<Challenge, Error> {
    let terms = control.open_terms(ports, sale, claims, now).await?;
    Ok(control
        .tickets
        .challenge(&claims.sub, &sale.key(), terms.guard.challenge_difficulty, now))
}

/// `POST …/ticket`: a ticket to an open sale for a solved challenge (once
/// the sale's waiting room, if any, has called the shopper).
pub async fn ticket(
    ports: Ports<'_, impl WaitingRoom, impl SkuStore + CampaignStore, impl Sync>,
    control: &CrowdControl,
    claims: &Claims,
    sale: Sale<'_>,
    solution: &Solution,
    now: DateTime<Utc>,
) -> Result<Ticket, Error> {
    let terms = control.open_terms(ports, sale, claims, now).await?;
    let difficulty = terms.guard.challenge_difficulty;
    control
        .tickets
        .ticket(&claims.sub, &sale.key(), difficulty, solution, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::admission::tests::*;

    /// The SKU of [`on_sale`] with `guard`.
    async fn guarded(memory: &Memory, guard: Guard) -> String {
        let sku = on_sale(memory, 10).await;
        let mut stored = memory.ledger.get_sku(&sku).await.unwrap().unwrap();
        stored.fields.guard = guard;
        memory.ledger.put_sku(&stored).await.unwrap();
        sku
    }

    fn ticket_for(control: &CrowdControl, username: &str, sku: &str, difficulty: u8) -> String {
        let sale = Sale::Sku(sku).key();
        let challenge = control.tickets.challenge(username, &sale, difficulty, now());
        let solution = Solution {
            nonce: crate::domain::tickets::solve(&challenge.challenge, difficulty),
            challenge: challenge.challenge,
        };
        control
            .tickets
            .ticket(username, &sale, difficulty, &solution, now())
            .unwrap()
            .ticket
    }

    #[tokio::test]
    async fn a_sale_that_asks_for_tickets_refuses_blind_grabs_and_admits_ticket_holders() {
        let memory = Memory::default();
        let control = control();
        let guard = Guard {
            challenge_difficulty: 4,
            ..Guard::default()
        };
        let sku = guarded(&memory, guard).await;
        let blind = grab(memory.ports(), &control, who("alice"), None, &sku, now()).await;
        assert!(matches!(blind, Err(Error::TicketRequired(_))), "{blind:?}");
        let bobs = ticket_for(&control, "bob", &sku, 4);
        let borrowed = grab(memory.ports(), &control, who("alice"), Some(&bobs), &sku, now()).await;
        assert!(matches!(borrowed, Err(Error::TicketRequired(_))), "{borrowed:?}");
        let alices = ticket_for(&control, "alice", &sku, 4);
        grab(memory.ports(), &control, who("alice"), Some(&alices), &sku, now())
            .await
            .unwrap();
        assert_eq!(
            memory.gate.faults.calls(Op::Grab),
            1,
            "only the ticket holder reached the gate"
        );
    }

    #[tokio::test]
    async fn challenges_and_tickets_are_issued_only_while_the_sale_is_open() {
        let memory = Memory::default();
        let control = control();
        let sku = guarded(&memory, Guard::default()).await;
        let alice = claims_of("alice");
        let early = challenge(
            memory.ports(),
            &control,
            &alice,
            Sale::Sku(&sku),
            now() - Span::minutes(1),
        )
        .await;
        assert!(matches!(early, Err(Error::NotStarted)), "{early:?}");
        let open = challenge(memory.ports(), &control, &alice, Sale::Sku(&sku), now())
            .await
            .unwrap();
        assert_eq!(open.difficulty, 0);
        let solution = Solution {
            challenge: open.challenge,
            nonce: "anything".into(),
        };
        ticket(memory.ports(), &control, &alice, Sale::Sku(&sku), &solution, now())
            .await
            .unwrap();
        let late = ticket(
            memory.ports(),
            &control,
            &alice,
            Sale::Sku(&sku),
            &solution,
            now() + Span::hours(2),
        )
        .await;
        assert!(matches!(late, Err(Error::Ended)), "{late:?}");
        let unknown = challenge(memory.ports(), &control, &alice, Sale::Sku("nope"), now()).await;
        assert!(matches!(unknown, Err(Error::NotFound(_))), "{unknown:?}");
    }

    #[tokio::test]
    async fn a_sale_for_older_accounts_refuses_new_ones_and_tokens_without_an_age() {
        let memory = Memory::default();
        let control = control();
        let guard = Guard {
            min_account_age_hours: 24,
            ..Guard::default()
        };
        let sku = guarded(&memory, guard).await;
        let aged = |hours: i64| {
            let claims = Claims {
                since: Some((now() - Span::hours(hours)).timestamp()),
                ..claims_of("alice")
            };
            move || Ok(claims)
        };
        let young = grab(memory.ports(), &control, aged(23), None, &sku, now()).await;
        assert!(matches!(young, Err(Error::AccountTooNew(24))), "{young:?}");
        let unknown = grab(memory.ports(), &control, who("alice"), None, &sku, now()).await;
        assert!(matches!(unknown, Err(Error::AccountTooNew(24))), "{unknown:?}");
        grab(memory.ports(), &control, aged(25), None, &sku, now())
            .await
            .unwrap();
    }
}
