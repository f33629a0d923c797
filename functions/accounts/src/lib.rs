//! Accounts: `POST /auth/register`, `POST /auth/login`, `POST /admin/login`,
//! and the shopper's own records: profile, addresses, balance (`/me…`).

use std::sync::Arc;

use axum::{Json, extract::State, http::StatusCode, response::Response};
use chrono::Utc;
use serde::Serialize;
use shared::{
    App, Error,
    domain::{
        accounts::{self, AdminLogin, Login, Registration},
        admission,
        auth::IssuedToken,
        red_packet::{self, Balance},
    },
    http::{ApiJson, ApiQuery, ClientAddress, PageQuery, PathId, Routes, Shopper, created},
    model::{Address, AddressFields, Profile, User},
};

pub fn routes() -> Routes<Arc<App>> {
    Routes::new()
        .post("/auth/register", register)
        .post("/auth/login", login)
        .post("/admin/login", admin_login)
        .get("/me", profile)
        .put("/me", update_profile)
        .get("/me/addresses", addresses)
        .post("/me/addresses", add_address)
        .put("/me/addresses/{address_id}", put_address)
        .delete("/me/addresses/{address_id}", delete_address)
        .get("/me/balance", balance)
}

async fn register(
    State(app): State<Arc<App>>,
    ClientAddress(address): ClientAddress,
    ApiJson(form): ApiJson<Registration>,
) -> Result<Response, Error> {
    Ok(created(
        admission::register(app.ports(), &app.admission, &address, form, Utc::now()).await?,
    ))
}

async fn login(
    State(app): State<Arc<App>>,
    ClientAddress(address): ClientAddress,
    ApiJson(form): ApiJson<Login>,
) -> Result<Json<IssuedToken>, Error> {
    Ok(Json(
        admission::login(app.ports(), &app.admission, &app.tokens, &address, form, Utc::now()).await?,
    ))
}

async fn admin_login(
    State(app): State<Arc<App>>,
    ClientAddress(address): ClientAddress,
    ApiJson(form): ApiJson<AdminLogin>,
) -> Result<Json<IssuedToken>, Error> {
    Ok(Json(
        admission::admin_login(app.ports(), &app.admission, &app.tokens, &address, form, Utc::now()).await?,
    ))
}

async fn balance(
    State(app): State<Arc<App>>,
    Shopper(username): Shopper,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Balance>, Error> {
    let (limit, cursor) = page.checked()?;
    Ok(Json(red_packet::balance(&app.ledger, &username, limit, cursor).await?))
}

async fn profile(State(app): State<Arc<App>>, Shopper(username): Shopper) -> Result<Json<User>, Error> {
    Ok(Json(accounts::profile(&app.ledger, &username).await?))
}

async fn update_profile(
    State(app): State<Arc<App>>,
    Shopper(username): Shopper,
    ApiJson(profile): ApiJson<Profile>,
) -> Result<Json<User>, Error> {
    Ok(Json(
        accounts::update_profile(&app.ledger, &username, profile, Utc::now()).await?,
    ))
}

/// `{"items"}`: every address of the shopper (at most 20), the default first.
#[derive(Serialize)]
struct Addresses {
    items: Vec<Address>,
}

async fn addresses(State(app): State<Arc<App>>, Shopper(username): Shopper) -> Result<Json<Addresses>, Error> {
    Ok(Json(Addresses {
        items: accounts::addresses(&app.ledger, &username).await?,
    }))
}

async fn add_address(
    State(app): State<Arc<App>>,
    Shopper(username): Shopper,
    ApiJson(fields): ApiJson<AddressFields>,
) -> Result<Response, Error> {
    Ok(created(
        accounts::save_address(&app.ledger, &username, None, fields).await?,
    ))
}

async fn put_address(
    State(app): State<Arc<App>>,
    Shopper(username): Shopper,
    PathId(address_id): PathId,
    ApiJson(fields): ApiJson<AddressFields>,
) -> Result<Json<Address>, Error> {
    Ok(Json(
        accounts::save_address(&app.ledger, &username, Some(&address_id), fields).await?,
    ))
}

async fn delete_address(
    State(app): State<Arc<App>>,
    Shopper(username): Shopper,
    PathId(address_id): PathId,
) -> Result<StatusCode, Error> {
    accounts::delete_address(&app.ledger, &username, &address_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
