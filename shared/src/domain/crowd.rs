//! Grab and claim as the crowd reaches them: what an instance checks before
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
//! A sale's operator may also ask more of its crowd ([`Guard`]): an
//! account of some age, and a ticket per shopper issued once the sale is
//! open, perhaps for a proof of work (`tickets`). Each instance reads a
//! sale's guard and window from the ledger at most once per [`TERMS_TTL`].

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};

use super::{
    accounts::{self, AdminLogin, Login, Registration},
    auth::{Claims, IssuedToken, Tokens},
    flash_sale::{self, PublishedSku},
    recent::Recent,
    red_packet,
    tickets::{self, Challenge, Solution, Ticket, Tickets},
};
use crate::{
    error::Error,
    model::{Campaign, Guard, Order, Packet, Sku, User},
    ports::{
        AccountStore, Admission, CampaignStore, OrderStore, PacketPool, Ports, Rate, RateLimiter, SkuStore, StockGate,
    },
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

/// What a client does that is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Per shopper.
    Grab,
    Claim,
    Pay,
    /// Per client address.
    Register,
    Login,
    AdminLogin,
    /// Per account named (shopper or operator, whether it exists or not)
    /// and address: every attempt counts and a success clears the count,
    /// so it counts failures in a row, and a thousand guesses sent at once
    /// are counted before any password is checked. Over it, that address
    /// waits (`RATE_LIMITED`); the account's owner elsewhere does not.
    FailedLogin,
    /// Per account named, from every address, counted as [`FailedLogin`]
    /// is. Over it, a sign-in must bring a solved challenge
    /// (`CHALLENGE_REQUIRED`): never a lock-out.
    ///
    /// [`FailedLogin`]: Action::FailedLogin
    AccountLogin,
}

impl Action {
    pub const ALL: [Action; 8] = [
        Action::Grab,
        Action::Claim,
        Action::Pay,
        Action::Register,
        Action::Login,
        Action::AdminLogin,
        Action::FailedLogin,
        Action::AccountLogin,
    ];

    /// Its name in keys and settings (`RATE_LIMIT_<NAME>`).
    pub fn name(self) -> &'static str {
        match self {
            Action::Grab => "grab",
            Action::Claim => "claim",
            Action::Pay => "pay",
            Action::Register => "register",
            Action::Login => "login",
            Action::AdminLogin => "admin_login",
            Action::FailedLogin => "failed_login",
            Action::AccountLogin => "account_login",
        }
    }

    /// The limit of a deployment that sets none: a person taps a few times
    /// a second; a browser registers and signs in a few times an hour; five
    /// wrong passwords in a row from one address, then one guess every
    /// three minutes; twenty attempts on one account from anywhere, then
    /// each one pays a challenge.
    pub fn default_rate(self) -> Rate {
        let per = |count, seconds| Rate {
            count,
            period: Duration::from_secs(seconds),
        };
        match self {
            Action::Grab => per(5, 1),
            Action::Claim => per(10, 1),
            Action::Pay => per(10, 60),
            Action::Register => per(20, 3600),
            Action::Login => per(30, 60),
            Action::AdminLogin => per(10, 60),
            Action::FailedLogin => per(5, 900),
            Action::AccountLogin => per(20, 900),
        }
    }
}

/// The rate of each counted action; an action without one is not counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits(BTreeMap<Action, Rate>);

impl Limits {
    /// Every action at its [`Action::default_rate`].
    pub fn defaults() -> Self {
        Limits(
            Action::ALL
                .iter()
                .map(|&action| (action, action.default_rate()))
                .collect(),
        )
    }

    /// Nothing counted.
    pub fn none() -> Self {
        Limits::default()
    }

    pub fn with(mut self, action: Action, rate: Option<Rate>) -> Self {
        match rate {
            Some(rate) => self.0.insert(action, rate),
            None => self.0.remove(&action),
        };
        self
    }

    pub fn rate(&self, action: Action) -> Option<Rate> {
        self.0.get(&action).copied()
    }
}

