//! Alipay's open platform, RSA2: the signature scheme of every request we
//! send and of every asynchronous notification Alipay sends us, and its
//! money format. A signed string is every parameter but `sign` (and, in a
//! notification, `sign_type`), sorted by name, joined as `k=v` with `&`,
//! the values raw (not URL-encoded); the signature is SHA256withRSA
//! (PKCS #1 v1.5) of its UTF-8 bytes, in base64. Written against the
//! platform's documents ("自行实现签名", "异步返回结果的验签"), as no
//! Rust crate for it is sound; the tests hold it to OpenSSL.

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, FixedOffset, Utc};
use rsa::{
    Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey,
    pkcs1::DecodeRsaPrivateKey,
    pkcs8::{DecodePrivateKey, DecodePublicKey},
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::Refusal;
use crate::{
    model::PayMethod,
    ports::{ChargeLookup, ChargeOutcome, ChargeRequest, Notice, NoticeEvent, PayAction, PortError, PortResult},
};

/// Whether a pair takes part in a signed string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signed {
    /// A request we send: all but `sign`, and no empty value.
    Request,
    /// A notification Alipay sends: all but `sign` and `sign_type`, empty
    /// values kept.
    Notification,
}

/// The string a request or notification is signed over.
pub fn signed_content<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>, kind: Signed) -> String {
    let mut kept: Vec<(&str, &str)> = pairs
        .into_iter()
        .filter(|(name, value)| match kind {
            Signed::Request => *name != "sign" && !value.is_empty(),
            Signed::Notification => *name != "sign" && *name != "sign_type",
        })
        .collect();
    kept.sort_unstable();
    kept.iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// SHA256withRSA of `content`, in base64, as Alipay expects `sign`.
pub fn sign(key: &RsaPrivateKey, content: &str) -> String {
    let digest = Sha256::digest(content.as_bytes());
    let signature = key
        .sign(Pkcs1v15Sign::new::<Sha256>(), &digest)
        .expect("a 2048-bit key signs a SHA-256 digest");
    STANDARD.encode(signature)
}

/// Whether `signature` (base64) is Alipay's over `content`.
pub fn verify(key: &RsaPublicKey, content: &str, signature: &str) -> Result<(), Refusal> {
    let signature = STANDARD.decode(signature.trim()).map_err(|_| Refusal::Forged)?;
    let digest = Sha256::digest(content.as_bytes());
    key.verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &signature)
        .map_err(|_| Refusal::Forged)
}

/// The app's private key, as Alipay's tools hand it out: PKCS #8 or
/// PKCS #1, in PEM or as bare base64.
pub fn private_key(text: &str) -> Result<RsaPrivateKey, String> {
    let text = text.trim();
    if text.starts_with("-----BEGIN RSA PRIVATE KEY") {
        return RsaPrivateKey::from_pkcs1_pem(text).map_err(|error| error.to_string());
    }
    if text.starts_with("-----BEGIN") {
        return RsaPrivateKey::from_pkcs8_pem(text).map_err(|error| error.to_string());
    }
    let der = STANDARD.decode(text).map_err(|error| error.to_string())?;
    RsaPrivateKey::from_pkcs8_der(&der)
        .or_else(|_| RsaPrivateKey::from_pkcs1_der(&der))
        .map_err(|error| error.to_string())
}

/// Alipay's public key, as its console shows it: bare base64 of the
/// SubjectPublicKeyInfo, or PEM.
pub fn public_key(text: &str) -> Result<RsaPublicKey, String> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        return RsaPublicKey::from_public_key_pem(text).map_err(|error| error.to_string());
    }
    let der = STANDARD.decode(text).map_err(|error| error.to_string())?;
    RsaPublicKey::from_public_key_der(&der).map_err(|error| error.to_string())
}

/// Cents as Alipay writes an amount: yuan with two decimals.
pub fn yuan(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02}", cents / 100, cents % 100)
}

/// An amount Alipay wrote, in cents: digits, and at most two decimals.
/// Anything else (a sign, an exponent, a third decimal) is not an amount.
pub fn cents(yuan: &str) -> Option<i64> {
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    let (whole, fraction) = match yuan.split_once('.') {
        Some((whole, fraction)) if digits(fraction) && fraction.len() <= 2 => (whole, fraction),
        Some(_) => return None,
        None => (yuan, ""),
    };
    if !digits(whole) {
        return None;
    }
    let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
    whole.parse::<i64>().ok()?.checked_mul(100)?.checked_add(fraction)
}

