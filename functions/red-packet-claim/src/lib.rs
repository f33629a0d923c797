//! Red-packet rain: `POST /red-packets/{campaign_id}/claim`.

use std::sync::Arc;

use axum::{Json, extract::State};
use chrono::Utc;
use shared::{
    App, Error,
    domain::crowd,
    http::{LateShopper, PathId, Routes, Shopper},
    model::Packet,
};

pub fn routes() -> Routes<Arc<App>> {
    Routes::new().post("/red-packets/{campaign_id}/claim", claim)
}

async fn claim(
    State(app): State<Arc<App>>,
    PathId(campaign_id): PathId,
    shopper: LateShopper,
) -> Result<Json<Packet>, Error> {
    let shopper = || shopper.verify(&app).map(|Shopper(username)| username);
    Ok(Json(
        crowd::claim(app.ports(), &app.crowd, shopper, &campaign_id, Utc::now()).await?,
    ))
}
