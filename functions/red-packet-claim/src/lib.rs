//! Red-packet rain: `POST /red-packets/{campaign_id}/claim`.

use std::sync::Arc;

use axum::{Json, Router, extract::State, routing::post};
use chrono::Utc;
use shared::{
    App, Error,
    http::{PathId, Shopper},
    red_packet::{self, Packet},
};

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/red-packets/{campaign_id}/claim", post(claim))
        .with_state(app)
}

async fn claim(
    State(app): State<Arc<App>>,
    Shopper(username): Shopper,
    PathId(campaign_id): PathId,
) -> Result<Json<Packet>, Error> {
    Ok(Json(
        red_packet::claim(&app.gate, &campaign_id, &username, Utc::now()).await?,
    ))
}