/// What this deployment talks to Alipay with.
#[derive(Debug, Clone)]
pub struct AlipayKeys {
    pub app_id: String,
    /// The app's private key: signs every request.
    pub app_key: RsaPrivateKey,
    /// Alipay's public key: verifies its answers and notifications.
    pub alipay_key: RsaPublicKey,
    /// `https://openapi.alipay.com/gateway.do`, the sandbox's, or a
    /// stand-in's.
    pub gateway: String,
    /// The merchant's Alipay account (`seller_id`), if notifications are
    /// to be held to it.
    pub seller_id: Option<String>,
    /// Where Alipay sends its notifications: our `/payments/alipay/notify`.
    pub notify_url: String,
    /// Where its cashier sends the shopper back (the shop), if anywhere.
    pub return_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Alipay {
    http: reqwest::Client,
    keys: AlipayKeys,
}

/// Alipay's times are China Standard Time, `yyyy-MM-dd HH:mm:ss`.
fn china_time(at: DateTime<Utc>) -> String {
    let china = FixedOffset::east_opt(8 * 3600).expect("+08:00 is an offset");
    at.with_timezone(&china).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Alipay's answer to one call: `code` 10000 is success.
#[derive(Debug, Deserialize)]
struct Answer {
    code: String,
    #[serde(default)]
    sub_code: Option<String>,
    #[serde(default)]
    sub_msg: Option<String>,
    #[serde(default)]
    trade_no: Option<String>,
    #[serde(default)]
    trade_status: Option<String>,
    #[serde(default)]
    total_amount: Option<String>,
}

const SUCCESS: &str = "10000";
const TRADE_NOT_EXIST: &str = "ACQ.TRADE_NOT_EXIST";

impl Answer {
    fn lookup(&self) -> PortResult<ChargeLookup> {
        match (
            self.trade_status.as_deref(),
            &self.trade_no,
            self.total_amount.as_deref().and_then(cents),
        ) {
            (Some("TRADE_SUCCESS" | "TRADE_FINISHED"), Some(trade_no), Some(amount)) => Ok(ChargeLookup::Charged {
                transaction_id: trade_no.clone(),
                amount_cents: amount,
            }),
            (Some("TRADE_SUCCESS" | "TRADE_FINISHED"), ..) => Err(PortError::Unavailable(format!(
                "alipay: a paid trade without its number or amount: {self:?}"
            ))),
            _ => Ok(ChargeLookup::NotCharged),
        }
    }

    fn failure(&self, method: &str) -> PortError {
        PortError::Unavailable(format!(
            "alipay {method}: {} {} {}",
            self.code,
            self.sub_code.as_deref().unwrap_or(""),
            self.sub_msg.as_deref().unwrap_or("")
        ))
    }
}

/// The raw text of the object `name` in Alipay's answer, as it was signed:
/// from its opening brace to the matching one, strings skipped.
fn raw_object<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("\"{name}\"");
    let after_key = body.find(&key)? + key.len();
    let open = after_key + body[after_key..].find('{')?;
    if !body[after_key..open].chars().all(|c| c == ':' || c.is_whitespace()) {
        return None;
    }
    let (mut depth, mut in_string, mut escaped) = (0_u32, false, false);
    for (offset, byte) in body[open..].bytes().enumerate() {
        match (in_string, escaped, byte) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, ..) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'{') => depth += 1,
            (false, _, b'}') => {
                depth -= 1;
                if depth == 0 {
                    return Some(&body[open..=open + offset]);
                }
            }
            _ => {}
        }
    }
    None
}

impl Alipay {
    pub fn new(keys: AlipayKeys) -> Alipay {
        let http = super::provider_client();
        Alipay { http, keys }
    }

    /// A call's parameters, signed: the common ones, and `biz_content`.
    fn signed(&self, method: &str, biz_content: &serde_json::Value, now: DateTime<Utc>) -> Vec<(String, String)> {
        self.signed_with(method, biz_content, now, std::iter::empty())
    }

