//! Stripe: one PaymentIntent per order, created with an `Idempotency-Key`
//! and confirmed by the shopper's browser (Stripe.js) with its client
//! secret; the outcome comes by webhook, verified from the raw body
//! (`Stripe-Signature: t=…,v1=…`, HMAC-SHA256 of `t.body`, 300 s
//! tolerance). Hand-written over `reqwest`: the API needed is five form
//! posts, and `async-stripe`'s typed models refuse the intents
//! `localstripe` (the local stand-in) answers with.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::Refusal;
use crate::{
    model::PayMethod,
    ports::{ChargeLookup, ChargeOutcome, ChargeRequest, Notice, NoticeEvent, PayAction, PortError, PortResult},
    secrets::Secret,
};

/// How far a webhook's signed time may be from ours, as Stripe's SDKs.
pub const TOLERANCE_SECONDS: i64 = 300;

/// What this deployment talks to Stripe with.
#[derive(Debug, Clone)]
pub struct StripeKeys {
    /// `sk_…`: the API's bearer key.
    pub secret_key: Secret,
    /// `whsec_…`: signs the webhooks sent to us.
    pub webhook_secret: Secret,
    /// `https://api.stripe.com/`, or a stand-in's address.
    pub api_base: String,
    /// What a shop's browser pays with: `pk_…`, and where it loads Stripe.js
    /// from. Without it, only clients that carry their own Stripe.js pay.
    pub shop: Option<StripeShop>,
}

/// Stripe as a shop's browser meets it: the publishable key and Stripe.js.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StripeShop {
    pub publishable_key: String,
    /// `https://js.stripe.com/v3/`, or a stand-in's locally.
    pub js: String,
}

#[derive(Debug, Clone)]
pub struct Stripe {
    http: reqwest::Client,
    keys: StripeKeys,
}

/// The parts of a PaymentIntent we read.
#[derive(Debug, Clone, Deserialize)]
struct Intent {
    id: String,
    status: String,
    amount: i64,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    metadata: HashMap<String, String>,
    #[serde(default)]
    last_payment_error: Option<PaymentError>,
}

#[derive(Debug, Clone, Deserialize)]
struct PaymentError {
    #[serde(default)]
    message: Option<String>,
}

impl Intent {
    fn lookup(&self) -> ChargeLookup {
        match self.status.as_str() {
            "succeeded" => ChargeLookup::Charged {
                transaction_id: self.id.clone(),
                amount_cents: self.amount,
            },
            _ => ChargeLookup::NotCharged,
        }
    }
}

/// The key under which an order's intent is created: asked again (after a
/// lost reply, or by the payments job), Stripe answers the same intent.
fn intent_key(order_id: &str) -> String {
    format!("pi-{order_id}")
}

impl Stripe {
    pub fn new(keys: StripeKeys) -> Stripe {
        let http = super::provider_client();
        Stripe { http, keys }
    }

    pub fn shop(&self) -> Option<&StripeShop> {
        self.keys.shop.as_ref()
    }

    async fn post(&self, path: &str, form: &[(&str, &str)], idempotency_key: Option<&str>) -> PortResult<Intent> {
        let mut request = self
            .http
            .post(format!("{}v1/{path}", self.keys.api_base))
            .bearer_auth(&self.keys.secret_key.0)
            .form(form);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        read(request.send().await).await
    }

    async fn get(&self, path: &str) -> PortResult<Intent> {
        let request = self
            .http
            .get(format!("{}v1/{path}", self.keys.api_base))
            .bearer_auth(&self.keys.secret_key.0);
        read(request.send().await).await
    }

    /// The order's intent as it is now: by its id once the order keeps
    /// it, else created (once, under the order's key).
    async fn intent(&self, request: &ChargeRequest<'_>) -> PortResult<Intent> {
        if let Some(id) = request.trade_id {
            return self.get(&format!("payment_intents/{id}")).await;
        }
        let amount = request.amount_cents.to_string();
        let created = self
            .post(
                "payment_intents",
                &[
                    ("amount", &amount),
                    ("currency", "cny"),
                    ("payment_method_types[]", "card"),
                    ("metadata[order_id]", request.order_id),
                ],
                Some(&intent_key(request.order_id)),
            )
            .await?;
        // A replayed create answers the intent as it was created.
        self.get(&format!("payment_intents/{}", created.id)).await
    }

