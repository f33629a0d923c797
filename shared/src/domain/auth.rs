//! Identities: signed bearer tokens (JWT, HS256) and password hashing
//! (Argon2id with the crate's default, OWASP-recommended parameters).

use std::time::Duration;

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use super::recent::Recent;
use crate::{error::Error, ts};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The username (shopper) or login name (operator).
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    /// When the account was created (a shopper's token): a sale may admit
    /// only accounts of some age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
}

/// What `POST /auth/login` and `POST /admin/login` return.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuedToken {
    pub token: String,
    #[serde(with = "ts")]
    pub expires_at: DateTime<Utc>,
}

/// Signs and verifies tokens with one secret from the environment.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    /// Tokens this instance verified lately, with their claims. A shopper
    /// taps with the same token many times a second, and checking its
    /// signature again costs more than answering a sold-out tap does.
    verified: Recent<Claims>,
}

/// How many verified tokens an instance remembers, and for how long.
const VERIFIED_TOKENS: usize = 10_000;
const VERIFIED_FOR: Duration = Duration::from_secs(60);

impl Tokens {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Tokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
            verified: Recent::new(VERIFIED_FOR, VERIFIED_TOKENS),
        }
    }

    pub fn issue(&self, sub: &str, role: Role, now: DateTime<Utc>) -> IssuedToken {
        self.issue_since(sub, role, None, now)
    }

    /// A token that also carries when the account was created.
    pub fn issue_since(&self, sub: &str, role: Role, since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> IssuedToken {
        let expires_at = now + self.ttl;
        let claims = Claims {
            sub: sub.to_owned(),
            role,
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            since: since.map(|since| since.timestamp()),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail");
        IssuedToken { token, expires_at }
    }

    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        if let Some(claims) = self.verified.get(token) {
            // Its signature was checked; only its expiry can have changed.
            let leeway = i64::try_from(self.validation.leeway).unwrap_or(i64::MAX);
            if claims.exp.saturating_add(leeway) < Utc::now().timestamp() {
                return Err(Error::Unauthorized("the token has expired"));
            }
            return Ok(claims);
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => Error::Unauthorized("the token has expired"),
                ErrorKind::InvalidSignature => Error::Unauthorized("the token signature is invalid"),
                _ => Error::Unauthorized("the token is malformed"),
            })?;
        self.verified.put(token, claims.clone());
        Ok(claims)
    }
}

pub fn hash_password(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .expect("Argon2 with default parameters and a generated salt cannot fail")
        .to_string()
}

/// Constant work whether or not the account exists: callers pass `None`
/// for an unknown account and a dummy hash is checked instead, so response
/// time does not reveal which usernames exist.
pub fn verify_password(password: &str, stored_hash: Option<&str>) -> bool {
    static DUMMY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| hash_password("not a real password"));
    let candidate = stored_hash.unwrap_or(&DUMMY);
    let matches = PasswordHash::new(candidate)
        .map(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
        .unwrap_or(false);
    matches && stored_hash.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let hash = hash_password("correct horse");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", Some(&hash)));
        assert!(!verify_password("wrong horse", Some(&hash)));
        assert!(!verify_password("correct horse", None));
    }

    #[test]
    fn token_round_trip_and_rejections() {
        let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let now = Utc::now();
        let issued = tokens.issue("alice", Role::User, now);
        let claims = tokens.verify(&issued.token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.role), ("alice", Role::User));

        let other = Tokens::new(b"another secret of thirty-two bytes", Duration::from_secs(60));
        assert!(matches!(other.verify(&issued.token), Err(Error::Unauthorized(_))));

        let stale = tokens.issue("alice", Role::User, now - chrono::Duration::hours(1));
        assert!(matches!(tokens.verify(&stale.token), Err(Error::Unauthorized(m)) if m.contains("expired")));
    }

    #[test]
    fn a_token_verified_before_still_expires() {
        let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let expiring = tokens.issue("alice", Role::User, Utc::now() - chrono::Duration::seconds(65));
        assert!(tokens.verify(&expiring.token).is_ok(), "within the 5 s leeway");
        std::thread::sleep(Duration::from_millis(1_100));
        assert!(matches!(tokens.verify(&expiring.token), Err(Error::Unauthorized(m)) if m.contains("expired")));
    }
}
