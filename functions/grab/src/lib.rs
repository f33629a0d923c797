//! Grab: `POST /seckill/items/{sku_id}/grab`, the hot path of a flash sale.

use std::sync::Arc;

use axum::{extract::State, response::Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::{
    App, Error,
    domain::crowd,
    http::{LateShopper, PathId, Routes, Shopper, created},
    model::{Order, OrderStatus},
    ts,
};

pub fn routes() -> Routes<Arc<App>> {
    Routes::new().post("/seckill/items/{sku_id}/grab", grab)
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

async fn grab(State(app): State<Arc<App>>, PathId(sku_id): PathId, shopper: LateShopper) -> Result<Response, Error> {
    let shopper = || shopper.verify(&app).map(|Shopper(username)| username);
    let order = crowd::grab(app.ports(), &app.crowd, shopper, &sku_id, Utc::now()).await?;
    Ok(created(Grabbed::from(order)))
}
