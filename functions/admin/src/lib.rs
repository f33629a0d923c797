//! The back office (operator token on every route): the catalog (SKUs,
//! activities, time slots, brands, categories, SKU ↔ activity links),
//! publishing (which renders the item's page), orders and shipping, red-packet campaigns, hot items, the
//! live boards of a sale and a rain, operators.

use std::sync::Arc;

use axum::{Json, extract::State, http::StatusCode, response::Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use shared::{
    App, Error,
    domain::{
        accounts::{self, AdminChange, NewAdmin},
        admission,
        board::{self, RainBoard, SaleBoard},
        catalog::{self, Fields},
        flash_sale::{self, Fulfilment, PublishedSku, SaleStats, Viewer},
        hot::{self, HotItem, MarkedHot},
        payments,
        red_packet::{self, CampaignStats, NewCampaign, Rain},
        storefront,
    },
    error::invalid,
    http::{ApiJson, ApiQuery, Operator, PageQuery, PathId, PathIds, Routes, created, problem},
    model::{
        ActivityFields, Admin, BrandFields, CategoryFields, OrderRecord, OrderStatus, Sku, SkuActivity, SkuFields,
        SlotFields, Stored,
    },
    ports::{CampaignStore, Page},
};

type AppRoutes = Routes<Arc<App>>;

pub fn routes() -> AppRoutes {
    let routes = Routes::new()
        .post("/admin/skus", create_sku)
        .get("/admin/skus", list_skus)
        .get("/admin/skus/{sku_id}", show_sku)
        .put("/admin/skus/{sku_id}", put_sku)
        .delete("/admin/skus/{sku_id}", delete_sku)
        .post("/admin/skus/{sku_id}/publish", publish)
        .get("/admin/skus/{sku_id}/stats", sale_stats)
        .get("/admin/skus/{sku_id}/live", sale_board)
        .get("/admin/hot-items", hot_items)
        .put("/admin/hot-items/{sku_id}", mark_hot)
        .delete("/admin/hot-items/{sku_id}", unmark_hot)
        .get("/admin/activities/{activity_id}/skus", linked_skus)
        .put("/admin/activities/{activity_id}/skus/{sku_id}", link)
        .delete("/admin/activities/{activity_id}/skus/{sku_id}", unlink)
        .get("/admin/categories", list_categories)
        .get("/admin/orders", list_orders)
        .post("/admin/orders/{order_id}/ship", ship)
        .post("/admin/orders/{order_id}/collect", collect)
        .post("/admin/orders/{order_id}/return/accept", accept_return)
        .post("/admin/orders/{order_id}/return/refuse", refuse_return)
        .post("/admin/red-packets", create_campaign)
        .get("/admin/red-packets", list_campaigns)
        .get("/admin/red-packets/{campaign_id}", show_campaign)
        .get("/admin/red-packets/{campaign_id}/live", rain_board)
        .post("/admin/admins", add_admin)
        .get("/admin/admins", list_admins)
        .put("/admin/admins/{login_name}", change_admin);
    let routes = records::<ActivityFields>(routes, "/admin/activities", "/admin/activities/{activity_id}")
        .get("/admin/activities", list::<ActivityFields>);
    let routes =
        records::<SlotFields>(routes, "/admin/slots", "/admin/slots/{slot_id}").get("/admin/slots", list::<SlotFields>);
    let routes = records::<BrandFields>(routes, "/admin/brands", "/admin/brands/{brand_id}")
        .get("/admin/brands", list::<BrandFields>);
    records::<CategoryFields>(routes, "/admin/categories", "/admin/categories/{category_id}")
}

/// The life cycle every catalog record shares (see `shared::domain::catalog`).
fn records<F: Fields>(routes: AppRoutes, collection: &'static str, item: &'static str) -> AppRoutes {
    routes
        .post(collection, create::<F>)
        .get(item, show::<F>)
        .put(item, put::<F>)
        .delete(item, delete::<F>)
}

async fn create<F: Fields>(
    State(app): State<Arc<App>>,
    _: Operator,
    ApiJson(fields): ApiJson<F>,
) -> Result<Response, Error> {
    Ok(created(catalog::create(&app.ledger, fields).await?))
}

async fn list<F: Fields>(
    State(app): State<Arc<App>>,
    _: Operator,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Page<Stored<F>>>, Error> {
    let (limit, cursor) = page.checked()?;
    Ok(Json(catalog::page::<F>(&app.ledger, limit, cursor).await?))
}

async fn show<F: Fields>(
    State(app): State<Arc<App>>,
    _: Operator,
    PathId(id): PathId,
) -> Result<Json<Stored<F>>, Error> {
    Ok(Json(catalog::get::<F>(&app.ledger, &id).await?))
}

async fn put<F: Fields>(
    State(app): State<Arc<App>>,
    _: Operator,
    PathId(id): PathId,
    ApiJson(fields): ApiJson<F>,
) -> Result<Json<Stored<F>>, Error> {
    Ok(Json(catalog::put(&app.ledger, &id, fields).await?))
}

async fn delete<F: Fields>(State(app): State<Arc<App>>, _: Operator, PathId(id): PathId) -> Result<StatusCode, Error> {
    catalog::delete::<F>(&app.ledger, &id, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize)]
struct CategoryQuery {
    parent_id: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// All categories, or the children of `parent_id` (`0` for the top level).
async fn list_categories(
    State(app): State<Arc<App>>,
    _: Operator,
    ApiQuery(query): ApiQuery<CategoryQuery>,
) -> Result<Json<Page<Stored<CategoryFields>>>, Error> {
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let (limit, cursor) = page.checked()?;
    Ok(Json(
        catalog::categories(&app.ledger, query.parent_id.as_deref(), limit, cursor).await?,
    ))
}

async fn create_sku(
    State(app): State<Arc<App>>,
    _: Operator,
    ApiJson(fields): ApiJson<SkuFields>,
) -> Result<Response, Error> {
    Ok(created(catalog::create_sku(&app.ledger, fields, Utc::now()).await?))
}

async fn list_skus(
    State(app): State<Arc<App>>,
    _: Operator,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Page<Sku>>, Error> {
    let (limit, cursor) = page.checked()?;
    Ok(Json(catalog::skus(&app.ledger, limit, cursor).await?))
}

async fn show_sku(State(app): State<Arc<App>>, _: Operator, PathId(sku_id): PathId) -> Result<Json<Sku>, Error> {
    Ok(Json(catalog::sku(&app.ledger, &sku_id).await?))
}

async fn put_sku(
    State(app): State<Arc<App>>,
    _: Operator,
    PathId(sku_id): PathId,
    ApiJson(fields): ApiJson<SkuFields>,
) -> Result<Json<Sku>, Error> {
    let sku = catalog::put_sku(app.ports(), &sku_id, fields, Utc::now()).await?;
    storefront::refresh_item_page(&app.pages, &sku).await?;
    Ok(Json(sku))
}

async fn delete_sku(State(app): State<Arc<App>>, _: Operator, PathId(sku_id): PathId) -> Result<StatusCode, Error> {
    catalog::delete_sku(&app.ledger, &sku_id, Utc::now()).await?;
    storefront::remove_item_page(&app.pages, &sku_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn publish(
    State(app): State<Arc<App>>,
    _: Operator,
    PathId(sku_id): PathId,
) -> Result<Json<PublishedSku>, Error> {
    let published = admission::publish(app.ports(), &app.admission, &sku_id, Utc::now()).await?;
    storefront::refresh_item_page(&app.pages, &published.sku).await?;
    Ok(Json(published))
}

async fn linked_skus(
    State(app): State<Arc<App>>,
    _: Operator,
    PathId(activity_id): PathId,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Page<SkuActivity>>, Error> {
    let (limit, cursor) = page.checked()?;
    Ok(Json(
        catalog::linked_skus(&app.ledger, &activity_id, limit, cursor).await?,
    ))
}

async fn link(
    State(app): State<Arc<App>>,
    _: Operator,
    PathIds(activity_id, sku_id): PathIds,
) -> Result<Json<SkuActivity>, Error> {
    Ok(Json(
        catalog::link(&app.ledger, SkuActivity { activity_id, sku_id }).await?,
    ))
}

async fn unlink(
    State(app): State<Arc<App>>,
    _: Operator,
    PathIds(activity_id, sku_id): PathIds,
) -> Result<StatusCode, Error> {
    catalog::unlink(&app.ledger, &SkuActivity { activity_id, sku_id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct OrderQuery {
    status: Option<OrderStatus>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Orders in one status, newest first.
async fn list_orders(
    State(app): State<Arc<App>>,
    _: Operator,
    ApiQuery(query): ApiQuery<OrderQuery>,
) -> Result<Json<Page<OrderRecord>>, Error> {
    let status = query.status.ok_or_else(|| {
        invalid(
            "`status` is required: PENDING_PAYMENT, PAID, CONFIRMED, SHIPPED, COMPLETED, RETURN_REQUESTED, RETURNED or CANCELLED",
        )
    })?;
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let (limit, cursor) = page.checked()?;
    Ok(Json(
        flash_sale::orders_in(&app.ledger, status, limit, cursor)
            .await?
            .map(OrderRecord::from),
    ))
}

async fn ship(State(app): State<Arc<App>>, _: Operator, PathId(order_id): PathId) -> Result<Json<OrderRecord>, Error> {
    fulfil(&app, &order_id, Fulfilment::Ship).await
}

/// A cash-on-delivery order's cash is in: it is paid and complete.
async fn collect(
    State(app): State<Arc<App>>,
    _: Operator,
    PathId(order_id): PathId,
) -> Result<Json<OrderRecord>, Error> {
    fulfil(&app, &order_id, Fulfilment::Collect).await
}

async fn fulfil(app: &App, order_id: &str, step: Fulfilment) -> Result<Json<OrderRecord>, Error> {
    let order = flash_sale::advance(&app.ledger, order_id, Viewer::Operator, step, Utc::now()).await?;
    Ok(Json(order.into()))
}

async fn accept_return(
    State(app): State<Arc<App>>,
    _: Operator,
    PathId(order_id): PathId,
) -> Result<Json<OrderRecord>, Error> {
    Ok(Json(
        payments::accept_return(app.ports(), &order_id, Utc::now())
            .await?
            .into(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Refusal {
    reason: String,
}

async fn refuse_return(
    State(app): State<Arc<App>>,
    _: Operator,
    PathId(order_id): PathId,
    ApiJson(refusal): ApiJson<Refusal>,
) -> Result<Json<OrderRecord>, Error> {
    Ok(Json(
        payments::refuse_return(&app.ledger, &order_id, &refusal.reason, Utc::now())
            .await?
            .into(),
    ))
}

async fn create_campaign(
    State(app): State<Arc<App>>,
    _: Operator,
    ApiJson(form): ApiJson<NewCampaign>,
) -> Result<Response, Error> {
    Ok(created(red_packet::create(app.ports(), form, Utc::now()).await?))
}

async fn sale_stats(
    State(app): State<Arc<App>>,
    _: Operator,
    PathId(sku_id): PathId,
) -> Result<Json<SaleStats>, Error> {
    Ok(Json(flash_sale::sale_stats(app.ports(), &sku_id).await?))
}

#[derive(Serialize)]
struct HotItems {
    items: Vec<HotItem>,
}

/// Every item counted in the last minute and every hot SKU, busiest first.
async fn hot_items(State(app): State<Arc<App>>, _: Operator) -> Result<Json<HotItems>, Error> {
    Ok(Json(HotItems {
        items: hot::list(&app.gate, Utc::now()).await?,
    }))
}

async fn mark_hot(State(app): State<Arc<App>>, _: Operator, PathId(sku_id): PathId) -> Result<Json<MarkedHot>, Error> {
    Ok(Json(hot::mark(app.ports(), app.hot, &sku_id, Utc::now()).await?))
}

async fn unmark_hot(State(app): State<Arc<App>>, _: Operator, PathId(sku_id): PathId) -> Result<StatusCode, Error> {
    hot::unmark(&app.gate, &sku_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How long after its end a campaign is still listed.
const CAMPAIGNS_LISTED_AFTER_END: chrono::Duration = chrono::Duration::days(30);

#[derive(Serialize)]
struct Campaigns {
    items: Vec<Rain>,
}

/// Campaigns on, coming, or ended within the last 30 days, by start.
async fn list_campaigns(State(app): State<Arc<App>>, _: Operator) -> Result<Json<Campaigns>, Error> {
    let now = Utc::now();
    let campaigns = app
        .ledger
        .campaigns_ending_after(now - CAMPAIGNS_LISTED_AFTER_END)
        .await?;
    Ok(Json(Campaigns {
        items: red_packet::rains(&app.gate, campaigns, now).await?,
    }))
}

async fn sale_board(
    State(app): State<Arc<App>>,
    _: Operator,
    PathId(sku_id): PathId,
) -> Result<Json<SaleBoard>, Error> {
    Ok(Json(
        board::sale(app.ports(), &sku_id, &problem::ANSWERS, Utc::now()).await?,
    ))
}

async fn rain_board(
    State(app): State<Arc<App>>,
    _: Operator,
    PathId(campaign_id): PathId,
) -> Result<Json<RainBoard>, Error> {
    Ok(Json(
        board::rain(app.ports(), &campaign_id, &problem::ANSWERS, Utc::now()).await?,
    ))
}

async fn show_campaign(
    State(app): State<Arc<App>>,
    _: Operator,
    PathId(campaign_id): PathId,
) -> Result<Json<CampaignStats>, Error> {
    Ok(Json(red_packet::stats(app.ports(), &campaign_id).await?))
}

async fn add_admin(
    State(app): State<Arc<App>>,
    _: Operator,
    ApiJson(form): ApiJson<NewAdmin>,
) -> Result<Response, Error> {
    Ok(created(accounts::add_admin(&app.ledger, form).await?))
}

async fn list_admins(
    State(app): State<Arc<App>>,
    _: Operator,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Page<Admin>>, Error> {
    let (limit, cursor) = page.checked()?;
    Ok(Json(accounts::admins(&app.ledger, limit, cursor).await?))
}

async fn change_admin(
    State(app): State<Arc<App>>,
    Operator(actor): Operator,
    PathId(login_name): PathId,
    ApiJson(change): ApiJson<AdminChange>,
) -> Result<Json<Admin>, Error> {
    Ok(Json(
        accounts::change_admin(&app.ledger, &actor, &login_name, change).await?,
    ))
}
