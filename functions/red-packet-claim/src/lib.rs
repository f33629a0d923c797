//! Red-packet rain: `POST /red-packets/{campaign_id}/claim`.

use std::sync::Arc;

use axum::{Json, extract::State};
use chrono::Utc;
use shared::{
    App, Error,
    domain::red_packet,
    http::{PathId, Routes, Shopper},
    model::Packet,
};

pub fn routes() -> Routes<Arc<App>> {
    Routes::new().post("/red-packets/{campaign_id}/claim", claim)
}

async fn claim(
    State(app): State<Arc<App>>,
    Shopper(username): Shopper,
    PathId(campaign_id): PathId,
) -> Result<Json<Packet>, Error> {
    Ok(Json(
        red_packet::claim(app.ports(), &campaign_id, &username, Utc::now()).await?,
    ))
}
