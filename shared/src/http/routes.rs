//! A function's routes, and what every served router gets around them.

use axum::{
    Json, Router,
    extract::DefaultBodyLimit,
    handler::Handler,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{MethodRouter, delete, get, post, put},
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{extract::MAX_BODY_BYTES, problem};
use crate::error::Error;

/// A function's routes: the router its Lambda serves, and the list of
/// `(method, path)` it answers, which the SAM template and the OpenAPI
/// document are checked against.
pub struct Routes<S> {
    router: Router<S>,
    listed: Vec<(Method, &'static str)>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Routes {
            router: Router::new(),
            listed: Vec::new(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Self::default()
    }

    fn add(mut self, method: Method, path: &'static str, route: MethodRouter<S>) -> Self {
        self.router = self.router.route(path, route);
        self.listed.push((method, path));
        self
    }

    pub fn get<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::GET, path, get(handler))
    }

    pub fn post<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::POST, path, post(handler))
    }

    pub fn put<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::PUT, path, put(handler))
    }

    pub fn delete<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::DELETE, path, delete(handler))
    }

    /// Another function's routes beside these (the local server's API).
    pub fn merge(mut self, other: Routes<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.listed.extend(other.listed);
        self
    }

    pub fn listed(&self) -> &[(Method, &'static str)] {
        &self.listed
    }

    /// The router, served as is: wrap it in [`finish`].
    pub fn into_router(self, state: S) -> Router {
        self.router.with_state(state)
    }
}

/// The layers and fallbacks every served router gets, whether it is one
/// function's routes in Lambda or all of them in the local server.
pub fn finish(router: Router) -> Router {
    let router = router
        .fallback(|| async { Error::NotFound("route") })
        .method_not_allowed_fallback(|| async { problem::method_not_allowed() })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    // A Lambda writes its metrics out after every request; a server that
    // does not emit to CloudWatch spends nothing on it.
    if crate::metrics::emitting_to_cloudwatch() {
        router.layer(axum::middleware::from_fn(crate::metrics::flush_after))
    } else {
        router
    }
}

/// `201 Created` with a JSON body.
pub fn created<T: Serialize>(body: T) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

/// How long a CDN or browser may reuse a [`cacheable`] answer: about as
/// long as its `remaining` may be stale in the instance anyway.
pub const SHARED_MAX_AGE: &str = "public, max-age=1";

/// A [`live`] document's: a second fresh, then served stale for two more
/// while one request fetches it anew, so an edge sends at most about one
/// request a second per document however many poll it.
pub const LIVE_MAX_AGE: &str = "public, max-age=1, stale-while-revalidate=2";

/// `200 OK` with a JSON body that caches in front of the API (a CDN) may
/// serve for a second, tagged by its content: `304 Not Modified` when the
/// request's `If-None-Match` names the same body.
pub fn cacheable<T: Serialize>(request: &HeaderMap, body: &T) -> Response {
    tagged(request, body, &Tag::strong(body), SHARED_MAX_AGE)
}

/// A document polled live (a sale's stock and the server's clock) that an
/// edge may serve for a second: tagged by what it says (`meaning`), not by
/// when it was made, so a poll that finds it unchanged is a `304`. The
/// tag is weak, as two such bodies differ in their clock.
pub fn live<T: Serialize, M: Serialize>(request: &HeaderMap, body: &T, meaning: &M) -> Response {
    tagged(request, body, &Tag::weak(meaning), LIVE_MAX_AGE)
}

/// An entity tag: a digest of a value, `W/` when it names a meaning rather
/// than bytes.
struct Tag(Option<String>);

impl Tag {
    fn of<T: Serialize>(value: &T, weak: bool) -> Tag {
        Tag(serde_json::to_vec(value).ok().map(|bytes| {
            let digest = Sha256::digest(&bytes);
            let hex: String = digest[..12].iter().map(|byte| format!("{byte:02x}")).collect();
            format!("{}\"{hex}\"", if weak { "W/" } else { "" })
        }))
    }

    fn strong<T: Serialize>(value: &T) -> Tag {
        Tag::of(value, false)
    }

    fn weak<T: Serialize>(value: &T) -> Tag {
        Tag::of(value, true)
    }
}

fn tagged<T: Serialize>(request: &HeaderMap, body: &T, tag: &Tag, cache_control: &'static str) -> Response {
    let (Ok(bytes), Some(Ok(etag))) = (serde_json::to_vec(body), tag.0.as_deref().map(HeaderValue::from_str)) else {
        return Json(body).into_response();
    };
    let headers = [
        (header::ETAG, etag),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache_control)),
    ];
    // `If-None-Match` compares weakly (RFC 9110 13.1.2).
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let ours = opaque(tag.0.as_deref().unwrap_or_default());
    let seen = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|candidate| opaque(candidate) == ours || candidate.trim() == "*");
    if seen {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (
        headers,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        bytes,
    )
        .into_response()
}