fn limited(admission: Admission) -> Result<(), Error> {
    match admission {
        Admission::Admitted => Ok(()),
        Admission::Limited { retry_after } => Err(Error::RateLimited { retry_after }),
    }
}

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
    fn admits(&self, claims: &Claims, now: DateTime<Utc>) -> Result<(), Error> {
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

/// What an instance keeps to turn the crowd away cheaply.
pub struct CrowdControl {
    pub sold_out: SoldOutMemo,
    pub limits: Limits,
    pub tickets: Tickets,
    /// Each sale's terms by [`Sale::key`]. A cache that loads a key once
    /// for all who ask at the same moment: a crowd arriving at a cold
    /// instance makes one read, not one per tap.
    terms: moka::future::Cache<String, Option<Terms>>,
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
        }
    }

    /// The sale's terms, `None` if the ledger has no such sale.
    pub async fn terms(
        &self,
        ledger: &(impl SkuStore + CampaignStore),
        sale: Sale<'_>,
    ) -> Result<Option<Terms>, Error> {
        let read = async {
            match sale {
                Sale::Sku(id) => ledger.get_sku(id).await.map(|sku| sku.map(Terms::of_sku)),
                Sale::Campaign(id) => ledger.get_campaign(id).await.map(|rain| rain.map(Terms::of_campaign)),
            }
        };
        self.terms
            .try_get_with(sale.key(), read)
            .await
            .map_err(|error| Error::from((*error).clone()))
    }

    /// Refuses a tap its sale's guard does not admit: too young an
    /// account, no ticket or a wrong one.
    async fn guard(
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

    /// An open sale's terms for one who asks a challenge or ticket of it.
    async fn open_terms(
        &self,
        ledger: &(impl SkuStore + CampaignStore),
        sale: Sale<'_>,
        claims: &Claims,
        now: DateTime<Utc>,
    ) -> Result<Terms, Error> {
        let terms = self.terms(ledger, sale).await?.ok_or(Error::NotFound("sale"))?;
        terms.open(now)?;
        terms.admits(claims, now)?;
        Ok(terms)
    }

    /// Counts one `action` of `client` (a username, an address, an
    /// account), or refuses it with how long to wait. A limiter that cannot
    /// answer admits: a Redis outage must not also stop sign-ins, which
    /// need only DynamoDB (a grab fails on the gate itself anyway).
    pub async fn admit(&self, limiter: &impl RateLimiter, action: Action, client: &str) -> Result<(), Error> {
        let Some(rate) = self.limits.rate(action) else {
            return Ok(());
        };
        match limiter.admit(&limit_key(action, client), rate).await {
            Ok(admission) => limited(admission),
            Err(error) => {
                tracing::warn!(action = action.name(), %error, "rate limiter unavailable; admitted");
                Ok(())
            }
        }
    }

    /// A sign-in to `account` from `address` with `check` (the password).
    /// Counted against the address, then against the account from this
    /// address ([`Action::FailedLogin`]: over it, this address waits), then
    /// against the account from everywhere ([`Action::AccountLogin`]: over
    /// it, the sign-in must bring `solution`, a solved challenge, used
    /// once). All of it before the password is checked, whether or not
    /// the account exists, so the answer tells nothing and guesses sent at
    /// once are all counted. A success clears the account's counts.
    async fn sign_in<T>(
        &self,
        limiter: &impl RateLimiter,
        (action, address): (Action, &str),
        account: &str,
        solution: Option<&Solution>,
        now: DateTime<Utc>,
        check: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        self.admit(limiter, action, address).await?;
        let from_here = format!("{account}@{address}");
        self.admit(limiter, Action::FailedLogin, &from_here).await?;
        match solution {
            Some(solution) => self.spend(limiter, account, solution, now).await?,
            None => {
                if let Err(Error::RateLimited { .. }) = self.admit(limiter, Action::AccountLogin, account).await {
                    let challenge = self.tickets.challenge(account, SIGN_IN, SIGN_IN_DIFFICULTY, now);
                    return Err(Error::ChallengeRequired {
                        challenge: challenge.challenge,
                        difficulty: challenge.difficulty,
                        expires_at: challenge.expires_at,
                    });
                }
            }
        }
        let result = check.await;
        if result.is_ok() {
            for (action, client) in [
                (Action::FailedLogin, from_here.as_str()),
                (Action::AccountLogin, account),
            ] {
                if self.limits.rate(action).is_none() {
                    continue;
                }
                if let Err(error) = limiter.reset(&limit_key(action, client)).await {
                    tracing::warn!(account, %error, "could not clear the sign-in count of a signed-in account");
                }
            }
        }
        result
    }

    /// Accepts a solved sign-in challenge of `account` once: a second use
    /// within its lifetime is refused, so one solution buys one guess.
    async fn spend(
        &self,
        limiter: &impl RateLimiter,
        account: &str,
        solution: &Solution,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        self.tickets
            .verify(account, SIGN_IN, SIGN_IN_DIFFICULTY, solution, now)?;
        let once = Rate {
            count: 1,
            period: tickets::CHALLENGE_TTL.to_std().unwrap_or_default(),
        };
        let spent = format!("spent_challenge:{}", tickets::fingerprint(&solution.challenge));
        match limiter.admit(&spent, once).await {
            Ok(Admission::Admitted) => Ok(()),
            Ok(Admission::Limited { .. }) => Err(Error::ChallengeFailed(
                "this challenge was used already; fetch a new one",
            )),
            // Without the limiter a solution cannot be checked for reuse;
            // the work was done all the same.
            Err(error) => {
                tracing::warn!(account, %error, "could not record a spent sign-in challenge");
                Ok(())
            }
        }
    }
}

