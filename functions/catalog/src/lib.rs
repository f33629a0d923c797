//! The storefront: `GET /seckill/items/{sku_id}`.

use std::sync::Arc;

use axum::{Json, Router, extract::State, routing::get};
use chrono::Utc;
use shared::{
    App, Error,
    catalog::{self, SaleItem},
    http::PathId,
};

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/seckill/items/{sku_id}", get(item))
        .with_state(app)
}

async fn item(State(app): State<Arc<App>>, PathId(sku_id): PathId) -> Result<Json<SaleItem>, Error> {
    Ok(Json(
        catalog::sale_item(&app.gate, &app.store, &sku_id, Utc::now()).await?,
    ))
}
