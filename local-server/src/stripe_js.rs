//! A stand-in for Stripe.js and the publishable-key side of Stripe's API,
//! beside `localstripe`, which has neither a card form nor a way for a
//! browser to confirm a PaymentIntent with a card.
//!
//! It serves `/v3/` (`stripe.js`: `Stripe(pk)`, a card element, and
//! `confirmCardPayment(clientSecret, {payment_method: {card}})`) and the one
//! call that script makes, as Stripe.js makes it:
//! `POST /v1/payment_intents/{id}/confirm` with `key=pk_…`, the intent's
//! `client_secret` and `payment_method_data[card][…]`. It believes the call
//! only when the key is the shop's and the secret is the intent's, then has
//! localstripe do it with the secret key: the card becomes a PaymentMethod,
//! the intent is confirmed, and localstripe charges it and sends its signed
//! webhook. Our backend sees only localstripe, as it sees only Stripe.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use shared::payments::StripeShop;

use crate::services::Served;

/// The publishable key the stand-in's shop pays with.
pub const PUBLISHABLE_KEY: &str = "pk_test_localstripe";

const SCRIPT: &str = include_str!("stripe.js");

struct Stripe {
    http: reqwest::Client,
    /// localstripe's API base, ending in `/`.
    api_base: String,
    secret_key: String,
}

impl Stripe {
    async fn call(&self, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> Result<Value, Response> {
        let reply = self
            .http
            .request(method, format!("{}v1/{path}", self.api_base))
            .form(form)
            .bearer_auth(&self.secret_key)
            .send()
            .await
            .map_err(|error| {
                answer(
                    StatusCode::BAD_GATEWAY,
                    json!({"error": {"message": error.to_string()}}),
                )
            })?;
        let status = reply.status();
        let body: Value = reply.json().await.unwrap_or_default();
        match status.is_success() {
            true => Ok(body),
            false => Err(answer(status, body)),
        }
    }
}

/// Stripe's API answers browsers of any origin.
fn answer(status: StatusCode, body: Value) -> Response {
    (status, [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], axum::Json(body)).into_response()
}

fn refused(message: &str) -> Response {
    answer(
        StatusCode::UNAUTHORIZED,
        json!({"error": {"type": "invalid_request_error", "message": message}}),
    )
}

async fn script() -> Response {
    ([(header::CONTENT_TYPE, "application/javascript")], SCRIPT).into_response()
}

/// `POST /v1/payment_intents/{id}/confirm` as Stripe.js sends it.
async fn confirm(State(stripe): State<Arc<Stripe>>, Path(intent): Path<String>, body: Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("key") != PUBLISHABLE_KEY {
        return refused("Invalid API Key provided");
    }
    let path = format!("payment_intents/{intent}");
    let found = match stripe.call(reqwest::Method::GET, &path, &[]).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    if found["client_secret"].as_str() != Some(field("client_secret")) {
        return refused("The client_secret provided does not match the PaymentIntent");
    }
    let card = [
        ("type", "card"),
        ("card[number]", field("payment_method_data[card][number]")),
        ("card[exp_month]", field("payment_method_data[card][exp_month]")),
        ("card[exp_year]", field("payment_method_data[card][exp_year]")),
        ("card[cvc]", field("payment_method_data[card][cvc]")),
    ];
    let steps = async {
        let method = stripe.call(reqwest::Method::POST, "payment_methods", &card).await?;
        let method = method["id"].as_str().unwrap_or_default().to_owned();
        stripe
            .call(reqwest::Method::POST, &path, &[("payment_method", &method)])
            .await?;
        stripe
            .call(reqwest::Method::POST, &format!("{path}/confirm"), &[])
            .await
    };
    match steps.await {
        Ok(confirmed) => answer(StatusCode::OK, confirmed),
        Err(answer) => answer,
    }
}

/// The stand-in, serving on a loopback port until dropped.
pub struct StripeJsStandIn {
    served: Served,
}

impl StripeJsStandIn {
    /// Beside the localstripe at `api_base` (ending in `/`), which it
    /// calls with `secret_key`.
    pub async fn start(api_base: &str, secret_key: &str) -> std::io::Result<Self> {
        let stripe = Arc::new(Stripe {
            http: reqwest::Client::new(),
            api_base: api_base.to_owned(),
            secret_key: secret_key.to_owned(),
        });
        let router = Router::new()
            .route("/v3/", get(script))
            .route("/v1/payment_intents/{intent}/confirm", post(confirm))
            .with_state(stripe);
        Ok(StripeJsStandIn {
            served: Served::start(router).await?,
        })
    }

    /// What the shop pays with: the publishable key and this Stripe.js.
    pub fn shop(&self) -> StripeShop {
        StripeShop {
            publishable_key: PUBLISHABLE_KEY.into(),
            js: format!("http://{}/v3/", self.served.address),
        }
    }
}
