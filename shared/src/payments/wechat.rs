//! WeChat Pay API v3: every request signed `WECHATPAY2-SHA256-RSA2048`
//! (SHA256withRSA of `METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n` with the
//! merchant's key), every answer and notification verified over
//! `TIMESTAMP\nNONCE\nBODY\n` with the key `Wechatpay-Serial` names (a
//! WeChat Pay public key, `PUB_KEY_ID_…`, or a platform certificate's),
//! within 300 s, signature probes (`WECHATPAY/SIGNTEST/…`) refused; a
//! notification's `resource` decrypted with AEAD_AES_256_GCM and the
//! APIv3 key. Native pay (a QR code), query and close by `out_trade_no`,
//! refunds by `out_refund_no`. Written against the official Go SDK's
//! behaviour (wechatpay-go), as no Rust crate for it is sound.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use axum::http::{HeaderMap, Method};
use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, FixedOffset, Utc};
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Refusal;
use crate::{
    model::PayMethod,
    ports::{ChargeLookup, ChargeOutcome, ChargeRequest, Notice, NoticeEvent, PayAction, PortError, PortResult},
    secrets::Secret,
};

/// How far a signed time may be from ours.
pub const TOLERANCE_SECONDS: i64 = 300;

/// What this deployment talks to WeChat Pay with.
#[derive(Debug, Clone)]
pub struct WechatKeys {
    pub mch_id: String,
    pub app_id: String,
    /// The merchant API certificate's private key, and its serial.
    pub merchant_key: RsaPrivateKey,
    pub merchant_serial: String,
    /// The APIv3 key: 32 bytes, decrypts notifications' resources.
    pub api_v3_key: Secret,
    /// The keys WeChat Pay signs with, by `Wechatpay-Serial`: its public
    /// key (`PUB_KEY_ID_…`) and any platform certificates' keys.
    pub platform_keys: Vec<(String, RsaPublicKey)>,
    /// `https://api.mch.weixin.qq.com`, or a stand-in's.
    pub api_base: String,
    /// Our `/payments/wechat/notify`.
    pub notify_url: String,
}

#[derive(Debug, Clone)]
pub struct Wechat {
    http: reqwest::Client,
    keys: WechatKeys,
}

/// The message a request is signed over.
pub fn request_message(method: &str, url: &str, timestamp: i64, nonce: &str, body: &str) -> String {
    format!("{method}\n{url}\n{timestamp}\n{nonce}\n{body}\n")
}

/// The message an answer or a notification is signed over.
pub fn answer_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut message = format!("{timestamp}\n{nonce}\n").into_bytes();
    message.extend_from_slice(body);
    message.push(b'\n');
    message
}

/// SHA256withRSA of `message`, in base64.
pub fn sign(key: &RsaPrivateKey, message: &[u8]) -> String {
    let signature = key
        .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message))
        .expect("a 2048-bit key signs a SHA-256 digest");
    STANDARD.encode(signature)
}

/// The `Authorization` header of a request.
pub fn authorization(
    mch_id: &str,
    serial: &str,
    key: &RsaPrivateKey,
    message: &str,
    timestamp: i64,
    nonce: &str,
) -> String {
    let signature = sign(key, message.as_bytes());
    format!(
        "WECHATPAY2-SHA256-RSA2048 mchid=\"{mch_id}\",nonce_str=\"{nonce}\",timestamp=\"{timestamp}\",serial_no=\"{serial}\",signature=\"{signature}\""
    )
}

/// The signing headers of an answer or a notification.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub timestamp: &'a str,
    pub nonce: &'a str,
    pub signature: &'a str,
    pub serial: &'a str,
}

impl<'a> Signed<'a> {
    pub fn from_headers(headers: &'a HeaderMap) -> Result<Signed<'a>, Refusal> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .ok_or(Refusal::Unsigned)
        };
        Ok(Signed {
            timestamp: header("wechatpay-timestamp")?,
            nonce: header("wechatpay-nonce")?,
            signature: header("wechatpay-signature")?,
            serial: header("wechatpay-serial")?,
        })
    }
}