    pub async fn charge(&self, request: &ChargeRequest<'_>) -> PortResult<ChargeOutcome> {
        let intent = self.intent(request).await?;
        Ok(match (intent.lookup(), intent.client_secret) {
            (ChargeLookup::Charged { transaction_id, .. }, _) => ChargeOutcome::Approved { transaction_id },
            (_, Some(client_secret)) => ChargeOutcome::Pending {
                action: PayAction::ClientSecret { client_secret },
                trade_id: Some(intent.id),
            },
            (_, None) => {
                return Err(PortError::Unavailable(format!(
                    "intent {} came without a client secret",
                    intent.id
                )));
            }
        })
    }
}

/// A Stripe answer: the intent, or why not (as a port failure: the job
/// and the shopper retry).
async fn read(sent: reqwest::Result<reqwest::Response>) -> PortResult<Intent> {
    let response = sent.map_err(|error| PortError::Unavailable(format!("stripe: {error}")))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|error| PortError::Unavailable(format!("stripe: {error}")))?;
    if !status.is_success() {
        return Err(PortError::Unavailable(format!("stripe answered {status}: {body}")));
    }
    serde_json::from_str(&body).map_err(|error| PortError::Unavailable(format!("stripe's answer: {error}")))
}

/// Checks a webhook's `Stripe-Signature` over the raw body: signed by our
/// secret (any of its `v1` signatures, as during a secret's rotation)
/// within [`TOLERANCE_SECONDS`] of `now`.
pub fn verify_signature(header: &str, body: &[u8], secret: &str, now: DateTime<Utc>) -> Result<(), Refusal> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(Refusal::Unsigned)?;
    if signatures.is_empty() {
        return Err(Refusal::Unsigned);
    }
    if (now.timestamp() - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(Refusal::Expired);
    }
    let mut signed = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    signed.update(timestamp.to_string().as_bytes());
    signed.update(b".");
    signed.update(body);
    match signatures
        .iter()
        .any(|signature| signed.clone().verify_slice(signature).is_ok())
    {
        true => Ok(()),
        false => Err(Refusal::Forged),
    }
}

/// The parts of an event we read.
#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: serde_json::Value,
}

impl Stripe {
    /// A webhook, believed once its signature holds: the notice it brings,
    /// or none for an event we do not act on.
    pub fn verify(&self, signature: Option<&str>, body: &[u8], now: DateTime<Utc>) -> Result<Option<Notice>, Refusal> {
        verify_signature(
            signature.ok_or(Refusal::Unsigned)?,
            body,
            &self.keys.webhook_secret.0,
            now,
        )?;
        let event: Event = serde_json::from_slice(body).map_err(|error| Refusal::Unreadable(error.to_string()))?;
        let event_kind = match event.kind.as_str() {
            "payment_intent.succeeded" | "payment_intent.payment_failed" => event.kind.as_str(),
            _ => return Ok(None),
        };
        let intent: Intent =
            serde_json::from_value(event.data.object).map_err(|error| Refusal::Unreadable(error.to_string()))?;
        let order_id = intent
            .metadata
            .get("order_id")
            .cloned()
            .ok_or_else(|| Refusal::Unreadable(format!("intent {} names no order", intent.id)))?;
        let notice_event = match event_kind {
            "payment_intent.succeeded" => NoticeEvent::Charged {
                transaction_id: intent.id,
                amount_cents: intent.amount,
            },
            _ => NoticeEvent::Declined {
                reason: intent
                    .last_payment_error
                    .and_then(|error| error.message)
                    .unwrap_or_else(|| "the payment failed".into()),
            },
        };
        Ok(Some(Notice {
            method: PayMethod::Stripe,
            id: event.id,
            order_id,
            event: notice_event,
        }))
    }

    pub async fn lookup(&self, request: &ChargeRequest<'_>) -> PortResult<ChargeLookup> {
        Ok(self.intent(request).await?.lookup())
    }

