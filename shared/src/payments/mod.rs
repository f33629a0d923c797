//! The payment adapters behind [`PaymentProvider`]: one module per
//! provider, and [`Providers`], which reaches each by its [`PayMethod`].
//! The sandbox is always there; each real provider only once its keys
//! are configured.

pub mod alipay;
mod sandbox;
pub mod stripe;
pub mod wechat;

pub use alipay::{Alipay, AlipayKeys};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
pub use sandbox::{SandboxCharge, SandboxPayments, sandbox_answer};
pub use stripe::{Stripe, StripeKeys, StripeShop};
pub use wechat::{Wechat, WechatKeys};

use crate::{
    model::PayMethod,
    ports::{ChargeLookup, ChargeOutcome, ChargeRequest, Notice, PaymentProvider, PortError, PortResult},
};

/// Every provider this deployment can pay with.
#[derive(Debug, Clone)]
pub struct Providers {
    pub sandbox: SandboxPayments,
    /// Whether new payments may go to the sandbox. Off where money is
    /// real; its earlier trades are still looked up and refunded.
    pub sandbox_offered: bool,
    pub stripe: Option<Stripe>,
    pub alipay: Option<Alipay>,
    pub wechat: Option<Wechat>,
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

/// One configured provider.
enum Provider<'a> {
    Sandbox(&'a SandboxPayments),
    Stripe(&'a Stripe),
    Alipay(&'a Alipay),
    Wechat(&'a Wechat),
}

impl Providers {
    fn provider(&self, method: PayMethod) -> Option<Provider<'_>> {
        match method {
            PayMethod::Sandbox => Some(Provider::Sandbox(&self.sandbox)),
            PayMethod::Stripe => self.stripe.as_ref().map(Provider::Stripe),
            PayMethod::Alipay => self.alipay.as_ref().map(Provider::Alipay),
            PayMethod::Wechat => self.wechat.as_ref().map(Provider::Wechat),
        }
    }

    fn offered(&self, method: PayMethod) -> PortResult<Provider<'_>> {
        self.provider(method)
            .ok_or_else(|| PortError::Unavailable(format!("{} is not configured here", method.as_str())))
    }

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
        match self.provider(method) {
            Some(Provider::Stripe(stripe)) => stripe.verify(header("stripe-signature"), body, now),
            Some(Provider::Alipay(alipay)) => alipay.verify(body),
            Some(Provider::Wechat(wechat)) => wechat.verify(headers, body, now),
            Some(Provider::Sandbox(_)) | None => Err(Refusal::NotOffered(method.as_str())),
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

impl PaymentProvider for Providers {
    fn offers(&self, method: PayMethod) -> bool {
        match method {
            PayMethod::Sandbox => self.sandbox_offered,
            _ => self.provider(method).is_some(),
        }
    }

    async fn charge(&self, method: PayMethod, request: &ChargeRequest<'_>) -> PortResult<ChargeOutcome> {
        match self.offered(method)? {
            Provider::Sandbox(sandbox) => sandbox.charge(request).await,
            Provider::Stripe(stripe) => stripe.charge(request).await,
            Provider::Alipay(alipay) => Ok(alipay.charge(request, Utc::now())),
            Provider::Wechat(wechat) => wechat.charge(request).await,
        }
    }

    async fn close(&self, method: PayMethod, trade: &ChargeRequest<'_>) -> PortResult<ChargeLookup> {
        match self.offered(method)? {
            Provider::Sandbox(sandbox) => sandbox.close(trade.order_id).await,
            Provider::Stripe(stripe) => stripe.close(trade).await,
            Provider::Alipay(alipay) => alipay.close(trade.order_id).await,
            Provider::Wechat(wechat) => wechat.close(trade.order_id).await,
        }
    }

    async fn refund(
        &self,
        method: PayMethod,
        transaction_id: &str,
        amount_cents: i64,
        refund_key: &str,
    ) -> PortResult<()> {
        match self.offered(method)? {
            Provider::Sandbox(sandbox) => sandbox.refund(transaction_id, refund_key).await,
            Provider::Stripe(stripe) => stripe.refund(transaction_id, amount_cents, refund_key).await,
            Provider::Alipay(alipay) => alipay.refund(transaction_id, amount_cents, refund_key).await,
            Provider::Wechat(wechat) => wechat.refund(transaction_id, amount_cents, refund_key).await,
        }
    }

    async fn lookup(&self, method: PayMethod, trade: &ChargeRequest<'_>) -> PortResult<ChargeLookup> {
        match self.offered(method)? {
            Provider::Sandbox(sandbox) => sandbox.lookup(trade.order_id).await,
            Provider::Stripe(stripe) => stripe.lookup(trade).await,
            Provider::Alipay(alipay) => alipay.lookup(trade.order_id).await,
            Provider::Wechat(wechat) => wechat.lookup(trade.order_id).await,
        }
    }
}