/// Checks a WeChat Pay signature: a known key, a fresh time, no probe.
pub fn verify(
    keys: &[(String, RsaPublicKey)],
    signed: Signed<'_>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    // WeChat Pay sends these on purpose to see that we check.
    if signed.signature.starts_with("WECHATPAY/SIGNTEST/") {
        return Err(Refusal::Forged);
    }
    let timestamp: i64 = signed.timestamp.parse().map_err(|_| Refusal::Unsigned)?;
    if (now.timestamp() - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(Refusal::Expired);
    }
    let (_, key) = keys
        .iter()
        .find(|(serial, _)| serial == signed.serial)
        .ok_or(Refusal::Forged)?;
    verify_message(
        key,
        &answer_message(signed.timestamp, signed.nonce, body),
        signed.signature,
    )
}

/// Whether `signature` (base64) is SHA256withRSA of `message` by `key`.
pub fn verify_message(key: &RsaPublicKey, message: &[u8], signature: &str) -> Result<(), Refusal> {
    let signature = STANDARD.decode(signature).map_err(|_| Refusal::Forged)?;
    key.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message), &signature)
        .map_err(|_| Refusal::Forged)
}

/// A notification's encrypted `resource`.
#[derive(Debug, Clone, Deserialize)]
pub struct Resource {
    pub ciphertext: String,
    pub nonce: String,
    #[serde(default)]
    pub associated_data: String,
}

/// AEAD_AES_256_GCM with the APIv3 key: the 16-byte tag follows the
/// ciphertext, as WeChat Pay writes it.
pub fn decrypt(api_v3_key: &str, resource: &Resource) -> Result<Vec<u8>, Refusal> {
    let unreadable = |what: &str| Refusal::Unreadable(format!("wechat resource: {what}"));
    let cipher =
        Aes256Gcm::new_from_slice(api_v3_key.as_bytes()).map_err(|_| unreadable("the APIv3 key is not 32 bytes"))?;
    let nonce: [u8; 12] = resource
        .nonce
        .as_bytes()
        .try_into()
        .map_err(|_| unreadable("the nonce is not 12 bytes"))?;
    let ciphertext = STANDARD
        .decode(&resource.ciphertext)
        .map_err(|_| unreadable("not base64"))?;
    cipher
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &ciphertext,
                aad: resource.associated_data.as_bytes(),
            },
        )
        .map_err(|_| Refusal::Forged)
}

/// The same, the other way: what a stand-in of WeChat Pay sends.
pub fn encrypt(api_v3_key: &str, nonce: &str, associated_data: &str, plaintext: &[u8]) -> String {
    let cipher = Aes256Gcm::new_from_slice(api_v3_key.as_bytes()).expect("a 32-byte APIv3 key");
    let nonce: [u8; 12] = nonce.as_bytes().try_into().expect("a 12-byte nonce");
    let sealed = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: associated_data.as_bytes(),
            },
        )
        .expect("AES-GCM seals any message");
    STANDARD.encode(sealed)
}

/// WeChat Pay's times: RFC 3339 in China Standard Time.
fn china_time(at: DateTime<Utc>) -> String {
    let china = FixedOffset::east_opt(8 * 3600).expect("+08:00 is an offset");
    at.with_timezone(&china)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// A transaction as WeChat Pay describes it (queried, or notified).
#[derive(Debug, Deserialize)]
struct Transaction {
    #[serde(default)]
    mchid: Option<String>,
    #[serde(default)]
    appid: Option<String>,
    out_trade_no: String,
    #[serde(default)]
    transaction_id: Option<String>,
    trade_state: String,
    #[serde(default)]
    amount: Option<Amount>,
}

#[derive(Debug, Deserialize)]
struct Amount {
    total: i64,
}

impl Transaction {
    fn lookup(&self) -> PortResult<ChargeLookup> {
        match (self.trade_state.as_str(), &self.transaction_id, &self.amount) {
            ("SUCCESS", Some(transaction_id), Some(amount)) => Ok(ChargeLookup::Charged {
                transaction_id: transaction_id.clone(),
                amount_cents: amount.total,
            }),
            ("SUCCESS", ..) => Err(PortError::Unavailable(format!(
                "wechat: a paid trade without its id or amount: {self:?}"
            ))),
            _ => Ok(ChargeLookup::NotCharged),
        }
    }
}

/// A notification's envelope.
#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    event_type: String,
    resource: Resource,
}

