//! Orders: `GET /orders`, `GET /orders/{order_id}`,
//! `POST /orders/{order_id}/cancel`, `POST /orders/{order_id}/receive`,
//! `POST /orders/{order_id}/return`.

use std::sync::Arc;

use axum::{Json, extract::State};
use chrono::Utc;
use serde::Deserialize;
use shared::{
    App, Error,
    domain::{
        flash_sale::{self, Fulfilment, Viewer},
        payments,
    },
    http::{ApiQuery, Caller, OptionalJson, PageQuery, PathId, Routes, Shopper},
    model::OrderRecord,
    ports::Page,
};

pub fn routes() -> Routes<Arc<App>> {
    Routes::new()
        .get("/orders", list)
        .get("/orders/{order_id}", show)
        .post("/orders/{order_id}/cancel", cancel)
        .post("/orders/{order_id}/receive", receive)
        .post("/orders/{order_id}/return", request_return)
}

async fn list(
    State(app): State<Arc<App>>,
    Shopper(username): Shopper,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Page<OrderRecord>>, Error> {
    let (limit, cursor) = query.checked()?;
    Ok(Json(
        flash_sale::orders_of(&app.ledger, &username, limit, cursor)
            .await?
            .map(OrderRecord::from),
    ))
}

async fn show(
    State(app): State<Arc<App>>,
    caller: Caller,
    PathId(order_id): PathId,
) -> Result<Json<OrderRecord>, Error> {
    let viewer = match &caller {
        Caller::Shopper(username) => Viewer::Shopper(username),
        Caller::Operator(_) => Viewer::Operator,
    };
    Ok(Json(
        flash_sale::visible_order(&app.ledger, &order_id, viewer).await?.into(),
    ))
}

async fn cancel(
    State(app): State<Arc<App>>,
    Shopper(username): Shopper,
    PathId(order_id): PathId,
) -> Result<Json<OrderRecord>, Error> {
    Ok(Json(
        flash_sale::cancel(app.ports(), &username, &order_id, Utc::now())
            .await?
            .into(),
    ))
}

async fn receive(
    State(app): State<Arc<App>>,
    Shopper(username): Shopper,
    PathId(order_id): PathId,
) -> Result<Json<OrderRecord>, Error> {
    let viewer = Viewer::Shopper(&username);
    Ok(Json(
        flash_sale::advance(&app.ledger, &order_id, viewer, Fulfilment::Receive, Utc::now())
            .await?
            .into(),
    ))
}

/// The optional body of a return: why.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnRequest {
    reason: Option<String>,
}

async fn request_return(
    State(app): State<Arc<App>>,
    Shopper(username): Shopper,
    PathId(order_id): PathId,
    OptionalJson(request): OptionalJson<ReturnRequest>,
) -> Result<Json<OrderRecord>, Error> {
    Ok(Json(
        payments::request_return(&app.ledger, &username, &order_id, request.reason, Utc::now())
            .await?
            .into(),
    ))
}
