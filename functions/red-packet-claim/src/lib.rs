//! Red-packet rain: `POST /red-packets/{campaign_id}/claim`.

use std::sync::Arc;

use axum::{Json, extract::State};
use chrono::Utc;
use shared::{
    App, Error,
    domain::{crowd, hot::Hit},
    http::{LateShopper, PathId, Routes, SaleTicket},
    model::Packet,
};

pub fn routes() -> Routes<Arc<App>> {
    Routes::new().post("/red-packets/{campaign_id}/claim", claim)
}

async fn claim(
    State(app): State<Arc<App>>,
    PathId(campaign_id): PathId,
    shopper: LateShopper,
    SaleTicket(ticket): SaleTicket,
) -> Result<Json<Packet>, Error> {
    shared::app::count(&app, Hit::Claim, &campaign_id);
    let shopper = || shopper.claims(&app);
    let now = Utc::now();
    Ok(Json(
        crowd::claim(app.ports(), &app.crowd, shopper, ticket.as_deref(), &campaign_id, now).await?,
    ))
}