/// The limiter's key of one client's `action`.
fn limit_key(action: Action, client: &str) -> String {
    format!("{}:{client}", action.name())
}

/// What a sign-in challenge is signed for (a sale's are `sku:…`/`rp:…`).
const SIGN_IN: &str = "sign-in";

/// The work a sign-in challenge asks: a fraction of a second in a browser
/// (see README, Tickets and challenges), paid by each guess of a crowd.
pub const SIGN_IN_DIFFICULTY: u8 = 16;

/// A registration, counted against the address it came from.
pub async fn register(
    ports: Ports<'_, impl RateLimiter, impl AccountStore, impl Sync>,
    control: &CrowdControl,
    address: &str,
    form: Registration,
    now: DateTime<Utc>,
) -> Result<User, Error> {
    control.admit(ports.gate, Action::Register, address).await?;
    accounts::register(ports.ledger, form, now).await
}

/// A shopper's login, counted as [`CrowdControl::sign_in`] says.
pub async fn login(
    ports: Ports<'_, impl RateLimiter, impl AccountStore, impl Sync>,
    control: &CrowdControl,
    tokens: &Tokens,
    address: &str,
    form: Login,
    now: DateTime<Utc>,
) -> Result<IssuedToken, Error> {
    let account = format!("user:{}", form.username);
    let solution = form.solution.clone();
    let check = accounts::login(ports.ledger, tokens, form, now);
    control
        .sign_in(
            ports.gate,
            (Action::Login, address),
            &account,
            solution.as_ref(),
            now,
            check,
        )
        .await
}

