//! The domain's one error type: every refusal a caller can see is a variant
//! here. Ports fail with [`PortError`](crate::ports::PortError), which turns
//! into this; the HTTP edge (`http::problem`) is the one place that gives
//! each variant its status, stable `code` and title.

use crate::model::Packet;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("this item is sold out")]
    SoldOut,
    #[error("you already hold an order for this item")]
    AlreadyPurchased,
    #[error("the sale or campaign has not started yet")]
    NotStarted,
    #[error("the sale or campaign has ended")]
    Ended,
    #[error("every packet of this campaign has been claimed")]
    Exhausted,
    /// Carries the packet the shopper got the first time.
    #[error("you already claimed a packet of this campaign")]
    AlreadyClaimed(Packet),
    #[error("{0}")]
    InvalidState(String),
    #[error("the payment deadline of this order has passed")]
    PayDeadlinePassed,
    #[error("{0}")]
    Conflict(String),
    #[error("the payment was declined: {0}")]
    PaymentDeclined(String),
    #[error("{0}")]
    TicketRequired(&'static str),
    #[error("{0}")]
    ChallengeFailed(&'static str),
    /// This sign-in must bring the work of `challenge` solved: the account
    /// has seen more attempts lately than it takes without.
    #[error("this account has seen many sign-in attempts lately: solve the challenge and send it with the sign-in")]
    ChallengeRequired {
        challenge: String,
        difficulty: u8,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    #[error("this sale admits accounts older than {0} hours")]
    AccountTooNew(u32),
    #[error("too many requests; try again in {} s", retry_after_seconds(*.retry_after))]
    RateLimited { retry_after: std::time::Duration },
    /// The sale's waiting room has not called the shopper's place yet.
    #[error("your place in the line has not been called yet: {ahead} before it; try again in {} s", retry_after_seconds(*.retry_after))]
    InLine {
        ahead: u64,
        retry_after: std::time::Duration,
    },
    #[error("this sale has a waiting room: take a place in its line first (POST …/queue)")]
    NoPlace,
    #[error("this sale has no waiting room; grab (claim) when it opens")]
    NoWaitingRoom,
    /// A backend (Redis, DynamoDB, the payment provider) failed. The detail
    /// is logged, never shown: it can carry hostnames and keys.
    #[error("a backend is unavailable, try again shortly")]
    Unavailable(String),
}

impl Error {
    pub fn unavailable(source: impl std::fmt::Display) -> Self {
        Error::Unavailable(source.to_string())
    }

    /// Whether the same request may succeed if simply tried again: a backend
    /// that failed, or a record that kept changing under it.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable(_) | Error::Conflict(_))
    }
}

/// Whole seconds to wait, rounded up (`Retry-After` takes no fraction).
pub fn retry_after_seconds(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// Shorthand for validation failures in request checks.
pub fn invalid(detail: impl Into<String>) -> Error {
    Error::Validation(detail.into())
}
