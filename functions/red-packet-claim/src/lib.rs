//! Red-packet rain: `POST /red-packets/{campaign_id}/claim`.

use std::sync::Arc;

use axum::{Json, extract::State};
use chrono::Utc;
use shared::{
    App, Error,
    domain::{admission, hot::Hit},
    http::{LateShopper, PathId, Routes, SaleTicket, problem},
    metrics,
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
    let timer = metrics::Timer::start();
    shared::app::count(&app, Hit::Claim, &campaign_id);
    let shopper = || shopper.claims(&app);
    let now = Utc::now();
    let packet = admission::claim(
        app.ports(),
        &app.admission,
        shopper,
        ticket.as_deref(),
        &campaign_id,
        now,
    )
    .await;
    let code = problem::code_of(&packet, problem::CLAIMED);
    shared::app::answered(&app, Hit::Claim, &campaign_id, code);
    metrics::claim(code, timer);
    Ok(Json(packet?))
}
