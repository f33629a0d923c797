//! Accounts: `POST /auth/register`, `POST /auth/login`, `POST /admin/login`.

use std::sync::Arc;

use axum::{Json, Router, extract::State, response::Response, routing::post};
use chrono::Utc;
use shared::{
    App, Error,
    accounts::{self, AdminLogin, Login, Registration},
    auth::IssuedToken,
    http::{ApiJson, created},
};

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/admin/login", post(admin_login))
        .with_state(app)
}

async fn register(
    State(app): State<Arc<App>>,
    ApiJson(form): ApiJson<Registration>,
) -> Result<Response, Error> {
    Ok(created(
        accounts::register(&app.store, form, Utc::now()).await?,
    ))
}

async fn login(
    State(app): State<Arc<App>>,
    ApiJson(form): ApiJson<Login>,
) -> Result<Json<IssuedToken>, Error> {
    Ok(Json(
        accounts::login(&app.store, &app.tokens, form, Utc::now()).await?,
    ))
}

async fn admin_login(
    State(app): State<Arc<App>>,
    ApiJson(form): ApiJson<AdminLogin>,
) -> Result<Json<IssuedToken>, Error> {
    Ok(Json(
        accounts::admin_login(&app.store, &app.tokens, form, Utc::now()).await?,
    ))
}
