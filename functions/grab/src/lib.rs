//! Grab: `POST /seckill/items/{sku_id}/grab`, the hot path of a flash sale.

use std::sync::Arc;

use axum::{extract::State, response::Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::{
    App, Error,
    domain::flash_sale,
    http::{PathId, Routes, Shopper, created},
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

async fn grab(
    State(app): State<Arc<App>>,
    Shopper(username): Shopper,
    PathId(sku_id): PathId,
) -> Result<Response, Error> {
    let order = flash_sale::grab(app.ports(), &username, &sku_id, Utc::now()).await?;
    Ok(created(Grabbed::from(order)))
}
