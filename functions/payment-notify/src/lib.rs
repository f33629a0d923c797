//! Payment notifications: `POST /payments/{provider}/notify`, public, as
//! each provider calls it. The raw body is verified by the provider's
//! adapter before anything else; a believed notice moves the order as a
//! synchronous payment does (`domain::payments::notified`); the provider
//! hears back in its own format, so that it stops resending what was
//! recorded and resends what was not.

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use shared::{App, Error, domain::payments, http::Routes, model::PayMethod};

pub fn routes() -> Routes<Arc<App>> {
    Routes::new().post("/payments/{provider}/notify", notify)
}

/// What the provider is told.
enum Answer {
    /// Recorded (or news we do not act on): stop sending it.
    Recorded,
    /// Not believed, or not about an order of ours: it changed nothing.
    Refused(String),
    /// A backend failed: send it again later.
    Retry(Error),
}

async fn notify(
    State(app): State<Arc<App>>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(method) = PayMethod::parse(&provider).filter(|method| *method != PayMethod::Sandbox) else {
        return Error::NotFound("payment provider").into_response();
    };
    let now = Utc::now();
    let answer = match app.payments.verify(method, &headers, &body, now) {
        Err(refusal) => Answer::Refused(refusal.to_string()),
        Ok(None) => Answer::Recorded,
        Ok(Some(notice)) => match payments::notified(app.ports(), &notice, now).await {
            Ok(noticed) => {
                tracing::info!(provider, notice = %notice.id, order_id = %notice.order_id, ?noticed, "notification recorded");
                Answer::Recorded
            }
            Err(error @ (Error::NotFound(_) | Error::Validation(_))) => Answer::Refused(error.to_string()),
            Err(error) => Answer::Retry(error),
        },
    };
    if let Answer::Refused(reason) = &answer {
        tracing::warn!(provider, reason, "notification refused");
    }
    acknowledge(method, answer)
}

/// Each provider's own acknowledgement.
fn acknowledge(method: PayMethod, answer: Answer) -> Response {
    match (method, answer) {
        // Alipay resends until the body is exactly `success`; anything else
        // is a failure, and the status says which kind.
        (PayMethod::Alipay, Answer::Recorded) => plain(StatusCode::OK, "success"),
        (PayMethod::Alipay, Answer::Refused(_)) => plain(StatusCode::BAD_REQUEST, "fail"),
        (PayMethod::Alipay, Answer::Retry(_)) => plain(StatusCode::INTERNAL_SERVER_ERROR, "fail"),
        // WeChat Pay decides by the status alone; a failure carries its
        // `{code, message}`.
        (PayMethod::Wechat, Answer::Recorded) => StatusCode::NO_CONTENT.into_response(),
        (PayMethod::Wechat, Answer::Refused(message)) => wechat_fail(StatusCode::BAD_REQUEST, &message),
        (PayMethod::Wechat, Answer::Retry(error)) => wechat_fail(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
        // Stripe: any 2xx; a refusal as our own problem+json.
        (_, Answer::Recorded) => Json(serde_json::json!({"received": true})).into_response(),
        (_, Answer::Refused(reason)) => Error::Validation(reason).into_response(),
        (_, Answer::Retry(error)) => error.into_response(),
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

fn wechat_fail(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({"code": "FAIL", "message": message}))).into_response()
}
