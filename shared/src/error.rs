//! The domain's one error type. Every refusal a caller can see is a variant
//! here with a stable machine-readable `code`; adapters convert their own
//! failures into it (`From` impls in `gate` and `store`) and the HTTP edge
//! renders it as RFC 9457 problem details (`http.rs`).

use axum::http::StatusCode;

use crate::red_packet::Packet;

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
    #[error("too many requests, slow down")]
    RateLimited,
    #[error("this route does not take that method")]
    MethodNotAllowed,
    /// A backend (Redis, DynamoDB, the payment provider) failed. The detail
    /// is logged, never shown: it can carry hostnames and keys.
    #[error("a backend is unavailable, try again shortly")]
    Unavailable(String),
}

impl Error {
    pub fn unavailable(source: impl std::fmt::Display) -> Self {
        Error::Unavailable(source.to_string())
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation(_) => "VALIDATION",
            Error::Unauthorized(_) => "UNAUTHORIZED",
            Error::Forbidden(_) => "FORBIDDEN",
            Error::NotFound(_) => "NOT_FOUND",
            Error::SoldOut => "SOLD_OUT",
            Error::AlreadyPurchased => "ALREADY_PURCHASED",
            Error::NotStarted => "NOT_STARTED",
            Error::Ended => "ENDED",
            Error::Exhausted => "EXHAUSTED",
            Error::AlreadyClaimed(_) => "ALREADY_CLAIMED",
            Error::InvalidState(_) => "INVALID_STATE",
            Error::PayDeadlinePassed => "PAY_DEADLINE_PASSED",
            Error::Conflict(_) => "CONFLICT",
            Error::PaymentDeclined(_) => "PAYMENT_DECLINED",
            Error::RateLimited => "RATE_LIMITED",
            Error::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Error::Unavailable(_) => "UNAVAILABLE",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::Validation(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) | Error::NotStarted | Error::Ended => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::SoldOut
            | Error::AlreadyPurchased
            | Error::Exhausted
            | Error::AlreadyClaimed(_)
            | Error::InvalidState(_)
            | Error::PayDeadlinePassed
            | Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PaymentDeclined(_) => StatusCode::PAYMENT_REQUIRED,
            Error::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Shorthand for validation failures in request checks.
pub fn invalid(detail: impl Into<String>) -> Error {
    Error::Validation(detail.into())
}
