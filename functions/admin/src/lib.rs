//! The back office: SKUs, publishing, shipping.

use std::sync::Arc;

use axum::{Json, extract::State, response::Response};
use chrono::Utc;
use shared::{
    App, Error, catalog,
    flash_sale::{self, Fulfilment, PublishedSku, SkuStore, Viewer},
    http::{ApiJson, Operator, PathId, Routes, created},
    model::{Order, Sku, SkuFields},
    red_packet::{self, CampaignStats, NewCampaign},
};

pub fn routes() -> Routes {
    Routes::new()
        .post("/admin/skus", create_sku)
        .get("/admin/skus/{sku_id}", show_sku)
        .post("/admin/skus/{sku_id}/publish", publish)
        .post("/admin/orders/{order_id}/ship", ship)
        .post("/admin/red-packets", create_campaign)
        .get("/admin/red-packets/{campaign_id}", show_campaign)
}

async fn create_sku(
    State(app): State<Arc<App>>,
    _: Operator,
    ApiJson(fields): ApiJson<SkuFields>,
) -> Result<Response, Error> {
    Ok(created(catalog::create_sku(&app.store, fields, Utc::now()).await?))
}

async fn show_sku(State(app): State<Arc<App>>, _: Operator, PathId(sku_id): PathId) -> Result<Json<Sku>, Error> {
    let sku = app.store.get_sku(&sku_id).await?.ok_or(Error::NotFound("sku"))?;
    Ok(Json(sku))
}

async fn publish(
    State(app): State<Arc<App>>,
    _: Operator,
    PathId(sku_id): PathId,
) -> Result<Json<PublishedSku>, Error> {
    Ok(Json(
        flash_sale::publish(&app.gate, &app.store, &app.store, &sku_id, Utc::now()).await?,
    ))
}

async fn ship(State(app): State<Arc<App>>, _: Operator, PathId(order_id): PathId) -> Result<Json<Order>, Error> {
    Ok(Json(
        flash_sale::advance(&app.store, &order_id, Viewer::Operator, Fulfilment::Ship, Utc::now()).await?,
    ))
}

async fn create_campaign(
    State(app): State<Arc<App>>,
    _: Operator,
    ApiJson(form): ApiJson<NewCampaign>,
) -> Result<Response, Error> {
    Ok(created(
        red_packet::create(&app.gate, &app.store, form, Utc::now()).await?,
    ))
}

async fn show_campaign(
    State(app): State<Arc<App>>,
    _: Operator,
    PathId(campaign_id): PathId,
) -> Result<Json<CampaignStats>, Error> {
    Ok(Json(red_packet::stats(&app.gate, &app.store, &campaign_id).await?))
}
