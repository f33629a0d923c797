//! Errors as RFC 9457 problem details. [`of`] is the one table from a
//! domain error to the status, stable `code` and title the API answers
//! with; [`ALL`] lists every row, which the OpenAPI test holds the
//! document to.

use axum::{
    body::Bytes,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use std::{fmt::Display, sync::LazyLock};

use serde::Serialize;

use crate::{
    error::{Error, retry_after_seconds},
    model::Packet,
};

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemType {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: &'static str,
    /// `urn:problem-type:flash-sale:<code in kebab case>`, spelled out so
    /// that no refusal of the crowd formats it again.
    pub type_uri: &'static str,
}

macro_rules! row {
    ($status:ident, $code:literal, $kebab:literal, $title:literal) => {
        ProblemType {
            status: StatusCode::$status,
            code: $code,
            title: $title,
            type_uri: concat!("urn:problem-type:flash-sale:", $kebab),
        }
    };
}

pub const VALIDATION: ProblemType = row!(BAD_REQUEST, "VALIDATION", "validation", "Invalid request");
pub const UNAUTHORIZED: ProblemType = row!(UNAUTHORIZED, "UNAUTHORIZED", "unauthorized", "Authentication required");
pub const FORBIDDEN: ProblemType = row!(FORBIDDEN, "FORBIDDEN", "forbidden", "Not allowed");
pub const NOT_FOUND: ProblemType = row!(NOT_FOUND, "NOT_FOUND", "not-found", "Not found");
pub const SOLD_OUT: ProblemType = row!(CONFLICT, "SOLD_OUT", "sold-out", "Sold out");
pub const ALREADY_PURCHASED: ProblemType =
    row!(CONFLICT, "ALREADY_PURCHASED", "already-purchased", "Already purchased");
pub const NOT_STARTED: ProblemType = row!(FORBIDDEN, "NOT_STARTED", "not-started", "Not started");
pub const ENDED: ProblemType = row!(FORBIDDEN, "ENDED", "ended", "Ended");
pub const EXHAUSTED: ProblemType = row!(CONFLICT, "EXHAUSTED", "exhausted", "Exhausted");
pub const ALREADY_CLAIMED: ProblemType = row!(CONFLICT, "ALREADY_CLAIMED", "already-claimed", "Already claimed");
pub const INVALID_STATE: ProblemType = row!(CONFLICT, "INVALID_STATE", "invalid-state", "Invalid state");
pub const PAY_DEADLINE_PASSED: ProblemType = row!(
    CONFLICT,
    "PAY_DEADLINE_PASSED",
    "pay-deadline-passed",
    "Payment deadline passed"
);
pub const CONFLICT: ProblemType = row!(CONFLICT, "CONFLICT", "conflict", "Conflict");
pub const PAYMENT_DECLINED: ProblemType = row!(
    PAYMENT_REQUIRED,
    "PAYMENT_DECLINED",
    "payment-declined",
    "Payment declined"
);
pub const TICKET_REQUIRED: ProblemType = row!(FORBIDDEN, "TICKET_REQUIRED", "ticket-required", "Ticket required");
pub const CHALLENGE_FAILED: ProblemType = row!(FORBIDDEN, "CHALLENGE_FAILED", "challenge-failed", "Challenge failed");
pub const CHALLENGE_REQUIRED: ProblemType = row!(
    FORBIDDEN,
    "CHALLENGE_REQUIRED",
    "challenge-required",
    "Challenge required"
);
pub const ACCOUNT_TOO_NEW: ProblemType = row!(FORBIDDEN, "ACCOUNT_TOO_NEW", "account-too-new", "Account too new");
pub const RATE_LIMITED: ProblemType = row!(TOO_MANY_REQUESTS, "RATE_LIMITED", "rate-limited", "Too many requests");
pub const IN_LINE: ProblemType = row!(CONFLICT, "IN_LINE", "in-line", "Not called yet");
pub const NO_PLACE: ProblemType = row!(CONFLICT, "NO_PLACE", "no-place", "No place in the line");
pub const NO_WAITING_ROOM: ProblemType = row!(CONFLICT, "NO_WAITING_ROOM", "no-waiting-room", "No waiting room");
pub const UNAVAILABLE: ProblemType = row!(SERVICE_UNAVAILABLE, "UNAVAILABLE", "unavailable", "Service unavailable");
/// The router's own: a known route asked with a method it does not take.
pub const METHOD_NOT_ALLOWED: ProblemType = row!(
    METHOD_NOT_ALLOWED,
    "METHOD_NOT_ALLOWED",
    "method-not-allowed",
    "Method not allowed"
);

/// Every problem the API answers with.
pub const ALL: &[ProblemType] = &[
    VALIDATION,
    UNAUTHORIZED,
    FORBIDDEN,
    NOT_FOUND,
    SOLD_OUT,
    ALREADY_PURCHASED,
    NOT_STARTED,
    ENDED,
    EXHAUSTED,
    ALREADY_CLAIMED,
    INVALID_STATE,
    PAY_DEADLINE_PASSED,
    CONFLICT,
    PAYMENT_DECLINED,
    TICKET_REQUIRED,
    CHALLENGE_FAILED,
    CHALLENGE_REQUIRED,
    ACCOUNT_TOO_NEW,
    RATE_LIMITED,
    IN_LINE,
    NO_PLACE,
    NO_WAITING_ROOM,
    UNAVAILABLE,
    METHOD_NOT_ALLOWED,
];

/// The codes of a won grab and a won claim (the metrics' and boards' `code`
/// beside the problems').
pub const CREATED: &str = "CREATED";
pub const CLAIMED: &str = "CLAIMED";

/// Every code a grab or claim can be answered with.
pub static ANSWERS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    [CREATED, CLAIMED]
        .into_iter()
        .chain(ALL.iter().map(|problem| problem.code))
        .collect()
});

