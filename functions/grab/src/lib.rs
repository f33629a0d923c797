//! Grab: `POST /seckill/items/{sku_id}/grab`, the hot path of a flash sale,
//! and the tickets a guarded sale asks of its crowd, for SKUs and rains
//! alike: `GET …/challenge` and `POST …/ticket`.

use std::sync::Arc;

use axum::{Json, extract::State, response::Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::{
    App, Error,
    domain::{
        admission::{self, Sale},
        hot::Hit,
        tickets::{Challenge, Solution},
    },
    http::{ApiJson, LateShopper, PathId, Routes, SaleTicket, created, problem},
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
        admission::challenge(&app.ledger, &app.admission, &claims, sale, Utc::now()).await?,
    ))
}

async fn ticket(app: &Arc<App>, sale: Sale<'_>, shopper: LateShopper, solution: Solution) -> Result<Response, Error> {
    let claims = shopper.claims(app)?;
    Ok(created(
        admission::ticket(&app.ledger, &app.admission, &claims, sale, &solution, Utc::now()).await?,
    ))
}
