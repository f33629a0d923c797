//! Who is calling: identities come from verified bearer tokens only.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderValue, header, request::Parts},
};
use lambda_http::request::RequestContext;
use subtle::ConstantTimeEq;

use crate::{
    domain::{
        accounts,
        auth::{Claims, Role, Tokens},
    },
    error::Error,
    ports::AccountStore,
};

/// What a router's state lends the identity extractors: the token verifier,
/// the accounts an operator is re-checked against on every request, and
/// the key of the edge in front of the API, if there is one.
pub trait Identities: Send + Sync {
    type Accounts: AccountStore;

    fn tokens(&self) -> &Tokens;
    fn accounts(&self) -> &Self::Accounts;
    /// See `config::EDGE_KEY`.
    fn edge_key(&self) -> Option<&str>;
}

fn bearer(parts: &Parts) -> Result<&str, Error> {
    bearer_in(parts.headers.get(header::AUTHORIZATION))
}

fn bearer_in(authorization: Option<&HeaderValue>) -> Result<&str, Error> {
    let value = authorization.ok_or(Error::Unauthorized("a bearer token is required"))?;
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

impl<S: Identities> FromRequestParts<S> for Shopper {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        LateShopper::from_request_parts(parts, state).await?.verify(state)
    }
}

/// A shopper's bearer token, verified only when the route asks: a grab or
/// claim first gives the answer that is the same for everyone and costs
/// nothing (sold out), then needs to know who is asking.
/// Holds the `Authorization` header as received (a shared buffer, not a
/// copy): a sold-out tap never reads it.
pub struct LateShopper(Option<HeaderValue>);

impl LateShopper {
    /// The shopper's verified claims (who, and since when).
    pub fn claims(self, state: &impl Identities) -> Result<Claims, Error> {
        let claims = state.tokens().verify(bearer_in(self.0.as_ref())?)?;
        match claims.role {
            Role::User => Ok(claims),
            Role::Admin => Err(Error::Forbidden("this route is for shoppers; sign in as a user")),
        }
    }

    pub fn verify(self, state: &impl Identities) -> Result<Shopper, Error> {
        self.claims(state).map(|claims| Shopper(claims.sub))
    }
}

/// The `Sale-Ticket` header: a ticket to a sale that asks for one.
pub struct SaleTicket(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for SaleTicket {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ticket = parts.headers.get("sale-ticket").and_then(|value| value.to_str().ok());
        Ok(SaleTicket(ticket.map(str::to_owned)))
    }
}

impl<S: Identities> FromRequestParts<S> for LateShopper {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(LateShopper(parts.headers.get(header::AUTHORIZATION).cloned()))
    }
}

/// A signed-in, currently enabled operator.
pub struct Operator(pub String);

impl<S: Identities> FromRequestParts<S> for Operator {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let claims = state.tokens().verify(bearer(parts)?)?;
        if claims.role != Role::Admin {
            return Err(Error::Forbidden("this route is for operators"));
        }
        active_operator(state, &claims.sub).await.map(Operator)
    }
}

async fn active_operator(state: &impl Identities, login_name: &str) -> Result<String, Error> {
    Ok(accounts::active_admin(state.accounts(), login_name).await?.login_name)
}

/// Either kind of caller, for routes both may use (`GET /orders/{id}`).
pub enum Caller {
    Shopper(String),
    Operator(String),
}

impl<S: Identities> FromRequestParts<S> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let claims = state.tokens().verify(bearer(parts)?)?;
        match claims.role {
            Role::User => Ok(Caller::Shopper(claims.sub)),
            Role::Admin => active_operator(state, &claims.sub).await.map(Caller::Operator),
        }
    }
}

/// The header in which the edge (CloudFront's origin custom header; nginx
/// locally) gives its key.
pub const EDGE_KEY_HEADER: &str = "x-flashsale-edge";

/// The viewer's address and port as the edge saw them: CloudFront's own
/// header (`198.51.100.10:46532`, `2001:db8::1:46532`), which nginx sets
/// the same way locally.
pub const VIEWER_ADDRESS_HEADER: &str = "cloudfront-viewer-address";

/// The client an address stands for: an IPv4 address, or an IPv6 one's
/// /64, as one subscriber is given a whole /64 to pick addresses from;
/// counting each /128 apart would let one client be countless.
fn client_of(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
        }
    }
}

/// The client a request came from, by its address (an IPv6 one's /64,
/// [`client_of`]). Through the edge (CloudFront, or nginx locally), every
/// request's own source is one of the edge's few addresses, so the
/// viewer's address the edge passes on is taken, but only when the request
/// carries the edge's key: anyone may write the header in a request
/// straight to the API. Otherwise the source IP API Gateway saw
/// (in Lambda) or the connection's peer (the local server), never a header
/// such as `X-Forwarded-For`. In-process callers (tests) have none and
/// share `unknown`.
pub struct ClientAddress(pub String);