impl Wechat {
    pub fn new(keys: WechatKeys) -> Wechat {
        Wechat {
            http: super::provider_client(),
            keys,
        }
    }

    /// One signed call; its answer believed once WeChat Pay's signature
    /// over it holds: the status and the body.
    async fn call(&self, method: Method, url: &str, body: Option<Value>) -> PortResult<(u16, Vec<u8>)> {
        let failed = |error: String| PortError::Unavailable(format!("wechat {url}: {error}"));
        let body = body.map(|body| body.to_string()).unwrap_or_default();
        let now = Utc::now();
        let nonce = format!("{:032X}", rand::random::<u128>());
        let message = request_message(method.as_str(), url, now.timestamp(), &nonce, &body);
        let authorization = authorization(
            &self.keys.mch_id,
            &self.keys.merchant_serial,
            &self.keys.merchant_key,
            &message,
            now.timestamp(),
            &nonce,
        );
        let mut request = self
            .http
            .request(method.clone(), format!("{}{url}", self.keys.api_base))
            .header("Authorization", authorization)
            .header("Accept", "application/json")
            .header("User-Agent", "flashsale");
        if method == Method::POST {
            request = request.header("Content-Type", "application/json").body(body);
        }
        let response = request.send().await.map_err(|error| failed(error.to_string()))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|error| failed(error.to_string()))?;
        let signed = Signed::from_headers(&headers).map_err(|refusal| failed(refusal.to_string()))?;
        verify(&self.keys.platform_keys, signed, &body, Utc::now()).map_err(|refusal| failed(refusal.to_string()))?;
        Ok((status, body.to_vec()))
    }

    /// A Native order: the QR code the shopper scans with WeChat.
    pub async fn charge(&self, request: &ChargeRequest<'_>) -> PortResult<ChargeOutcome> {
        let order = json!({
            "appid": self.keys.app_id,
            "mchid": self.keys.mch_id,
            "description": request.subject,
            "out_trade_no": request.order_id,
            "time_expire": china_time(request.expires),
            "notify_url": self.keys.notify_url,
            "amount": {"total": request.amount_cents, "currency": "CNY"},
        });
        let (status, body) = self
            .call(Method::POST, "/v3/pay/transactions/native", Some(order))
            .await?;
        let answer: Value = serde_json::from_slice(&body).unwrap_or_default();
        match (status, answer["code_url"].as_str(), answer["code"].as_str()) {
            (200, Some(code_url), _) => Ok(ChargeOutcome::Pending {
                action: PayAction::QrCode {
                    code_url: code_url.to_owned(),
                },
                trade_id: None,
            }),
            // Paid already: the query says by which transaction.
            (_, _, Some("ORDERPAID")) => match self.lookup(request.order_id).await? {
                ChargeLookup::Charged { transaction_id, .. } => Ok(ChargeOutcome::Approved { transaction_id }),
                ChargeLookup::NotCharged => Err(PortError::Unavailable("wechat: paid, yet not found".into())),
            },
            (_, _, Some("ORDERCLOSED")) => Ok(ChargeOutcome::Declined("the trade is closed".into())),
            _ => Err(PortError::Unavailable(format!(
                "wechat native order: {status} {answer}"
            ))),
        }
    }

    pub async fn lookup(&self, order_id: &str) -> PortResult<ChargeLookup> {
        let url = format!(
            "/v3/pay/transactions/out-trade-no/{order_id}?mchid={}",
            self.keys.mch_id
        );
        let (status, body) = self.call(Method::GET, &url, None).await?;
        match status {
            200 => serde_json::from_slice::<Transaction>(&body)
                .map_err(|error| PortError::Unavailable(format!("wechat query: {error}")))?
                .lookup(),
            404 => Ok(ChargeLookup::NotCharged),
            other => Err(PortError::Unavailable(format!(
                "wechat query: {other} {}",
                String::from_utf8_lossy(&body)
            ))),
        }
    }

    /// Closes the order's trade; one paid first cannot be, and says so.
    pub async fn close(&self, order_id: &str) -> PortResult<ChargeLookup> {
        let url = format!("/v3/pay/transactions/out-trade-no/{order_id}/close");
        let (status, _) = self
            .call(Method::POST, &url, Some(json!({"mchid": self.keys.mch_id})))
            .await?;
        match status {
            204 | 404 => Ok(ChargeLookup::NotCharged),
            _ => self.lookup(order_id).await,
        }
    }

    /// A refund under `out_refund_no`: asked again, WeChat Pay refunds
    /// nothing more. Whole refunds only: the amount is the total.
    pub async fn refund(&self, transaction_id: &str, amount_cents: i64, refund_key: &str) -> PortResult<()> {
        let refund = json!({
            "transaction_id": transaction_id,
            "out_refund_no": refund_key,
            "amount": {"refund": amount_cents, "total": amount_cents, "currency": "CNY"},
        });
        let (status, body) = self
            .call(Method::POST, "/v3/refund/domestic/refunds", Some(refund))
            .await?;
        match status {
            200 => Ok(()),
            other => Err(PortError::Unavailable(format!(
                "wechat refund {refund_key}: {other} {}",
                String::from_utf8_lossy(&body)
            ))),
        }
    }

    /// A notification, believed once WeChat Pay's signature holds and its
    /// resource decrypts to a transaction of our merchant and app: the
    /// charge it tells of, or none for news we do not act on.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now: DateTime<Utc>) -> Result<Option<Notice>, Refusal> {
        verify(&self.keys.platform_keys, Signed::from_headers(headers)?, body, now)?;
        let unreadable = |what: String| Refusal::Unreadable(format!("wechat notification: {what}"));
        let event: Event = serde_json::from_slice(body).map_err(|error| unreadable(error.to_string()))?;
        if event.event_type != "TRANSACTION.SUCCESS" {
            return Ok(None);
        }
        let plaintext = decrypt(&self.keys.api_v3_key.0, &event.resource)?;
        let transaction: Transaction =
            serde_json::from_slice(&plaintext).map_err(|error| unreadable(error.to_string()))?;
        if transaction.mchid.as_deref() != Some(self.keys.mch_id.as_str())
            || transaction.appid.as_deref() != Some(self.keys.app_id.as_str())
        {
            return Err(unreadable("for another merchant or app".into()));
        }
        let ChargeLookup::Charged {
            transaction_id,
            amount_cents,
        } = transaction.lookup().map_err(|error| unreadable(error.to_string()))?
        else {
            return Ok(None);
        };
        Ok(Some(Notice {
            method: PayMethod::Wechat,
            id: event.id,
            order_id: transaction.out_trade_no,
            event: NoticeEvent::Charged {
                transaction_id,
                amount_cents,
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn a_key() -> RsaPrivateKey {
        RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap()
    }

    #[test]
    fn messages_are_the_documented_lines() {
        assert_eq!(
            request_message("GET", "/v3/certificates?algorithm_type=RSA", 1680144553, "vDit", ""),
            "GET\n/v3/certificates?algorithm_type=RSA\n1680144553\nvDit\n\n"
        );
        assert_eq!(answer_message("1624523846", "EcZ9", b"{}"), b"1624523846\nEcZ9\n{}\n");
        assert_eq!(answer_message("1", "n", b""), b"1\nn\n\n", "a 204's empty body");
    }

    #[test]
    fn an_answer_is_believed_only_signed_by_a_known_key_fresh_and_unprobed() {
        let key = a_key();
        let keys = vec![("PUB_KEY_ID_0001".to_owned(), RsaPublicKey::from(&key))];
        let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let body = br#"{"id":"1"}"#;
        let signature = sign(&key, &answer_message("1700000000", "nonce", body));
        let signed = Signed {
            timestamp: "1700000000",
            nonce: "nonce",
            signature: &signature,
            serial: "PUB_KEY_ID_0001",
        };
        assert_eq!(verify(&keys, signed, body, now), Ok(()));
        assert_eq!(verify(&keys, signed, br#"{"id":"2"}"#, now), Err(Refusal::Forged));
        let unknown = Signed {
            serial: "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
            ..signed
        };
        assert_eq!(verify(&keys, unknown, body, now), Err(Refusal::Forged));
        let probe = format!("WECHATPAY/SIGNTEST/{signature}");
        let probed = Signed {
            signature: &probe,
            ..signed
        };
        assert_eq!(verify(&keys, probed, body, now), Err(Refusal::Forged));
        let late = now + chrono::Duration::seconds(301);
        assert_eq!(verify(&keys, signed, body, late), Err(Refusal::Expired));
    }

    #[test]
    fn a_resource_decrypts_with_the_api_v3_key_and_its_associated_data() {
        let key = "0123456789abcdef0123456789ABCDEF";
        let plaintext =
            br#"{"mchid":"1230000109","out_trade_no":"ORDER-1","trade_state":"SUCCESS","amount":{"total":100}}"#;
        let ciphertext = encrypt(key, "46a3XqVhPY1n", "transaction", plaintext);
        // Sealed independently, with Python's `cryptography` (AESGCM).
        assert_eq!(
            ciphertext,
            "QUNb8kuMYXRSjb01AvCahbGIxthAIvPKJXgvHCaig9useJ/7yfMdaMfhdLYTh4V/RTjJGO1NHjDZcokmUiloNmRrzpu+\
             2em32NSlFmH9qYWLY27QLK8uKjfEmR1qPCAqKZQG3AazXnBIzOXmZKM="
        );
        let resource = |ciphertext: &str, associated_data: &str| Resource {
            ciphertext: ciphertext.to_owned(),
            nonce: "46a3XqVhPY1n".into(),
            associated_data: associated_data.into(),
        };
        assert_eq!(decrypt(key, &resource(&ciphertext, "transaction")).unwrap(), plaintext);
        assert_eq!(
            decrypt(key, &resource(&ciphertext, "certificate")),
            Err(Refusal::Forged)
        );
        let mut flipped = STANDARD.decode(&ciphertext).unwrap();
        flipped[0] ^= 1;
        assert_eq!(
            decrypt(key, &resource(&STANDARD.encode(flipped), "transaction")),
            Err(Refusal::Forged)
        );
        assert!(matches!(
            decrypt("short", &resource(&ciphertext, "transaction")),
            Err(Refusal::Unreadable(_))
        ));
    }

    #[test]
    fn signing_agrees_with_openssl_byte_for_byte() {
        let message = request_message(
            "POST",
            "/v3/pay/transactions/native",
            1554208460,
            "593BEC0C930BF1AFEB40B4A08C8FB242",
            r#"{"appid":"wxd678efh567hg6787","mchid":"1230000109","description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018","amount":{"total":100,"currency":"CNY"}}"#,
        );
        let (pem, expected) = crate::payments::alipay::tests::openssl_signs(&message);
        let key = crate::payments::alipay::private_key(&pem).unwrap();
        assert_eq!(sign(&key, message.as_bytes()), expected);
    }

    #[test]
    fn times_are_rfc_3339_in_china_standard_time() {
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 16, 30, 5).unwrap();
        assert_eq!(china_time(at), "2026-12-05T00:30:05+08:00");
    }
}
