//! Pay: `POST /orders/{order_id}/pay` through the payment provider; the
//! order keeps a copy of the address it ships to.

use std::sync::Arc;

use axum::{Json, extract::State};
use chrono::Utc;
use serde::Deserialize;
use shared::{
    App, Error,
    domain::{accounts, admission::Action, payments},
    http::{OptionalJson, PathId, Routes, Shopper},
    model::Order,
};

pub fn routes() -> Routes<Arc<App>> {
    Routes::new().post("/orders/{order_id}/pay", pay)
}

/// The optional body: which address to ship to (else the default one).
#[derive(Debug, Default, Deserialize)]
struct PayRequest {
    address_id: Option<String>,
}

async fn pay(
    State(app): State<Arc<App>>,
    Shopper(username): Shopper,
    PathId(order_id): PathId,
    OptionalJson(request): OptionalJson<PayRequest>,
) -> Result<Json<Order>, Error> {
    app.admission.admit(&app.gate, Action::Pay, &username).await?;
    let ship_to = accounts::receiver(&app.ledger, &username, request.address_id.as_deref()).await?;
    let order = payments::pay(app.ports(), &username, &order_id, ship_to, Utc::now()).await?;
    Ok(Json(order))
}
