//! The HTTP edge shared by every function: strict JSON and query
//! extraction, bearer-token identities, and problem+json errors.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request},
    handler::Handler,
    http::{Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::{MethodRouter, delete, get, post, put},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{App, Error, accounts, auth::Role, error::invalid};

/// Request bodies above this are refused before parsing.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

fn title(error: &Error) -> &'static str {
    match error {
        Error::Validation(_) => "Invalid request",
        Error::Unauthorized(_) => "Authentication required",
        Error::Forbidden(_) => "Not allowed",
        Error::NotFound(_) => "Not found",
        Error::SoldOut => "Sold out",
        Error::AlreadyPurchased => "Already purchased",
        Error::NotStarted => "Not started",
        Error::Ended => "Ended",
        Error::Exhausted => "Exhausted",
        Error::AlreadyClaimed(_) => "Already claimed",
        Error::InvalidState(_) => "Invalid state",
        Error::PayDeadlinePassed => "Payment deadline passed",
        Error::Conflict(_) => "Conflict",
        Error::PaymentDeclined(_) => "Payment declined",
        Error::RateLimited => "Too many requests",
        Error::MethodNotAllowed => "Method not allowed",
        Error::Unavailable(_) => "Service unavailable",
    }
}

/// RFC 9457 problem details with a stable `code`.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Error::Unavailable(detail) = &self {
            tracing::error!(%detail, "backend unavailable");
        }
        let status = self.status();
        let code = self.code();
        let mut problem = serde_json::json!({
            "type": format!("urn:problem-type:flash-sale:{}", code.to_lowercase().replace('_', "-")),
            "title": title(&self),
            "status": status.as_u16(),
            "detail": self.to_string(),
            "code": code,
        });
        // Extension members (RFC 9457 §3.2): what the caller needs to act on.
        if let Error::AlreadyClaimed(packet) = &self {
            problem["red_packet_id"] = packet.red_packet_id.clone().into();
            problem["amount"] = packet.amount.into();
        }
        let mut response = (status, Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

/// Parses JSON strictly: malformed input, wrong types, unknown fields and
/// oversized bodies are all a 400 `VALIDATION` naming the problem.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let mut unknown = Vec::new();
    let value: T = serde_ignored::deserialize(&mut deserializer, |path| unknown.push(format!("`{path}`")))
        .map_err(|e| invalid(format!("invalid JSON body: {e}")))?;
    deserializer
        .end()
        .map_err(|e| invalid(format!("invalid JSON body: {e}")))?;
    if !unknown.is_empty() {
        return Err(invalid(format!("unknown field(s): {}", unknown.join(", "))));
    }
    Ok(value)
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, Error> {
    Bytes::from_request(req, state)
        .await
        .map_err(|_| invalid(format!("the body must be at most {MAX_BODY_BYTES} bytes")))
}

/// A required JSON body.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.is_empty() {
            return Err(invalid("a JSON body is required"));
        }
        parse_json(&bytes).map(ApiJson)
    }
}

/// A JSON body that may be left out (empty body means `T::default()`).
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

/// Query parameters, with the same 400 `VALIDATION` on bad input.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|e| invalid(format!("invalid query: {}", e.body_text())))
    }
}

/// `?limit=&cursor=` of a listing.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

impl PageQuery {
    pub const DEFAULT_LIMIT: usize = 20;
    pub const MAX_LIMIT: usize = 100;

    /// The page size (default 20, at most 100) and the cursor.
    pub fn checked(&self) -> Result<(usize, Option<&str>), Error> {
        let limit = self.limit.unwrap_or(Self::DEFAULT_LIMIT);
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(invalid(format!("`limit` must be between 1 and {}", Self::MAX_LIMIT)));
        }
        Ok((limit, self.cursor.as_deref()))
    }
}

/// The one id in a route like `/orders/{order_id}`. Ids are ULIDs,
/// operator-chosen codes or login names; anything outside
/// `[A-Za-z0-9_.-]{1,64}` cannot exist (and must never reach a Redis key,
/// where braces would break the hash tag), so it is a 404.
pub struct PathId(pub String);

pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) if is_valid_id(&id) => Ok(PathId(id)),
            _ => Err(Error::NotFound("resource")),
        }
    }
}

/// The two ids of a route like `/admin/activities/{activity_id}/skus/{sku_id}`.
pub struct PathIds(pub String, pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathIds {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<(String, String)>::from_request_parts(parts, state).await {
            Ok(Path((first, second))) if is_valid_id(&first) && is_valid_id(&second) => Ok(PathIds(first, second)),
            _ => Err(Error::NotFound("resource")),
        }
    }
}

fn bearer(parts: &Parts) -> Result<&str, Error> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or(Error::Unauthorized("a bearer token is required"))?;
    bearer_token(value.to_str().ok())
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, Error> {
    authorization
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or(Error::Unauthorized("the Authorization header must be `Bearer <token>`"))
}

/// A signed-in shopper. The username comes from the verified token only.
pub struct Shopper(pub String);

impl FromRequestParts<Arc<App>> for Shopper {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Self::Rejection> {
        let claims = app.tokens.verify(bearer(parts)?)?;
        match claims.role {
            Role::User => Ok(Shopper(claims.sub)),
            Role::Admin => Err(Error::Forbidden("this route is for shoppers; sign in as a user")),
        }
    }
}

/// A signed-in, currently enabled operator.
pub struct Operator(pub String);

impl FromRequestParts<Arc<App>> for Operator {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Self::Rejection> {
        let claims = app.tokens.verify(bearer(parts)?)?;
        if claims.role != Role::Admin {
            return Err(Error::Forbidden("this route is for operators"));
        }
        active_operator(app, &claims.sub).await.map(Operator)
    }
}

async fn active_operator(app: &App, login_name: &str) -> Result<String, Error> {
    Ok(accounts::active_admin(&app.store, login_name).await?.login_name)
}

/// Either kind of caller, for routes both may use (`GET /orders/{id}`).
pub enum Caller {
    Shopper(String),
    Operator(String),
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Self::Rejection> {
        let claims = app.tokens.verify(bearer(parts)?)?;
        match claims.role {
            Role::User => Ok(Caller::Shopper(claims.sub)),
            Role::Admin => active_operator(app, &claims.sub).await.map(Caller::Operator),
        }
    }
}

/// A function's routes: the router its Lambda serves, and the list of
/// `(method, path)` it answers, which the SAM template and the OpenAPI
/// document are checked against.
#[derive(Default)]
pub struct Routes {
    router: Router<Arc<App>>,
    listed: Vec<(Method, &'static str)>,
}

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    fn add(mut self, method: Method, path: &'static str, route: MethodRouter<Arc<App>>) -> Self {
        self.router = self.router.route(path, route);
        self.listed.push((method, path));
        self
    }

    pub fn get<H: Handler<T, Arc<App>>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::GET, path, get(handler))
    }

    pub fn post<H: Handler<T, Arc<App>>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::POST, path, post(handler))
    }

    pub fn put<H: Handler<T, Arc<App>>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::PUT, path, put(handler))
    }

    pub fn delete<H: Handler<T, Arc<App>>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::DELETE, path, delete(handler))
    }

    /// Another function's routes beside these (the local server's API).
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.listed.extend(other.listed);
        self
    }

    pub fn listed(&self) -> &[(Method, &'static str)] {
        &self.listed
    }

    /// The router, served as is: wrap it in [`finish`].
    pub fn into_router(self, app: Arc<App>) -> Router {
        self.router.with_state(app)
    }
}

/// The layers and fallbacks every served router gets, whether it is one
/// function's routes in Lambda or all of them in the local server.
pub fn finish(router: Router) -> Router {
    router
        .fallback(|| async { Error::NotFound("route") })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// `201 Created` with a JSON body.
pub fn created<T: Serialize>(body: T) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}
