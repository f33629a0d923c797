//! Sale tickets and their proof-of-work challenges: the hidden-path defence
//! of the best-known seckill systems, kept stateless.
//!
//! A script that fires grabs blindly at the opening second gets nothing
//! when its operator turns tickets on: a grab (or claim) must carry a
//! ticket signed for that shopper and that sale, and tickets are issued only
//! once the sale is open, so nobody holds one early. With a difficulty, a
//! ticket also costs work: the shopper first fetches a challenge (a signed
//! salt) and finds a nonce whose SHA-256 over `challenge + nonce` starts
//! with that many zero bits. Both are signed with keys derived from the
//! token secret, one per purpose, so neither passes for the other or for a
//! bearer token; nothing is stored.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{error::Error, ts};

/// How long a challenge may take to solve, and how long a ticket lasts:
/// long enough for a phone to solve and tap, short enough that a ticket
/// bought early is spent within the rush.
pub const CHALLENGE_TTL: Duration = Duration::seconds(120);
pub const TICKET_TTL: Duration = Duration::seconds(60);

/// What a challenge or ticket is signed over.
#[derive(Debug, Serialize, Deserialize)]
struct Signed {
    /// The shopper.
    sub: String,
    /// `sku:<id>` or `rp:<id>`.
    sale: String,
    exp: i64,
    /// Only in challenges: the work asked and a salt no one can foresee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    difficulty: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    salt: Option<String>,
}

/// `GET …/challenge`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Challenge {
    pub challenge: String,
    pub difficulty: u8,
    #[serde(with = "ts")]
    pub expires_at: DateTime<Utc>,
}

/// `POST …/ticket`: the challenge and the nonce that solves it.
#[derive(Debug, Clone, Deserialize)]
pub struct Solution {
    pub challenge: String,
    pub nonce: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ticket {
    pub ticket: String,
    #[serde(with = "ts")]
    pub expires_at: DateTime<Utc>,
}

struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The signature and the claims' shape; expiry is checked against the
    /// flow's `now`, not the library's clock.
    validation: Validation,
}

/// The key a purpose's tokens are signed with: SHA-256 over the purpose and
/// the token secret, in hex. Text, so the edge's JavaScript (which takes
/// an HMAC key as a string) signs with the very same bytes.
fn key_for(secret: &[u8], purpose: &str) -> String {
    hex::encode(Sha256::new().chain_update(purpose).chain_update(secret).finalize())
}

const TICKET_PURPOSE: &str = "sale ticket";

/// The key tickets are signed with, which the edge checks them by
/// (`admission::edge`): knowing it lets one forge tickets, but not
/// challenges or bearer tokens.
pub fn ticket_key(secret: &[u8]) -> String {
    key_for(secret, TICKET_PURPOSE)
}

impl Signer {
    fn new(secret: &[u8], purpose: &str) -> Self {
        let key = key_for(secret, purpose);
        let key = key.as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Signer {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
        }
    }

    fn sign(&self, signed: &Signed) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), signed, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// The claims, if the signature is ours and it has not expired by `now`.
    fn open(&self, token: &str, now: DateTime<Utc>) -> Option<Signed> {
        jsonwebtoken::decode::<Signed>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
            .filter(|signed| signed.exp >= now.timestamp())
    }
}

pub struct Tickets {
    challenges: Signer,
    tickets: Signer,
}

impl Tickets {
    pub fn new(secret: &[u8]) -> Self {
        Tickets {
            challenges: Signer::new(secret, "sale challenge"),
            tickets: Signer::new(secret, TICKET_PURPOSE),
        }
    }

    pub fn challenge(&self, shopper: &str, sale: &str, difficulty: u8, now: DateTime<Utc>) -> Challenge {
        let expires_at = now + CHALLENGE_TTL;
        let salt: [u8; 16] = rand::random();
        let challenge = self.challenges.sign(&Signed {
            sub: shopper.to_owned(),
            sale: sale.to_owned(),
            exp: expires_at.timestamp(),
            difficulty: Some(difficulty),
            salt: Some(salt.iter().map(|b| format!("{b:02x}")).collect()),
        });
        Challenge {
            challenge,
            difficulty,
            expires_at,
        }
    }

    /// A ticket for a solved challenge of this shopper and sale, asking at
    /// least `difficulty` (the sale's now: an operator may have raised it).
    pub fn ticket(
        &self,
        shopper: &str,
        sale: &str,
        difficulty: u8,
        solution: &Solution,
        now: DateTime<Utc>,
    ) -> Result<Ticket, Error> {
        self.verify(shopper, sale, difficulty, solution, now)?;
        let expires_at = now + TICKET_TTL;
        let ticket = self.tickets.sign(&Signed {
            sub: shopper.to_owned(),
            sale: sale.to_owned(),
            exp: expires_at.timestamp(),
            difficulty: None,
            salt: None,
        });
        Ok(Ticket { ticket, expires_at })
    }

    /// Whether `solution` solves a challenge issued to `sub` for `purpose`
    /// (a sale, or a sign-in) asking at least `difficulty`.
    pub fn verify(
        &self,
        sub: &str,
        purpose: &str,
        difficulty: u8,
        solution: &Solution,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let signed = self
            .challenges
            .open(&solution.challenge, now)
            .filter(|signed| signed.sub == sub && signed.sale == purpose)
            .ok_or(Error::ChallengeFailed(
                "the challenge is not one issued to you for this, or it expired",
            ))?;
        let asked = signed.difficulty.unwrap_or_default();
        if asked < difficulty {
            return Err(Error::ChallengeFailed("more work is asked now; fetch a new challenge"));
        }
        if solution.nonce.len() > 64 || !solves(&solution.challenge, &solution.nonce, asked) {
            return Err(Error::ChallengeFailed("the nonce does not solve the challenge"));
        }
        Ok(())
    }

