//! Pay: `POST /orders/{order_id}/pay` through the payment provider.

use std::sync::Arc;

use axum::{Json, Router, extract::State, routing::post};
use chrono::Utc;
use shared::{
    App, Error, flash_sale,
    http::{PathId, Shopper},
    model::Order,
};

pub fn router(app: Arc<App>) -> Router {
    Router::new().route("/orders/{order_id}/pay", post(pay)).with_state(app)
}

async fn pay(
    State(app): State<Arc<App>>,
    Shopper(username): Shopper,
    PathId(order_id): PathId,
) -> Result<Json<Order>, Error> {
    let order = flash_sale::pay(&app.gate, &app.store, &app.payments, &username, &order_id, Utc::now()).await?;
    Ok(Json(order))
}