impl<S: Identities> FromRequestParts<S> for ClientAddress {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(viewer) = state.edge_key().and_then(|key| viewer_behind(parts, key)) {
            return Ok(ClientAddress(viewer));
        }
        let from_gateway = match parts.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.as_deref(),
            Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.as_deref(),
            _ => None,
        };
        let from_gateway = from_gateway.and_then(|ip| ip.parse().ok());
        let from_peer = || {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip())
        };
        Ok(ClientAddress(
            from_gateway
                .or_else(from_peer)
                .map_or_else(|| "unknown".into(), client_of),
        ))
    }
}

/// The viewer's address, if the edge with this `key` sent the request.
fn viewer_behind(parts: &Parts, key: &str) -> Option<String> {
    let proof = parts.headers.get(EDGE_KEY_HEADER)?;
    if !bool::from(proof.as_bytes().ct_eq(key.as_bytes())) {
        return None;
    }
    let viewer = parts.headers.get(VIEWER_ADDRESS_HEADER)?.to_str().ok()?;
    let (address, _port) = viewer.rsplit_once(':')?;
    let address: IpAddr = address.trim_start_matches('[').trim_end_matches(']').parse().ok()?;
    Some(client_of(address))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::Request;

    use super::*;
    use crate::memory::MemoryLedger;

    const KEY: &str = "an edge key of thirty-two bytes!";

    struct State {
        tokens: Tokens,
        accounts: MemoryLedger,
        edge_key: Option<&'static str>,
    }

    impl Identities for State {
        type Accounts = MemoryLedger;

        fn tokens(&self) -> &Tokens {
            &self.tokens
        }
        fn accounts(&self) -> &MemoryLedger {
            &self.accounts
        }
        fn edge_key(&self) -> Option<&str> {
            self.edge_key
        }
    }

    /// The address a request from peer 10.0.0.1 with these headers counts as.
    async fn address(edge_key: Option<&'static str>, headers: &[(&str, &str)]) -> String {
        let mut request = Request::builder();
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 40_000))));
        let state = State {
            tokens: Tokens::new(KEY.as_bytes(), Duration::from_secs(60)),
            accounts: MemoryLedger::default(),
            edge_key,
        };
        match ClientAddress::from_request_parts(&mut parts, &state).await {
            Ok(ClientAddress(address)) => address,
            Err(error) => panic!("an address is always found: {error}"),
        }
    }

    #[tokio::test]
    async fn the_edges_word_on_the_viewer_is_taken_with_its_key() {
        let through_edge = [(EDGE_KEY_HEADER, KEY), (VIEWER_ADDRESS_HEADER, "198.51.100.10:46532")];
        assert_eq!(address(Some(KEY), &through_edge).await, "198.51.100.10");
        let ipv6 = [
            (EDGE_KEY_HEADER, KEY),
            (VIEWER_ADDRESS_HEADER, "2001:db8:0:7:1:2:3:4:443"),
        ];
        assert_eq!(
            address(Some(KEY), &ipv6).await,
            "2001:db8:0:7::/64",
            "the subscriber's /64"
        );
        let neighbour = [
            (EDGE_KEY_HEADER, KEY),
            (VIEWER_ADDRESS_HEADER, "2001:db8:0:7:ffff::9:443"),
        ];
        assert_eq!(
            address(Some(KEY), &neighbour).await,
            "2001:db8:0:7::/64",
            "counted as one"
        );
    }

    #[tokio::test]
    async fn a_viewer_address_without_the_edges_key_is_ignored() {
        let forged = [(VIEWER_ADDRESS_HEADER, "198.51.100.10:46532")];
        assert_eq!(address(Some(KEY), &forged).await, "10.0.0.1", "no key");
        let guessed = [(EDGE_KEY_HEADER, "a guess"), (VIEWER_ADDRESS_HEADER, "198.51.100.10:1")];
        assert_eq!(address(Some(KEY), &guessed).await, "10.0.0.1", "wrong key");
        let through_edge = [(EDGE_KEY_HEADER, KEY), (VIEWER_ADDRESS_HEADER, "198.51.100.10:1")];
        assert_eq!(address(None, &through_edge).await, "10.0.0.1", "no edge configured");
        let garbled = [(EDGE_KEY_HEADER, KEY), (VIEWER_ADDRESS_HEADER, "not an address")];
        assert_eq!(address(Some(KEY), &garbled).await, "10.0.0.1", "unreadable");
    }
}
