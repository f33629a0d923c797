//! The counted actions, their rates, and counting one.

use std::{collections::BTreeMap, time::Duration};

use super::CrowdControl;
use crate::{
    error::Error,
    ports::{Admission, Rate, RateLimiter},
};

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

impl CrowdControl {
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
}

/// The limiter's key of one client's `action`.
pub(super) fn limit_key(action: Action, client: &str) -> String {
    format!("{}:{client}", action.name())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::admission::tests::*;

    pub(crate) fn limited(action: Action, count: u32) -> CrowdControl {
        let rate = Rate {
            count,
            period: Duration::from_secs(60),
        };
        CrowdControl::new(SoldOutMemo::new(MEMO), Limits::none().with(action, Some(rate)), SECRET)
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
}
