//! Grab: `POST /seckill/items/{sku_id}/grab`, the hot path of a flash sale.

use std::sync::Arc;

use axum::{Router, extract::State, response::Response, routing::post};
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::{
    App, Error, flash_sale,
    http::{PathId, Shopper, created},
    model::{Order, OrderStatus},
    ts,
};

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/seckill/items/{sku_id}/grab", post(grab))
        .with_state(app)
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
    let order = flash_sale::grab(&app.gate, &app.store, &app.store, &username, &sku_id, Utc::now()).await?;
    Ok(created(Grabbed::from(order)))
}