    /// Cancels the order's intent so that it can no longer be confirmed;
    /// one that succeeded first cannot be cancelled, and says so.
    pub async fn close(&self, request: &ChargeRequest<'_>) -> PortResult<ChargeLookup> {
        let intent = self.intent(request).await?;
        if intent.lookup() != ChargeLookup::NotCharged || intent.status == "canceled" {
            return Ok(intent.lookup());
        }
        match self
            .post(&format!("payment_intents/{}/cancel", intent.id), &[], None)
            .await
        {
            Ok(cancelled) => Ok(cancelled.lookup()),
            // Confirmed meanwhile: what it holds now.
            Err(_) => Ok(self.get(&format!("payment_intents/{}", intent.id)).await?.lookup()),
        }
    }

    pub async fn refund(&self, transaction_id: &str, amount_cents: i64, refund_key: &str) -> PortResult<()> {
        let amount = amount_cents.to_string();
        let request = self
            .http
            .post(format!("{}v1/refunds", self.keys.api_base))
            .bearer_auth(&self.keys.secret_key.0)
            .header("Idempotency-Key", refund_key)
            .form(&[("payment_intent", transaction_id), ("amount", &amount)]);
        let response = request
            .send()
            .await
            .map_err(|error| PortError::Unavailable(format!("stripe: {error}")))?;
        match response.status().is_success() {
            true => Ok(()),
            false => Err(PortError::Unavailable(format!(
                "stripe refused the refund {refund_key}: {}",
                response.status()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// Computed with `openssl dgst -sha256 -hmac whsec_test_secret` over
    /// `1492774577.{"id":"evt_test","object":"event"}`.
    const SIGNED: &str = "691252e266ce41cb94d709c84e9580d4172b117a510bbc81723f657d2cd5d215";
    const BODY: &[u8] = br#"{"id":"evt_test","object":"event"}"#;
    const SECRET: &str = "whsec_test_secret";

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(seconds, 0).unwrap()
    }

    #[test]
    fn a_signature_made_with_our_secret_over_the_raw_body_holds() {
        let header = format!("t=1492774577,v1={SIGNED}");
        assert_eq!(verify_signature(&header, BODY, SECRET, at(1492774577)), Ok(()));
    }

    #[test]
    fn any_of_several_signatures_may_hold_as_during_a_rotation() {
        let header = format!("t=1492774577,v1={SIGNED},v1={}", "00".repeat(32));
        assert_eq!(verify_signature(&header, BODY, SECRET, at(1492774577)), Ok(()));
        let header = format!("t=1492774577,v1={},v1={SIGNED}", "00".repeat(32));
        assert_eq!(verify_signature(&header, BODY, SECRET, at(1492774577)), Ok(()));
    }

    #[test]
    fn a_changed_body_another_secret_or_time_is_refused() {
        let header = format!("t=1492774577,v1={SIGNED}");
        let tampered = br#"{"id":"evt_tesT","object":"event"}"#;
        assert_eq!(
            verify_signature(&header, tampered, SECRET, at(1492774577)),
            Err(Refusal::Forged)
        );
        assert_eq!(
            verify_signature(&header, BODY, "whsec_other", at(1492774577)),
            Err(Refusal::Forged)
        );
        let moved = format!("t=1492774578,v1={SIGNED}");
        assert_eq!(
            verify_signature(&moved, BODY, SECRET, at(1492774578)),
            Err(Refusal::Forged)
        );
    }

    #[test]
    fn a_signature_older_or_newer_than_five_minutes_is_refused() {
        let header = format!("t=1492774577,v1={SIGNED}");
        assert_eq!(verify_signature(&header, BODY, SECRET, at(1492774577 + 300)), Ok(()));
        assert_eq!(
            verify_signature(&header, BODY, SECRET, at(1492774577 + 301)),
            Err(Refusal::Expired)
        );
        assert_eq!(
            verify_signature(&header, BODY, SECRET, at(1492774577 - 301)),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn a_header_without_a_time_or_a_v1_signature_is_unsigned() {
        for header in ["", "t=1492774577", &format!("v1={SIGNED}"), "t=x,v1=zz"] {
            assert_eq!(
                verify_signature(header, BODY, SECRET, at(1492774577)),
                Err(Refusal::Unsigned),
                "{header}"
            );
        }
    }
}