    /// Whether `ticket` admits this shopper to this sale.
    pub fn check(&self, ticket: Option<&str>, shopper: &str, sale: &str, now: DateTime<Utc>) -> Result<(), Error> {
        let ticket = ticket.ok_or(Error::TicketRequired(
            "this sale needs a ticket: fetch …/challenge, solve it, POST it to …/ticket, and send the ticket in `Sale-Ticket`",
        ))?;
        match self.tickets.open(ticket, now) {
            Some(signed) if signed.sub == shopper && signed.sale == sale => Ok(()),
            _ => Err(Error::TicketRequired(
                "the ticket is not one issued to you for this sale, or it expired",
            )),
        }
    }
}

/// A short name for a challenge (the first 16 bytes of its SHA-256, in
/// hex), by which a spent one is remembered.
pub fn fingerprint(challenge: &str) -> String {
    Sha256::digest(challenge)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether SHA-256 of `challenge` then `nonce` starts with `difficulty`
/// zero bits.
pub fn solves(challenge: &str, nonce: &str, difficulty: u8) -> bool {
    let digest = Sha256::new().chain_update(challenge).chain_update(nonce).finalize();
    leading_zero_bits(&digest) >= u32::from(difficulty)
}

fn leading_zero_bits(bytes: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in bytes {
        bits += byte.leading_zeros();
        if *byte != 0 {
            break;
        }
    }
    bits
}

/// The client's side: the first decimal nonce that solves `challenge`
/// (what a script pays per ticket; docs/api.md shows it in JavaScript and
/// shell).
pub fn solve(challenge: &str, difficulty: u8) -> String {
    (0u64..)
        .map(|nonce| nonce.to_string())
        .find(|nonce| solves(challenge, nonce, difficulty))
        .expect("some nonce below 2^64 solves any difficulty up to 24")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    #[test]
    fn zero_bits_are_counted_from_the_first_byte() {
        assert_eq!(leading_zero_bits(&[0xff]), 0);
        assert_eq!(leading_zero_bits(&[0x00, 0x10]), 11);
        assert_eq!(leading_zero_bits(&[0x00, 0x00]), 16);
    }

    #[test]
    fn a_solved_challenge_buys_a_ticket_for_that_shopper_and_sale_only() {
        let tickets = Tickets::new(SECRET);
        let challenge = tickets.challenge("ann", "sku:1", 8, now());
        let nonce = solve(&challenge.challenge, 8);
        let solution = Solution {
            challenge: challenge.challenge.clone(),
            nonce,
        };
        let ticket = tickets.ticket("ann", "sku:1", 8, &solution, now()).unwrap();
        tickets.check(Some(&ticket.ticket), "ann", "sku:1", now()).unwrap();
        for (shopper, sale) in [("bob", "sku:1"), ("ann", "sku:2"), ("ann", "rp:1")] {
            let refused = tickets.check(Some(&ticket.ticket), shopper, sale, now());
            assert!(matches!(refused, Err(Error::TicketRequired(_))), "{shopper} {sale}");
        }
        let stolen = tickets.ticket("bob", "sku:1", 8, &solution, now());
        assert!(matches!(stolen, Err(Error::ChallengeFailed(_))));
    }

    #[test]
    fn work_not_done_buys_nothing() {
        let tickets = Tickets::new(SECRET);
        let challenge = tickets.challenge("ann", "sku:1", 16, now());
        let lazy = (0u64..)
            .map(|n| n.to_string())
            .find(|nonce| !solves(&challenge.challenge, nonce, 16))
            .unwrap();
        let solution = Solution {
            challenge: challenge.challenge,
            nonce: lazy,
        };
        let refused = tickets.ticket("ann", "sku:1", 16, &solution, now());
        assert!(matches!(refused, Err(Error::ChallengeFailed(_))));
    }

    #[test]
    fn a_challenge_easier_than_the_sale_asks_now_is_refused() {
        let tickets = Tickets::new(SECRET);
        let easy = tickets.challenge("ann", "sku:1", 0, now());
        let solution = Solution {
            challenge: easy.challenge,
            nonce: "0".into(),
        };
        tickets.ticket("ann", "sku:1", 0, &solution, now()).unwrap();
        let refused = tickets.ticket("ann", "sku:1", 4, &solution, now());
        assert!(matches!(refused, Err(Error::ChallengeFailed(_))));
    }

    #[test]
    fn a_challenge_is_no_ticket_and_other_keys_sign_neither() {
        let tickets = Tickets::new(SECRET);
        let challenge = tickets.challenge("ann", "sku:1", 0, now());
        assert!(
            tickets
                .check(Some(&challenge.challenge), "ann", "sku:1", now())
                .is_err()
        );
        let other = Tickets::new(b"another secret of thirty-two bytes");
        let solution = Solution {
            challenge: other.challenge("ann", "sku:1", 0, now()).challenge,
            nonce: "0".into(),
        };
        assert!(tickets.ticket("ann", "sku:1", 0, &solution, now()).is_err());
        assert!(tickets.check(None, "ann", "sku:1", now()).is_err());
    }

    #[test]
    fn an_expired_challenge_is_refused() {
        let tickets = Tickets::new(SECRET);
        let old = tickets.challenge("ann", "sku:1", 0, now() - CHALLENGE_TTL - Duration::seconds(10));
        let solution = Solution {
            challenge: old.challenge,
            nonce: "0".into(),
        };
        assert!(tickets.ticket("ann", "sku:1", 0, &solution, now()).is_err());
    }
}