/// The `code` of an answer: `ok` on success, else its problem's code.
pub fn code_of<T>(answer: &Result<T, Error>, ok: &'static str) -> &'static str {
    match answer {
        Ok(_) => ok,
        Err(error) => of(error).code,
    }
}

/// The row of a domain error.
pub fn of(error: &Error) -> ProblemType {
    match error {
        Error::Validation(_) => VALIDATION,
        Error::Unauthorized(_) => UNAUTHORIZED,
        Error::Forbidden(_) => FORBIDDEN,
        Error::NotFound(_) => NOT_FOUND,
        Error::SoldOut => SOLD_OUT,
        Error::AlreadyPurchased => ALREADY_PURCHASED,
        Error::NotStarted => NOT_STARTED,
        Error::Ended => ENDED,
        Error::Exhausted => EXHAUSTED,
        Error::AlreadyClaimed(_) => ALREADY_CLAIMED,
        Error::InvalidState(_) => INVALID_STATE,
        Error::PayDeadlinePassed => PAY_DEADLINE_PASSED,
        Error::Conflict(_) => CONFLICT,
        Error::PaymentDeclined(_) => PAYMENT_DECLINED,
        Error::TicketRequired(_) => TICKET_REQUIRED,
        Error::ChallengeFailed(_) => CHALLENGE_FAILED,
        Error::ChallengeRequired { .. } => CHALLENGE_REQUIRED,
        Error::AccountTooNew(_) => ACCOUNT_TOO_NEW,
        Error::RateLimited { .. } => RATE_LIMITED,
        Error::InLine { .. } => IN_LINE,
        Error::NoPlace => NO_PLACE,
        Error::NoWaitingRoom => NO_WAITING_ROOM,
        Error::Unavailable(_) => UNAVAILABLE,
    }
}

/// The body of a problem (RFC 9457), serialized as is: built for every
/// refused tap of a flash sale, so no intermediate JSON tree.
#[derive(Serialize)]
struct Problem<'a, Detail: Display> {
    #[serde(rename = "type")]
    type_uri: &'static str,
    title: &'static str,
    status: u16,
    #[serde(serialize_with = "as_text")]
    detail: &'a Detail,
    code: &'static str,
    /// Extension members (RFC 9457 §3.2): what the caller needs to act on.
    #[serde(skip_serializing_if = "Option::is_none")]
    red_packet_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount: Option<i64>,
    /// `IN_LINE`: places still to be called before the shopper's.
    #[serde(skip_serializing_if = "Option::is_none")]
    ahead: Option<u64>,
    #[serde(flatten)]
    challenge: Option<ChallengeMembers<'a>>,
}

/// A challenge to solve, as `GET …/challenge` gives one.
#[derive(Serialize)]
struct ChallengeMembers<'a> {
    challenge: &'a str,
    difficulty: u8,
    #[serde(with = "crate::ts")]
    expires_at: chrono::DateTime<chrono::Utc>,
}

fn as_text<S: serde::Serializer>(detail: &&impl Display, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(detail)
}