/// An operator's login, as [`login`].
pub async fn admin_login(
    ports: Ports<'_, impl RateLimiter, impl AccountStore, impl Sync>,
    control: &CrowdControl,
    tokens: &Tokens,
    address: &str,
    form: AdminLogin,
    now: DateTime<Utc>,
) -> Result<IssuedToken, Error> {
    let account = format!("admin:{}", form.login_name);
    let solution = form.solution.clone();
    let check = accounts::admin_login(ports.ledger, tokens, form, now);
    control
        .sign_in(
            ports.gate,
            (Action::AdminLogin, address),
            &account,
            solution.as_ref(),
            now,
            check,
        )
        .await
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

/// `GET …/challenge`: the work a ticket to an open sale costs this shopper.
pub async fn challenge(
    ledger: &(impl SkuStore + CampaignStore),
    control: &CrowdControl,
    claims: &Claims,
    sale: Sale<'_>,
    now: DateTime<Utc>,
) -> Result<Challenge, Error> {
    let terms = control.open_terms(ledger, sale, claims, now).await?;
    Ok(control
        .tickets
        .challenge(&claims.sub, &sale.key(), terms.guard.challenge_difficulty, now))
}

/// `POST …/ticket`: a ticket to an open sale for a solved challenge.
pub async fn ticket(
    ledger: &(impl SkuStore + CampaignStore),
    control: &CrowdControl,
    claims: &Claims,
    sale: Sale<'_>,
    solution: &Solution,
    now: DateTime<Utc>,
) -> Result<Ticket, Error> {
    let terms = control.open_terms(ledger, sale, claims, now).await?;
    let difficulty = terms.guard.challenge_difficulty;
    control
        .tickets
        .ticket(&claims.sub, &sale.key(), difficulty, solution, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::auth::Role;
    use crate::{
        domain::{
            flash_sale::{
                cancel,
                tests::{now, on_sale},
            },
            red_packet::tests::{now as rain_time, rain},
        },
        memory::{Fault, Memory, Op},
    };
    use chrono::Duration as Span;

    const MEMO: Duration = Duration::from_millis(300);

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn claims_of(username: &str) -> Claims {
        Claims {
            sub: username.to_owned(),
            role: Role::User,
            iat: 0,
            exp: i64::MAX,
            since: None,
        }
    }

    fn who(username: &str) -> impl FnOnce() -> Result<Claims, Error> {
        let claims = claims_of(username);
        move || Ok(claims)
    }

    fn control() -> CrowdControl {
        CrowdControl::new(SoldOutMemo::new(MEMO), Limits::none(), SECRET)
    }

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

    fn limited(action: Action, count: u32) -> CrowdControl {
        let rate = Rate {
            count,
            period: Duration::from_secs(60),
        };
        CrowdControl::new(SoldOutMemo::new(MEMO), Limits::none().with(action, Some(rate)), SECRET)
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

    #[tokio::test]
    async fn a_shopper_over_the_limit_waits_and_costs_the_gate_nothing() {
        let memory = Memory::default();
        let control = limited(Action::Grab, 2);
        let sku = on_sale(&memory, 10).await;
        grab(memory.ports(), &control, who("alice"), None, &sku, now())
            .await
            .unwrap();
        let again = grab(memory.ports(), &control, who("alice"), None, &sku, now()).await;
        assert!(matches!(again, Err(Error::AlreadyPurchased)), "{again:?}");
        let reserves = memory.gate.faults.calls(Op::Grab);
        let third = grab(memory.ports(), &control, who("alice"), None, &sku, now()).await;
        match third {
            Err(Error::RateLimited { retry_after }) => {
                assert!(retry_after > Duration::from_secs(29) && retry_after <= Duration::from_secs(30));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(memory.gate.faults.calls(Op::Grab), reserves);
        grab(memory.ports(), &control, who("bob"), None, &sku, now())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_limiter_that_cannot_answer_admits() {
        let memory = Memory::default();
        let control = limited(Action::Register, 1);
        memory.gate.faults.inject(Op::Admit, 1, Fault::Fail);
        register(memory.ports(), &control, "10.0.0.1", registration("ann"), now())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn claims_are_counted_per_shopper() {
        let memory = Memory::default();
        let control = limited(Action::Claim, 1);
        let campaign = rain(&memory, 100, 2).await.id;
        claim(memory.ports(), &control, who("alice"), None, &campaign, rain_time())
            .await
            .unwrap();
        let again = claim(memory.ports(), &control, who("alice"), None, &campaign, rain_time()).await;
        assert!(matches!(again, Err(Error::RateLimited { .. })), "{again:?}");
    }

    fn registration(username: &str) -> Registration {
        serde_json::from_value(serde_json::json!({"username": username, "password": "correct horse"})).unwrap()
    }

    fn attempt(username: &str, password: &str) -> Login {
        Login {
            username: username.into(),
            password: password.into(),
            solution: None,
        }
    }

    #[tokio::test]
    async fn registrations_are_counted_per_address() {
        let memory = Memory::default();
        let control = limited(Action::Register, 2);
        register(memory.ports(), &control, "10.0.0.1", registration("ann"), now())
            .await
            .unwrap();
        register(memory.ports(), &control, "10.0.0.1", registration("ben"), now())
            .await
            .unwrap();
        let third = register(memory.ports(), &control, "10.0.0.1", registration("cat"), now()).await;
        assert!(matches!(third, Err(Error::RateLimited { .. })), "{third:?}");
        register(memory.ports(), &control, "10.0.0.2", registration("cat"), now())
            .await
            .unwrap();
    }

    fn signer() -> Tokens {
        Tokens::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60))
    }

    /// `username`'s sign-in from `address` with `password`.
    async fn sign_in(
        memory: &Memory,
        control: &CrowdControl,
        address: &str,
        username: &str,
        password: &str,
    ) -> Result<IssuedToken, Error> {
        login(
            memory.ports(),
            control,
            &signer(),
            address,
            attempt(username, password),
            now(),
        )
        .await
    }

    #[tokio::test]
    async fn guesses_from_one_address_slow_that_address_and_never_lock_the_owner_out() {
        let memory = Memory::default();
        let control = CrowdControl::new(SoldOutMemo::new(MEMO), Limits::defaults(), SECRET);
        register(memory.ports(), &control, "10.0.0.1", registration("ann"), now())
            .await
            .unwrap();
        let mut answers = Vec::new();
        for _ in 0..30 {
            answers.push(sign_in(&memory, &control, "10.6.6.6", "ann", "guess").await);
        }
        let refused = answers
            .iter()
            .filter(|a| matches!(a, Err(Error::Unauthorized(_))))
            .count();
        let slowed = answers
            .iter()
            .filter(|a| matches!(a, Err(Error::RateLimited { .. })))
            .count();
        assert_eq!((refused, slowed), (5, 25), "{answers:?}");
        sign_in(&memory, &control, "10.0.0.1", "ann", "correct horse")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn guesses_from_many_addresses_make_the_account_ask_for_work_which_its_owner_pays_once() {
        let memory = Memory::default();
        let control = CrowdControl::new(SoldOutMemo::new(MEMO), Limits::defaults(), SECRET);
        register(memory.ports(), &control, "10.0.0.1", registration("ann"), now())
            .await
            .unwrap();
        for bot in 0..20 {
            let guess = sign_in(&memory, &control, &format!("10.6.6.{bot}"), "ann", "guess").await;
            assert!(matches!(guess, Err(Error::Unauthorized(_))), "{guess:?}");
        }
        let Err(Error::ChallengeRequired {
            challenge, difficulty, ..
        }) = sign_in(&memory, &control, "10.0.0.1", "ann", "correct horse").await
        else {
            panic!("past its ceiling the account asks for work");
        };
        assert_eq!(difficulty, SIGN_IN_DIFFICULTY);
        let nonce = tickets::solve(&challenge, difficulty);
        let solved = Login {
            solution: Some(Solution { challenge, nonce }),
            ..attempt("ann", "correct horse")
        };
        login(memory.ports(), &control, &signer(), "10.0.0.1", solved.clone(), now())
            .await
            .unwrap();
        let again = login(memory.ports(), &control, &signer(), "10.0.0.1", solved, now()).await;
        assert!(
            matches!(again, Err(Error::ChallengeFailed(_))),
            "a solution buys one sign-in: {again:?}"
        );
    }

    #[tokio::test]
    async fn an_account_that_does_not_exist_is_slowed_alike() {
        let memory = Memory::default();
        let control = limited(Action::FailedLogin, 3);
        register(memory.ports(), &control, "10.0.0.1", registration("ann"), now())
            .await
            .unwrap();
        for username in ["ann", "nobody"] {
            for _ in 0..3 {
                let wrong = sign_in(&memory, &control, "10.6.6.6", username, "guess").await;
                assert!(matches!(wrong, Err(Error::Unauthorized(_))), "{wrong:?}");
            }
            let fourth = sign_in(&memory, &control, "10.6.6.6", username, "correct horse").await;
            assert!(
                matches!(fourth, Err(Error::RateLimited { .. })),
                "{username}: {fourth:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_right_password_is_not_a_failure() {
        let memory = Memory::default();
        let control = limited(Action::FailedLogin, 1);
        let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        register(memory.ports(), &control, "10.0.0.1", registration("ann"), now())
            .await
            .unwrap();
        for _ in 0..3 {
            login(
                memory.ports(),
                &control,
                &tokens,
                "10.0.0.1",
                attempt("ann", "correct horse"),
                now(),
            )
            .await
            .unwrap();
        }
    }

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
            &memory.ledger,
            &control,
            &alice,
            Sale::Sku(&sku),
            now() - Span::minutes(1),
        )
        .await;
        assert!(matches!(early, Err(Error::NotStarted)), "{early:?}");
        let open = challenge(&memory.ledger, &control, &alice, Sale::Sku(&sku), now())
            .await
            .unwrap();
        assert_eq!(open.difficulty, 0);
        let solution = Solution {
            challenge: open.challenge,
            nonce: "anything".into(),
        };
        ticket(&memory.ledger, &control, &alice, Sale::Sku(&sku), &solution, now())
            .await
            .unwrap();
        let late = ticket(
            &memory.ledger,
            &control,
            &alice,
            Sale::Sku(&sku),
            &solution,
            now() + Span::hours(2),
        )
        .await;
        assert!(matches!(late, Err(Error::Ended)), "{late:?}");
        let unknown = challenge(&memory.ledger, &control, &alice, Sale::Sku("nope"), now()).await;
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