    /// [`Self::signed`], with more of the common parameters.
    fn signed_with(
        &self,
        method: &str,
        biz_content: &serde_json::Value,
        now: DateTime<Utc>,
        more: impl Iterator<Item = (&'static str, String)>,
    ) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = [
            ("app_id", self.keys.app_id.clone()),
            ("method", method.to_owned()),
            ("format", "JSON".to_owned()),
            ("charset", "utf-8".to_owned()),
            ("sign_type", "RSA2".to_owned()),
            ("timestamp", china_time(now)),
            ("version", "1.0".to_owned()),
            ("notify_url", self.keys.notify_url.clone()),
            ("biz_content", biz_content.to_string()),
        ]
        .into_iter()
        .chain(more)
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        let content = signed_content(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), Signed::Request);
        pairs.push(("sign".to_owned(), sign(&self.keys.app_key, &content)));
        pairs
    }

    /// The cashier page the shopper is sent to: `alipay.trade.page.pay`,
    /// signed, as a URL; Alipay opens the trade once the shopper logs in,
    /// and sends them back to the shop (`return_url`) once paid.
    pub fn charge(&self, request: &ChargeRequest<'_>, now: DateTime<Utc>) -> ChargeOutcome {
        let biz = serde_json::json!({
            "out_trade_no": request.order_id,
            "total_amount": yuan(request.amount_cents),
            "subject": request.subject,
            "product_code": "FAST_INSTANT_TRADE_PAY",
            "time_expire": china_time(request.expires),
        });
        let pairs = self.signed_with(
            "alipay.trade.page.pay",
            &biz,
            now,
            self.keys.return_url.iter().map(|url| ("return_url", url.clone())),
        );
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        ChargeOutcome::Pending {
            action: PayAction::Redirect {
                url: format!("{}?{query}", self.keys.gateway),
            },
            trade_id: None,
        }
    }

    /// One call of the gateway; its answer believed once Alipay's
    /// signature over it holds.
    async fn call(&self, method: &str, biz: serde_json::Value) -> PortResult<Answer> {
        let failed = |error: String| PortError::Unavailable(format!("alipay {method}: {error}"));
        let response = self
            .http
            .post(&self.keys.gateway)
            .form(&self.signed(method, &biz, Utc::now()))
            .send()
            .await
            .map_err(|error| failed(error.to_string()))?;
        let body = response.text().await.map_err(|error| failed(error.to_string()))?;
        let name = format!("{}_response", method.replace('.', "_"));
        let object = raw_object(&body, &name).ok_or_else(|| failed(format!("no {name} in {body}")))?;
        let signature: serde_json::Value = serde_json::from_str(&body).map_err(|error| failed(error.to_string()))?;
        let signature = signature["sign"]
            .as_str()
            .ok_or_else(|| failed("an unsigned answer".into()))?;
        verify(&self.keys.alipay_key, object, signature).map_err(|_| failed("a forged answer".into()))?;
        serde_json::from_str(object).map_err(|error| failed(error.to_string()))
    }

    pub async fn lookup(&self, order_id: &str) -> PortResult<ChargeLookup> {
        let answer = self
            .call("alipay.trade.query", serde_json::json!({"out_trade_no": order_id}))
            .await?;
        match (answer.code.as_str(), answer.sub_code.as_deref()) {
            (SUCCESS, _) => answer.lookup(),
            // Opened only once the shopper logs in on the cashier page.
            (_, Some(TRADE_NOT_EXIST)) => Ok(ChargeLookup::NotCharged),
            _ => Err(answer.failure("alipay.trade.query")),
        }
    }

    /// Closes the order's trade; one already paid cannot be, and says so.
    /// A trade the shopper never opened does not exist to be closed: its
    /// page may still be paid (`time_expire` bounds it), and such a late
    /// second charge is refunded.
    pub async fn close(&self, order_id: &str) -> PortResult<ChargeLookup> {
        let answer = self
            .call("alipay.trade.close", serde_json::json!({"out_trade_no": order_id}))
            .await?;
        match (answer.code.as_str(), answer.sub_code.as_deref()) {
            (SUCCESS, _) | (_, Some(TRADE_NOT_EXIST)) => Ok(ChargeLookup::NotCharged),
            _ => self.lookup(order_id).await,
        }
    }

    /// `alipay.trade.refund`, its `out_request_no` the refund key: asked
    /// again, Alipay refunds nothing more.
    pub async fn refund(&self, trade_no: &str, amount_cents: i64, refund_key: &str) -> PortResult<()> {
        let biz = serde_json::json!({
            "trade_no": trade_no,
            "refund_amount": yuan(amount_cents),
            "out_request_no": refund_key,
        });
        let answer = self.call("alipay.trade.refund", biz).await?;
        match answer.code.as_str() {
            SUCCESS => Ok(()),
            _ => Err(answer.failure("alipay.trade.refund")),
        }
    }

    /// An asynchronous notification (a form POST), believed once Alipay's
    /// signature over its pairs holds and it is for our app (and seller):
    /// the charge it tells of, or none for news we do not act on (a trade
    /// closed, a refund).
    pub fn verify(&self, body: &[u8]) -> Result<Option<Notice>, Refusal> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
        let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let signature = field("sign").ok_or(Refusal::Unsigned)?;
        let content = signed_content(
            pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            Signed::Notification,
        );
        verify(&self.keys.alipay_key, &content, signature)?;
        let unreadable = |what: &str| Refusal::Unreadable(format!("alipay notification: {what}"));
        if field("app_id") != Some(self.keys.app_id.as_str()) {
            return Err(unreadable("for another app"));
        }
        if let Some(seller) = &self.keys.seller_id
            && field("seller_id") != Some(seller.as_str())
        {
            return Err(unreadable("for another seller"));
        }
        if !matches!(field("trade_status"), Some("TRADE_SUCCESS" | "TRADE_FINISHED"))
            || field("refund_fee").is_some_and(|fee| cents(fee).is_some_and(|fee| fee > 0))
        {
            return Ok(None);
        }
        let amount = field("total_amount")
            .and_then(cents)
            .ok_or_else(|| unreadable("no amount"))?;
        Ok(Some(Notice {
            method: PayMethod::Alipay,
            id: field("notify_id").ok_or_else(|| unreadable("no notify_id"))?.to_owned(),
            order_id: field("out_trade_no")
                .ok_or_else(|| unreadable("no out_trade_no"))?
                .to_owned(),
            event: NoticeEvent::Charged {
                transaction_id: field("trade_no").ok_or_else(|| unreadable("no trade_no"))?.to_owned(),
                amount_cents: amount,
            },
        }))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::process::Command;

    use super::*;

    /// The parameters of the notification example in Alipay's documents,
    /// as their form body carries them (URL-encoded, in their order).
    const NOTIFICATION: &str = "total_amount=2.00&buyer_id=2088102116773037&body=%E5%A4%A7%E4%B9%90%E9%80%8F2.1\
        &trade_no=2016071921001003030200089909&refund_fee=0.00&notify_time=2016-07-19+14%3A10%3A49\
        &subject=%E5%A4%A7%E4%B9%90%E9%80%8F2.1&sign_type=RSA2&charset=utf-8&notify_type=trade_status_sync\
        &out_trade_no=0719141034-6418&gmt_close=2016-07-19+14%3A10%3A46&gmt_payment=2016-07-19+14%3A10%3A47\
        &trade_status=TRADE_SUCCESS&version=1.0&gmt_create=2016-07-19+14%3A10%3A44&app_id=2015102700040153\
        &seller_id=2088102119685838&notify_id=4a91b7a78a503640467525113fb7d8bg8e&sign=unused";

    fn decoded(form: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(form.as_bytes()).into_owned().collect()
    }

    fn content_of(pairs: &[(String, String)], kind: Signed) -> String {
        signed_content(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), kind)
    }

    #[test]
    fn a_notification_is_signed_over_its_decoded_sorted_pairs_without_sign_and_sign_type() {
        assert_eq!(
            content_of(&decoded(NOTIFICATION), Signed::Notification),
            "app_id=2015102700040153&body=大乐透2.1&buyer_id=2088102116773037&charset=utf-8\
             &gmt_close=2016-07-19 14:10:46&gmt_create=2016-07-19 14:10:44&gmt_payment=2016-07-19 14:10:47\
             &notify_id=4a91b7a78a503640467525113fb7d8bg8e&notify_time=2016-07-19 14:10:49\
             &notify_type=trade_status_sync&out_trade_no=0719141034-6418&refund_fee=0.00\
             &seller_id=2088102119685838&subject=大乐透2.1&total_amount=2.00\
             &trade_no=2016071921001003030200089909&trade_status=TRADE_SUCCESS&version=1.0"
        );
    }

    #[test]
    fn a_request_signs_sign_type_and_leaves_out_empty_values() {
        let pairs = [
            ("method", "alipay.trade.page.pay"),
            ("app_id", "2014072300007148"),
            ("sign_type", "RSA2"),
            ("return_url", ""),
            ("sign", "x"),
            ("biz_content", r#"{"out_trade_no":"1","total_amount":"88.88"}"#),
        ];
        assert_eq!(
            signed_content(pairs, Signed::Request),
            r#"app_id=2014072300007148&biz_content={"out_trade_no":"1","total_amount":"88.88"}&method=alipay.trade.page.pay&sign_type=RSA2"#
        );
        let empty_kept = signed_content([("a", ""), ("b", "1"), ("sign_type", "RSA2")], Signed::Notification);
        assert_eq!(empty_kept, "a=&b=1");
    }

    /// A fresh RSA-2048 key from OpenSSL, and OpenSSL's SHA256withRSA of
    /// `content` with it: the oracle our signing is held to, byte for byte.
    pub(crate) fn openssl_signs(content: &str) -> (String, String) {
        let dir = tempfile_dir();
        let key = dir.join("app.pem");
        let run = |args: &[&str], input: Option<&str>| {
            let mut child = Command::new("openssl")
                .args(args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("openssl runs");
            if let Some(input) = input {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
            }
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "openssl {args:?}");
            output.stdout
        };
        let key_path = key.to_str().unwrap();
        run(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                key_path,
            ],
            None,
        );
        let signature = run(&["dgst", "-sha256", "-sign", key_path], Some(content));
        let pem = std::fs::read_to_string(&key).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        (pem, STANDARD.encode(signature))
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("alipay-{}", ulid::Ulid::generate()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn signing_and_verifying_agree_with_openssl_byte_for_byte() {
        let content = content_of(&decoded(NOTIFICATION), Signed::Notification);
        let (pem, expected) = openssl_signs(&content);
        let key = private_key(&pem).unwrap();
        assert_eq!(sign(&key, &content), expected);
        let public = RsaPublicKey::from(&key);
        assert_eq!(verify(&public, &content, &expected), Ok(()));
        let tampered = content.replace("total_amount=2.00", "total_amount=2.01");
        assert_eq!(verify(&public, &tampered, &expected), Err(Refusal::Forged));
        assert_eq!(verify(&public, &content, "not base64!"), Err(Refusal::Forged));
    }

    #[test]
    fn keys_are_read_as_alipay_hands_them_out() {
        let (pem, _) = openssl_signs("x");
        let key = private_key(&pem).unwrap();
        let bare: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
        assert_eq!(private_key(&bare).unwrap(), key);
        let public = RsaPublicKey::from(&key);
        let spki = rsa::pkcs8::EncodePublicKey::to_public_key_der(&public).unwrap();
        assert_eq!(public_key(&STANDARD.encode(spki.as_bytes())).unwrap(), public);
        assert!(private_key("not a key").is_err());
    }

    #[test]
    fn an_answer_is_verified_over_the_raw_text_of_its_response_object() {
        let body = r#"{"alipay_trade_query_response": {"code":"10000","msg":"a \"}\" {","trade_no":"1"},"sign":"x"}"#;
        assert_eq!(
            raw_object(body, "alipay_trade_query_response"),
            Some(r#"{"code":"10000","msg":"a \"}\" {","trade_no":"1"}"#)
        );
        assert_eq!(raw_object(body, "alipay_trade_close_response"), None);
        assert_eq!(
            raw_object(r#"{"alipay_trade_query_response":"{}"}"#, "alipay_trade_query_response"),
            None
        );
        assert_eq!(
            raw_object(
                r#"{"alipay_trade_query_response":{"a":1"#,
                "alipay_trade_query_response"
            ),
            None
        );
    }

    #[test]
    fn times_are_china_standard_time() {
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 4, 16, 30, 5).unwrap();
        assert_eq!(china_time(at), "2026-12-05 00:30:05");
    }

    #[test]
    fn amounts_are_yuan_with_two_decimals_and_nothing_else() {
        assert_eq!(yuan(200), "2.00");
        assert_eq!(yuan(8888), "88.88");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(cents("2.00"), Some(200));
        assert_eq!(cents("88.8"), Some(8880));
        assert_eq!(cents("7"), Some(700));
        for wrong in [
            "",
            ".5",
            "1.",
            "1.234",
            "-1.00",
            "+1.00",
            "1e2",
            "1,00",
            " 1.00",
            "99999999999999999999",
        ] {
            assert_eq!(cents(wrong), None, "{wrong}");
        }
    }
}
