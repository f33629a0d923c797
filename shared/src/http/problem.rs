//! Errors as RFC 9457 problem details. [`of`] is the one table from a
//! domain error to the status, stable `code` and title the API answers
//! with; [`ALL`] lists every row, which the OpenAPI test holds the
//! document to.

use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::error::Error;

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemType {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: &'static str,
}

const fn row(status: StatusCode, code: &'static str, title: &'static str) -> ProblemType {
    ProblemType { status, code, title }
}

pub const VALIDATION: ProblemType = row(StatusCode::BAD_REQUEST, "VALIDATION", "Invalid request");
pub const UNAUTHORIZED: ProblemType = row(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Authentication required");
pub const FORBIDDEN: ProblemType = row(StatusCode::FORBIDDEN, "FORBIDDEN", "Not allowed");
pub const NOT_FOUND: ProblemType = row(StatusCode::NOT_FOUND, "NOT_FOUND", "Not found");
pub const SOLD_OUT: ProblemType = row(StatusCode::CONFLICT, "SOLD_OUT", "Sold out");
pub const ALREADY_PURCHASED: ProblemType = row(StatusCode::CONFLICT, "ALREADY_PURCHASED", "Already purchased");
pub const NOT_STARTED: ProblemType = row(StatusCode::FORBIDDEN, "NOT_STARTED", "Not started");
pub const ENDED: ProblemType = row(StatusCode::FORBIDDEN, "ENDED", "Ended");
pub const EXHAUSTED: ProblemType = row(StatusCode::CONFLICT, "EXHAUSTED", "Exhausted");
pub const ALREADY_CLAIMED: ProblemType = row(StatusCode::CONFLICT, "ALREADY_CLAIMED", "Already claimed");
pub const INVALID_STATE: ProblemType = row(StatusCode::CONFLICT, "INVALID_STATE", "Invalid state");
pub const PAY_DEADLINE_PASSED: ProblemType =
    row(StatusCode::CONFLICT, "PAY_DEADLINE_PASSED", "Payment deadline passed");
pub const CONFLICT: ProblemType = row(StatusCode::CONFLICT, "CONFLICT", "Conflict");
pub const PAYMENT_DECLINED: ProblemType = row(StatusCode::PAYMENT_REQUIRED, "PAYMENT_DECLINED", "Payment declined");
pub const RATE_LIMITED: ProblemType = row(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "Too many requests");
pub const UNAVAILABLE: ProblemType = row(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "Service unavailable");
/// The router's own: a known route asked with a method it does not take.
pub const METHOD_NOT_ALLOWED: ProblemType = row(
    StatusCode::METHOD_NOT_ALLOWED,
    "METHOD_NOT_ALLOWED",
    "Method not allowed",
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
    RATE_LIMITED,
    UNAVAILABLE,
    METHOD_NOT_ALLOWED,
];

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
        Error::RateLimited => RATE_LIMITED,
        Error::Unavailable(_) => UNAVAILABLE,
    }
}

fn respond(kind: ProblemType, detail: String, extra: Option<serde_json::Value>) -> Response {
    let mut problem = serde_json::json!({
        "type": format!("urn:problem-type:flash-sale:{}", kind.code.to_lowercase().replace('_', "-")),
        "title": kind.title,
        "status": kind.status.as_u16(),
        "detail": detail,
        "code": kind.code,
    });
    if let (Some(serde_json::Value::Object(extra)), Some(object)) = (extra, problem.as_object_mut()) {
        object.extend(extra);
    }
    let mut response = (kind.status, Json(problem)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/problem+json"),
    );
    response
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Error::Unavailable(detail) = &self {
            tracing::error!(%detail, "backend unavailable");
        }
        // Extension members (RFC 9457 §3.2): what the caller needs to act on.
        let extra = match &self {
            Error::AlreadyClaimed(packet) => Some(serde_json::json!({
                "red_packet_id": packet.red_packet_id,
                "amount": packet.amount,
            })),
            _ => None,
        };
        respond(of(&self), self.to_string(), extra)
    }
}

/// The answer to a known route asked with another method.
pub fn method_not_allowed() -> Response {
    respond(METHOD_NOT_ALLOWED, "this route does not take that method".into(), None)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

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
            Error::RateLimited,
            Error::Unavailable(String::new()),
        ] {
            assert!(ALL.contains(&of(&error)), "{error:?}");
        }
    }
}
