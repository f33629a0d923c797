//! Who is calling: identities come from verified bearer tokens only.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderValue, header, request::Parts},
};
use lambda_http::request::RequestContext;

use crate::{
    domain::{
        accounts,
        auth::{Claims, Role, Tokens},
    },
    error::Error,
    ports::AccountStore,
};

/// What a router's state lends the identity extractors: the token verifier,
/// and the accounts an operator is re-checked against on every request.
pub trait Identities: Send + Sync {
    type Accounts: AccountStore;

    fn tokens(&self) -> &Tokens;
    fn accounts(&self) -> &Self::Accounts;
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

/// The address a request came from: the source IP API Gateway saw (in
/// Lambda), or the peer of the connection (the local server). Never a
/// header the client writes, such as `X-Forwarded-For`. In-process
/// callers (tests) have none and share `unknown`.
pub struct ClientAddress(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let from_gateway = match parts.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
            Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.clone(),
            _ => None,
        };
        let from_peer = || {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip().to_string())
        };
        Ok(ClientAddress(
            from_gateway.or_else(from_peer).unwrap_or_else(|| "unknown".into()),
        ))
    }
}
