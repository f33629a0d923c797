//! Orders: `GET /orders`, `GET /orders/{order_id}`,
//! `POST /orders/{order_id}/cancel`, `POST /orders/{order_id}/receive`.

use std::sync::Arc;

use axum::{Json, extract::State};
use chrono::Utc;
use shared::{
    App, Error,
    domain::flash_sale::{self, Fulfilment, Viewer},
    http::{ApiQuery, Caller, PageQuery, PathId, Routes, Shopper},
    model::Order,
    ports::Page,
};

pub fn routes() -> Routes<Arc<App>> {
    Routes::new()
        .get("/orders", list)
        .get("/orders/{order_id}", show)
        .post("/orders/{order_id}/cancel", cancel)
        .post("/orders/{order_id}/receive", receive)
}

async fn list(
    State(app): State<Arc<App>>,
    Shopper(username): Shopper,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Page<Order>>, Error> {
    let (limit, cursor) = query.checked()?;
    Ok(Json(
        flash_sale::orders_of(&app.ledger, &username, limit, cursor).await?,
    ))
}

async fn show(State(app): State<Arc<App>>, caller: Caller, PathId(order_id): PathId) -> Result<Json<Order>, Error> {
    let viewer = match &caller {
        Caller::Shopper(username) => Viewer::Shopper(username),
        Caller::Operator(_) => Viewer::Operator,
    };
    Ok(Json(flash_sale::visible_order(&app.ledger, &order_id, viewer).await?))
}

async fn cancel(
    State(app): State<Arc<App>>,
    Shopper(username): Shopper,
    PathId(order_id): PathId,
) -> Result<Json<Order>, Error> {
    Ok(Json(
        flash_sale::cancel(app.ports(), &username, &order_id, Utc::now()).await?,
    ))
}

async fn receive(
    State(app): State<Arc<App>>,
    Shopper(username): Shopper,
    PathId(order_id): PathId,
) -> Result<Json<Order>, Error> {
    let viewer = Viewer::Shopper(&username);
    Ok(Json(
        flash_sale::advance(&app.ledger, &order_id, viewer, Fulfilment::Receive, Utc::now()).await?,
    ))
}
