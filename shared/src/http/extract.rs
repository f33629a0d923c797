//! Strict JSON and query extraction: malformed input, wrong types, unknown
//! fields, oversized bodies and impossible ids are all clean refusals.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Query, Request},
    http::request::Parts,
};
use serde::de::DeserializeOwned;

use crate::{
    error::{Error, invalid},
    validate,
};

/// Request bodies above this are refused before parsing.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Parses JSON strictly: malformed input, wrong types, unknown fields and
/// oversized bodies are all a 400 `VALIDATION` naming the problem. Every
/// body of this API is an object; serde alone would also read a struct
/// from an array of its fields in order.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(invalid("the body must be a JSON object"));
    }
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
        validate::range(
            "limit",
            i64::try_from(limit).unwrap_or(i64::MAX),
            1..=Self::MAX_LIMIT as i64,
        )?;
        Ok((limit, self.cursor.as_deref()))
    }
}

/// The one id in a route like `/orders/{order_id}`. An id that cannot
/// exist ([`validate::is_id`]) is a 404, as a missing one would be.
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) if validate::is_id(&id) => Ok(PathId(id)),
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
            Ok(Path((first, second))) if validate::is_id(&first) && validate::is_id(&second) => {
                Ok(PathIds(first, second))
            }
            _ => Err(Error::NotFound("resource")),
        }
    }
}
