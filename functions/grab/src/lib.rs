//! Grab: `POST /seckill/items/{sku_id}/grab`, the hot path of a flash sale,
//! and what a guarded sale asks of its crowd first, for SKUs and rains
//! alike: a place in its waiting room (`POST …/queue`, and the room's
//! document `GET …/queue`), `GET …/challenge` and `POST …/ticket`.

use std::sync::Arc;

use axum::{Json, extract::State, http::HeaderMap, response::Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::{
    App, Error,
    domain::{
        admission::{
            self, Sale,
            room::{self, Joined},
        },
        hot::Hit,
        tickets::{Challenge, Solution},
    },
    http::{ApiJson, LateShopper, PathId, Routes, SaleTicket, created, live, problem},
    metrics,
    model::{Order, OrderStatus},
    ts,
};

pub fn routes() -> Routes<Arc<App>> {
    Routes::new()
        .post("/seckill/items/{sku_id}/grab", grab)
        .get("/seckill/items/{sku_id}/challenge", sku_challenge)
        .post("/seckill/items/{sku_id}/ticket", sku_ticket)
        .get("/red-packets/{campaign_id}/challenge", rain_challenge)
        .post("/red-packets/{campaign_id}/ticket", rain_ticket)
        .post("/seckill/items/{sku_id}/queue", sku_join)
        .get("/seckill/items/{sku_id}/queue", sku_line)
        .post("/red-packets/{campaign_id}/queue", rain_join)
        .get("/red-packets/{campaign_id}/queue", rain_line)
}

/// The winner's receipt: pay `price` before `pay_deadline`.
#[derive(Debug, Serialize)]
pub struct Grabbed {
    pub order_id: String,
    pub sku_id: String,
    pub price: i64,
    pub status: OrderStatus,
    #[serde(with = "ts")]
    pub pay_deadline: DateTime<Utc>,
}

impl From<Order> for Grabbed {
    fn from(order: Order) -> Self {
        Grabbed {
            order_id: order.id,
            sku_id: order.sku_id,
            price: order.price,
            status: order.status,
            pay_deadline: order.pay_deadline,
        }
    }
}

async fn grab(
    State(app): State<Arc<App>>,
    PathId(sku_id): PathId,
    shopper: LateShopper,
    SaleTicket(ticket): SaleTicket,
) -> Result<Response, Error> {
    let timer = metrics::Timer::start();
    shared::app::count(&app, Hit::Grab, &sku_id);
    let shopper = || shopper.claims(&app);
    let now = Utc::now();
    let order = admission::grab(app.ports(), &app.admission, shopper, ticket.as_deref(), &sku_id, now).await;
    let code = problem::code_of(&order, problem::CREATED);
    shared::app::answered(&app, Hit::Grab, &sku_id, code);
    metrics::grab(code, timer);
    Ok(created(Grabbed::from(order?)))
}

async fn sku_challenge(
    State(app): State<Arc<App>>,
    PathId(sku_id): PathId,
    shopper: LateShopper,
) -> Result<Json<Challenge>, Error> {
    challenge(&app, Sale::Sku(&sku_id), shopper).await
}

async fn rain_challenge(
    State(app): State<Arc<App>>,
    PathId(campaign_id): PathId,
    shopper: LateShopper,
) -> Result<Json<Challenge>, Error> {
    challenge(&app, Sale::Campaign(&campaign_id), shopper).await
}

async fn sku_ticket(
    State(app): State<Arc<App>>,
    PathId(sku_id): PathId,
    shopper: LateShopper,
    ApiJson(solution): ApiJson<Solution>,
) -> Result<Response, Error> {
    ticket(&app, Sale::Sku(&sku_id), shopper, solution).await
}

async fn rain_ticket(
    State(app): State<Arc<App>>,
    PathId(campaign_id): PathId,
    shopper: LateShopper,
    ApiJson(solution): ApiJson<Solution>,
) -> Result<Response, Error> {
    ticket(&app, Sale::Campaign(&campaign_id), shopper, solution).await
}

async fn challenge(app: &Arc<App>, sale: Sale<'_>, shopper: LateShopper) -> Result<Json<Challenge>, Error> {
    let claims = shopper.claims(app)?;
    Ok(Json(
        admission::challenge(app.ports(), &app.admission, &claims, sale, Utc::now()).await?,
    ))
}

async fn ticket(app: &Arc<App>, sale: Sale<'_>, shopper: LateShopper, solution: Solution) -> Result<Response, Error> {
    let claims = shopper.claims(app)?;
    Ok(created(
        admission::ticket(app.ports(), &app.admission, &claims, sale, &solution, Utc::now()).await?,
    ))
}

async fn sku_join(
    State(app): State<Arc<App>>,
    PathId(sku_id): PathId,
    shopper: LateShopper,
) -> Result<Json<Joined>, Error> {
    join(&app, Sale::Sku(&sku_id), shopper).await
}

async fn rain_join(
    State(app): State<Arc<App>>,
    PathId(campaign_id): PathId,
    shopper: LateShopper,
) -> Result<Json<Joined>, Error> {
    join(&app, Sale::Campaign(&campaign_id), shopper).await
}

async fn sku_line(State(app): State<Arc<App>>, PathId(sku_id): PathId, request: HeaderMap) -> Result<Response, Error> {
    line(&app, Sale::Sku(&sku_id), &request).await
}

async fn rain_line(
    State(app): State<Arc<App>>,
    PathId(campaign_id): PathId,
    request: HeaderMap,
) -> Result<Response, Error> {
    line(&app, Sale::Campaign(&campaign_id), &request).await
}

async fn join(app: &Arc<App>, sale: Sale<'_>, shopper: LateShopper) -> Result<Json<Joined>, Error> {
    let claims = shopper.claims(app)?;
    Ok(Json(
        room::join(app.ports(), &app.admission, &claims, sale, Utc::now()).await?,
    ))
}

/// For every waiting page to poll: an edge keeps it a second.
async fn line(app: &Arc<App>, sale: Sale<'_>, request: &HeaderMap) -> Result<Response, Error> {
    let room = room::line(app.ports(), &app.admission, sale, Utc::now()).await?;
    Ok(live(request, &room, &room.level))
}
