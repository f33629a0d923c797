//! The payment adapters behind [`PaymentProvider`]: one module per
//! provider, and [`Providers`], which reaches each by its [`PayMethod`].
//! The sandbox is always there; each real provider only once its keys
//! are configured.

pub mod alipay;
mod sandbox;
pub mod stripe;

pub use alipay::{Alipay, AlipayKeys};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
pub use sandbox::{SandboxCharge, SandboxPayments, sandbox_answer};
pub use stripe::{Stripe, StripeKeys};

use crate::{
    model::PayMethod,
    ports::{ChargeLookup, ChargeOutcome, ChargeRequest, Notice, PaymentProvider, PortError, PortResult},
};

/// Every provider this deployment can pay with.
#[derive(Debug, Clone)]
pub struct Providers {
    pub sandbox: SandboxPayments,
    pub stripe: Option<Stripe>,
    pub alipay: Option<Alipay>,
}

/// Why a notification is not believed: it changes nothing, and its sender
/// is told so in its own format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the notification is not signed")]
    Unsigned,
    #[error("the signature does not hold")]
    Forged,
    #[error("the notification is too old or from the future")]
    Expired,
    #[error("the notification cannot be read: {0}")]
    Unreadable(String),
    #[error("this deployment takes no notifications from {0}")]
    NotOffered(&'static str),
}

impl Providers {
    /// A notification, believed only once its provider's signature holds:
    /// the notice it brings, or none for news we do not act on.
    pub fn verify(
        &self,
        method: PayMethod,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<Notice>, Refusal> {
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        match (method, &self.stripe, &self.alipay) {
            (PayMethod::Stripe, Some(stripe), _) => stripe.verify(header("stripe-signature"), body, now),
            (PayMethod::Alipay, _, Some(alipay)) => alipay.verify(body),
            (other, ..) => Err(Refusal::NotOffered(other.as_str())),
        }
    }
}

/// The HTTP client of a provider's adapter: a provider that does not
/// answer within 5 s has failed (the attempt stays open for the job).
fn provider_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .expect("a client with a timeout builds")
}

fn not_offered(method: PayMethod) -> PortError {
    PortError::Unavailable(format!("{} is not configured here", method.as_str()))
}

impl PaymentProvider for Providers {
    fn offers(&self, method: PayMethod) -> bool {
        match method {
            PayMethod::Sandbox => true,
            PayMethod::Stripe => self.stripe.is_some(),
            PayMethod::Alipay => self.alipay.is_some(),
            PayMethod::Wechat => false,
        }
    }

    async fn charge(&self, method: PayMethod, request: &ChargeRequest<'_>) -> PortResult<ChargeOutcome> {
        match (method, &self.stripe, &self.alipay) {
            (PayMethod::Sandbox, ..) => self.sandbox.charge(request).await,
            (PayMethod::Stripe, Some(stripe), _) => stripe.charge(request).await,
            (PayMethod::Alipay, _, Some(alipay)) => Ok(alipay.charge(request, Utc::now())),
            (other, ..) => Err(not_offered(other)),
        }
    }

    async fn close(&self, method: PayMethod, trade: &ChargeRequest<'_>) -> PortResult<ChargeLookup> {
        match (method, &self.stripe, &self.alipay) {
            (PayMethod::Sandbox, ..) => self.sandbox.close(trade.order_id).await,
            (PayMethod::Stripe, Some(stripe), _) => stripe.close(trade).await,
            (PayMethod::Alipay, _, Some(alipay)) => alipay.close(trade.order_id).await,
            (other, ..) => Err(not_offered(other)),
        }
    }

    async fn refund(
        &self,
        method: PayMethod,
        transaction_id: &str,
        amount_cents: i64,
        refund_key: &str,
    ) -> PortResult<()> {
        match (method, &self.stripe, &self.alipay) {
            (PayMethod::Sandbox, ..) => self.sandbox.refund(transaction_id, refund_key).await,
            (PayMethod::Stripe, Some(stripe), _) => stripe.refund(transaction_id, amount_cents, refund_key).await,
            (PayMethod::Alipay, _, Some(alipay)) => alipay.refund(transaction_id, amount_cents, refund_key).await,
            (other, ..) => Err(not_offered(other)),
        }
    }

    async fn lookup(&self, method: PayMethod, trade: &ChargeRequest<'_>) -> PortResult<ChargeLookup> {
        match (method, &self.stripe, &self.alipay) {
            (PayMethod::Sandbox, ..) => self.sandbox.lookup(trade.order_id).await,
            (PayMethod::Stripe, Some(stripe), _) => stripe.lookup(trade).await,
            (PayMethod::Alipay, _, Some(alipay)) => alipay.lookup(trade.order_id).await,
            (other, ..) => Err(not_offered(other)),
        }
    }
}
