//! The storefront: `GET /seckill/items/{sku_id}`.

use std::sync::Arc;

use axum::{Json, extract::State};
use chrono::Utc;
use shared::{
    App, Error,
    catalog::{self, SaleItem},
    http::{PathId, Routes},
};

pub fn routes() -> Routes {
    Routes::new().get("/seckill/items/{sku_id}", item)
}

async fn item(State(app): State<Arc<App>>, PathId(sku_id): PathId) -> Result<Json<SaleItem>, Error> {
    Ok(Json(
        catalog::sale_item(&app.gate, &app.store, &sku_id, Utc::now()).await?,
    ))
}
