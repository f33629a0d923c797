//! Accounts: `POST /auth/register`, `POST /auth/login`, `POST /admin/login`,
//! and the shopper's own records: `GET /me/balance`.

use std::sync::Arc;

use axum::{Json, extract::State, response::Response};
use chrono::Utc;
use shared::{
    App, Error,
    accounts::{self, AdminLogin, Login, Registration},
    auth::IssuedToken,
    http::{ApiJson, ApiQuery, PageQuery, Routes, Shopper, created},
    red_packet::{self, Balance},
};

pub fn routes() -> Routes {
    Routes::new()
        .post("/auth/register", register)
        .post("/auth/login", login)
        .post("/admin/login", admin_login)
        .get("/me/balance", balance)
}

async fn register(State(app): State<Arc<App>>, ApiJson(form): ApiJson<Registration>) -> Result<Response, Error> {
    Ok(created(accounts::register(&app.store, form, Utc::now()).await?))
}

async fn login(State(app): State<Arc<App>>, ApiJson(form): ApiJson<Login>) -> Result<Json<IssuedToken>, Error> {
    Ok(Json(accounts::login(&app.store, &app.tokens, form, Utc::now()).await?))
}

async fn admin_login(
    State(app): State<Arc<App>>,
    ApiJson(form): ApiJson<AdminLogin>,
) -> Result<Json<IssuedToken>, Error> {
    Ok(Json(
        accounts::admin_login(&app.store, &app.tokens, form, Utc::now()).await?,
    ))
}

async fn balance(
    State(app): State<Arc<App>>,
    Shopper(username): Shopper,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Balance>, Error> {
    let (limit, cursor) = page.checked()?;
    Ok(Json(red_packet::balance(&app.store, &username, limit, cursor).await?))
}
