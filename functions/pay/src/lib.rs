//! Pay: `POST /orders/{order_id}/pay` with the method the shopper chose
//! (a provider, or `cod` for cash on delivery); answers the order, and
//! what the client does next when the provider finishes the payment on
//! its side. The order keeps a copy of the address it ships to.
//! `GET /payments/methods` lists the methods offered.

use std::sync::Arc;

use axum::{Json, extract::State};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use shared::{
    App, Error,
    domain::{
        accounts,
        admission::Action,
        payments::{self, Payment},
    },
    http::{OptionalJson, PathId, Routes, Shopper},
    model::PayChoice,
    payments::{Stripe, StripeShop},
};

pub fn routes() -> Routes<Arc<App>> {
    Routes::new()
        .get("/payments/methods", methods)
        .post("/orders/{order_id}/pay", pay)
}

#[derive(Serialize)]
struct Methods {
    methods: Vec<PayChoice>,
    /// What a browser pays Stripe with, when this deployment gives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    stripe: Option<StripeShop>,
}

/// How a shopper may pay here (public: the shop shows the choice before
/// anyone signs in).
async fn methods(State(app): State<Arc<App>>) -> Json<Methods> {
    Json(Methods {
        methods: payments::offered(&app.payments),
        stripe: app.payments.stripe.as_ref().and_then(Stripe::shop).cloned(),
    })
}

/// The optional body: which address to ship to (else the default one),
/// and how to pay (else the sandbox).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PayRequest {
    address_id: Option<String>,
    #[serde(default)]
    method: PayChoice,
}

async fn pay(
    State(app): State<Arc<App>>,
    Shopper(username): Shopper,
    PathId(order_id): PathId,
    OptionalJson(request): OptionalJson<PayRequest>,
) -> Result<Json<Payment>, Error> {
    app.admission.admit(&app.gate, Action::Pay, &username).await?;
    let ship_to = accounts::receiver(&app.ledger, &username, request.address_id.as_deref()).await?;
    let now = Utc::now();
    let payment = match request.method {
        PayChoice::Online(method) => payments::pay(app.ports(), &username, &order_id, method, ship_to, now).await?,
        PayChoice::OnDelivery => Payment {
            order: payments::pay_on_delivery(app.ports(), &username, &order_id, ship_to, now).await?,
            pay_action: None,
        },
    };
    Ok(Json(payment))
}
