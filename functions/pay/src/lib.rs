//! Pay: `POST /orders/{order_id}/pay` through the payment provider.

use std::sync::Arc;

use axum::{Json, extract::State};
use chrono::Utc;
use shared::{
    App, Error, flash_sale,
    http::{PathId, Routes, Shopper},
    model::Order,
};

pub fn routes() -> Routes {
    Routes::new().post("/orders/{order_id}/pay", pay)
}

async fn pay(
    State(app): State<Arc<App>>,
    Shopper(username): Shopper,
    PathId(order_id): PathId,
) -> Result<Json<Order>, Error> {
    let order = flash_sale::pay(&app.gate, &app.store, &app.payments, &username, &order_id, Utc::now()).await?;
    Ok(Json(order))
}
