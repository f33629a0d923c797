//! The storefront (public; the seed's "search system"): today's time
//! slots, the items on sale with live stock, one item's page (each view
//! counted toward hot-item discovery), the red-packet rains to join, and
//! the stock documents rendered pages poll through an edge.

use std::sync::Arc;

use axum::{
    Json,
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use shared::{
    App, Error,
    domain::{
        hot::Hit,
        red_packet::Rain,
        storefront::{self, ItemQuery, SaleItem, SlotToday},
    },
    http::{ApiQuery, PageQuery, PathId, Routes, cacheable, live},
    ports::Page,
};

pub fn routes() -> Routes<Arc<App>> {
    Routes::new()
        .get("/seckill/slots", slots)
        .get("/seckill/items", items)
        .get("/seckill/items/{sku_id}", item)
        .get("/seckill/items/{sku_id}/stock", item_stock)
        .get("/red-packets", rains)
        .get("/red-packets/{campaign_id}/stock", rain_stock)
}

/// What a rendered item page polls: for an edge to keep a second (`304`
/// when unchanged). Counted toward hot-item discovery, as the page's views
/// reach no function.
async fn item_stock(
    State(app): State<Arc<App>>,
    PathId(sku_id): PathId,
    request: HeaderMap,
) -> Result<Response, Error> {
    shared::app::count(&app, Hit::View, &sku_id);
    let hot = app.hits.is_hot(&sku_id);
    let stock = storefront::item_stock(app.ports(), &app.catalog_cache, &sku_id, hot, Utc::now()).await?;
    Ok(live(&request, &stock, &stock.level))
}

/// A rain's packets left, as [`item_stock`].
async fn rain_stock(
    State(app): State<Arc<App>>,
    PathId(campaign_id): PathId,
    request: HeaderMap,
) -> Result<Response, Error> {
    let stock = storefront::rain_stock(app.ports(), &app.catalog_cache, &campaign_id, Utc::now()).await?;
    Ok(live(&request, &stock, &stock.level))
}

/// Counted toward hot-item discovery. A hot SKU's page is one a CDN may
/// serve for a second (`Cache-Control`, `ETag`).
async fn item(State(app): State<Arc<App>>, PathId(sku_id): PathId, request: HeaderMap) -> Result<Response, Error> {
    shared::app::count(&app, Hit::View, &sku_id);
    let hot = app.hits.is_hot(&sku_id);
    let item = storefront::sale_item(app.ports(), &app.catalog_cache, &sku_id, hot, Utc::now()).await?;
    Ok(if hot {
        cacheable(&request, &item)
    } else {
        Json(item).into_response()
    })
}

async fn slots(State(app): State<Arc<App>>) -> Result<Json<Slots>, Error> {
    Ok(Json(Slots {
        items: storefront::slots_today(&app.ledger, app.slot_offset, Utc::now()).await?,
    }))
}

#[derive(Serialize)]
struct Slots {
    items: Vec<SlotToday>,
}

async fn rains(State(app): State<Arc<App>>) -> Result<Json<Rains>, Error> {
    Ok(Json(Rains {
        items: storefront::rains(app.ports(), &app.catalog_cache, Utc::now()).await?,
    }))
}

#[derive(Serialize)]
struct Rains {
    items: Vec<Rain>,
}

#[derive(Deserialize)]
struct ItemsQuery {
    slot: Option<String>,
    category: Option<String>,
    brand: Option<String>,
    q: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

async fn items(
    State(app): State<Arc<App>>,
    ApiQuery(query): ApiQuery<ItemsQuery>,
) -> Result<Json<Page<SaleItem>>, Error> {
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let search = ItemQuery {
        slot: query.slot,
        category: query.category,
        brand: query.brand,
        q: query.q,
    };
    let found = storefront::sale_items(
        app.ports(),
        &app.catalog_cache,
        search,
        app.slot_offset,
        Utc::now(),
        page.checked()?,
    )
    .await?;
    Ok(Json(found))
}