/// What a problem carries besides its row and detail.
#[derive(Default)]
struct Members<'a> {
    packet: Option<&'a Packet>,
    ahead: Option<u64>,
    challenge: Option<ChallengeMembers<'a>>,
}

fn render(kind: ProblemType, detail: &impl Display, members: Members<'_>) -> Bytes {
    let problem = Problem {
        type_uri: kind.type_uri,
        title: kind.title,
        status: kind.status.as_u16(),
        detail,
        code: kind.code,
        red_packet_id: members.packet.map(|p| p.red_packet_id.as_str()),
        amount: members.packet.map(|p| p.amount),
        ahead: members.ahead,
        challenge: members.challenge,
    };
    Bytes::from(serde_json::to_vec(&problem).expect("a problem of strings and numbers serializes"))
}

/// The answers most taps of a crowd get, rendered once.
static SOLD_OUT_BODY: LazyLock<Bytes> = LazyLock::new(|| render(SOLD_OUT, &Error::SoldOut, Members::default()));
static EXHAUSTED_BODY: LazyLock<Bytes> = LazyLock::new(|| render(EXHAUSTED, &Error::Exhausted, Members::default()));

fn respond(kind: ProblemType, body: Bytes) -> Response {
    (
        kind.status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        )],
        body,
    )
        .into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let kind = of(&self);
        let body = match &self {
            Error::SoldOut => SOLD_OUT_BODY.clone(),
            Error::Exhausted => EXHAUSTED_BODY.clone(),
            Error::AlreadyClaimed(packet) => render(
                kind,
                &self,
                Members {
                    packet: Some(packet),
                    ..Members::default()
                },
            ),
            Error::ChallengeRequired {
                challenge,
                difficulty,
                expires_at,
            } => render(
                kind,
                &self,
                Members {
                    challenge: Some(ChallengeMembers {
                        challenge,
                        difficulty: *difficulty,
                        expires_at: *expires_at,
                    }),
                    ..Members::default()
                },
            ),
            Error::InLine { ahead, .. } => render(
                kind,
                &self,
                Members {
                    ahead: Some(*ahead),
                    ..Members::default()
                },
            ),
            Error::Unavailable(detail) => {
                tracing::error!(%detail, "backend unavailable");
                render(kind, &self, Members::default())
            }
            _ => render(kind, &self, Members::default()),
        };
        let mut response = respond(kind, body);
        if let Error::RateLimited { retry_after } | Error::InLine { retry_after, .. } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after_seconds(retry_after).into());
        }
        response
    }
}

/// The answer to a known route asked with another method.
pub fn method_not_allowed() -> Response {
    let detail = "this route does not take that method";
    respond(
        METHOD_NOT_ALLOWED,
        render(METHOD_NOT_ALLOWED, &detail, Members::default()),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_type_uri_is_its_code_in_kebab_case() {
        for row in ALL {
            let kebab = row.code.to_lowercase().replace('_', "-");
            assert_eq!(row.type_uri, format!("urn:problem-type:flash-sale:{kebab}"));
        }
    }

    #[test]
    fn every_row_has_its_own_code() {
        let codes: HashSet<&str> = ALL.iter().map(|row| row.code).collect();
        assert_eq!(codes.len(), ALL.len());
    }

    #[test]
    fn every_error_maps_to_a_listed_row() {
        let packet = crate::model::Packet {
            red_packet_id: "p".into(),
            amount: 1,
        };
        for error in [
            Error::Validation(String::new()),
            Error::Unauthorized(""),
            Error::Forbidden(""),
            Error::NotFound(""),
            Error::SoldOut,
            Error::AlreadyPurchased,
            Error::NotStarted,
            Error::Ended,
            Error::Exhausted,
            Error::AlreadyClaimed(packet),
            Error::InvalidState(String::new()),
            Error::PayDeadlinePassed,
            Error::Conflict(String::new()),
            Error::PaymentDeclined(String::new()),
            Error::TicketRequired(""),
            Error::ChallengeFailed(""),
            Error::ChallengeRequired {
                challenge: String::new(),
                difficulty: 16,
                expires_at: chrono::DateTime::UNIX_EPOCH,
            },
            Error::AccountTooNew(1),
            Error::RateLimited {
                retry_after: std::time::Duration::from_millis(1500),
            },
            Error::InLine {
                ahead: 3,
                retry_after: std::time::Duration::from_secs(1),
            },
            Error::NoPlace,
            Error::NoWaitingRoom,
            Error::Unavailable(String::new()),
        ] {
            assert!(ALL.contains(&of(&error)), "{error:?}");
        }
    }
}
