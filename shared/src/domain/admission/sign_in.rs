//! Registrations and sign-ins: counted per address and per account
//! before any password is checked, and challenged rather than locked out.

use chrono::{DateTime, Utc};

use super::{Action, CrowdControl, limits::limit_key};
use crate::{
    domain::{
        accounts::{self, AdminLogin, Login, Registration},
        auth::{IssuedToken, Tokens},
        tickets::{self, Solution},
    },
    error::Error,
    model::User,
    ports::{AccountStore, Admission, Ports, Rate, RateLimiter},
};

impl CrowdControl {
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

/// What a sign-in challenge is signed for (a sale's are `sku:…`/`rp:…`).
const SIGN_IN: &str = "sign-in";

/// The work a sign-in challenge asks: a fraction of a second in a browser
/// (see docs/api.md, Tickets and challenges), paid by each guess of a crowd.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::admission::limits::tests::limited;
    use crate::domain::admission::tests::*;

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
}
