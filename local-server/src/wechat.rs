//! A stand-in for WeChat Pay API v3 on loopback, faithful where this
//! backend depends on it: it verifies every request's
//! `WECHATPAY2-SHA256-RSA2048` signature with the merchant's public key,
//! keeps its own books (a Native order opens the trade; a refund is kept
//! under its `out_refund_no`), signs every answer with its own key (a
//! WeChat Pay public key, `PUB_KEY_ID_…`), shows the page the QR code
//! leads to, and when the shopper pays sends the notification (its
//! `resource` sealed with AEAD_AES_256_GCM and the APIv3 key, the whole
//! signed) until a 2xx answers it, on WeChat Pay's schedule (15 s, 15 s,
//! 30 s, 3 m, 10 m, 20 m, 30 m, 30 m, 30 m, 1 h, 3 h, 3 h, 3 h, 6 h, 6 h)
//! divided by fifteen.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Path, Request, State},
    http::{HeaderMap, Method, StatusCode, Uri},
    middleware::{self, Next},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use chrono::Utc;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use shared::{
    config::Secret,
    payments::{WechatKeys, wechat},
};

use crate::{
    ledger::{Ledger, Refunded},
    services::Served,
};

/// WeChat Pay's resends after the first send, in seconds, fifteen times
/// faster than it.
const RESENDS: [u64; 15] = [1, 1, 2, 12, 40, 80, 120, 120, 120, 240, 720, 720, 720, 1440, 1440];

const OWN_SERIAL: &str = "PUB_KEY_ID_0100000000000000000000000000000001";

#[derive(Debug, Clone)]
struct Trade {
    amount: i64,
    description: String,
    notify_url: String,
    /// `NOTPAY`, `SUCCESS`, `CLOSED` or `REFUND`.
    state: &'static str,
    transaction_id: Option<String>,
    refunds: BTreeMap<String, i64>,
}

impl Refunded for Trade {
    fn refunds(&self) -> &BTreeMap<String, i64> {
        &self.refunds
    }
}

struct Books {
    mch_id: String,
    app_id: String,
    merchant_serial: String,
    merchant_key: RsaPublicKey,
    api_v3_key: String,
    own_key: RsaPrivateKey,
    address: Mutex<Option<SocketAddr>>,
    ledger: Ledger<Trade>,
}

fn nonce() -> String {
    format!("{:032X}", rand::random::<u128>())
}

impl Books {
    /// Whether a request carries our merchant's valid signature.
    fn authorized(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> bool {
        let Some(params) = headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("WECHATPAY2-SHA256-RSA2048 "))
        else {
            return false;
        };
        let params: BTreeMap<&str, &str> = params
            .split(',')
            .filter_map(|part| part.trim().split_once('='))
            .map(|(k, v)| (k, v.trim_matches('"')))
            .collect();
        let (Some(timestamp), Some(nonce), Some(signature)) = (
            params.get("timestamp"),
            params.get("nonce_str"),
            params.get("signature"),
        ) else {
            return false;
        };
        if params.get("mchid") != Some(&self.mch_id.as_str())
            || params.get("serial_no") != Some(&self.merchant_serial.as_str())
        {
            return false;
        }
        let url = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
        let Ok(timestamp) = timestamp.parse::<i64>() else {
            return false;
        };
        let message = wechat::request_message(method.as_str(), url, timestamp, nonce, &String::from_utf8_lossy(body));
        wechat::verify_message(&self.merchant_key, message.as_bytes(), signature).is_ok()
    }

    /// An answer as WeChat Pay sends it: signed over its time, nonce and
    /// body.
    fn answer(&self, status: StatusCode, body: Option<Value>) -> Response {
        let body = body.map(|body| body.to_string()).unwrap_or_default();
        let (timestamp, nonce) = (Utc::now().timestamp().to_string(), nonce());
        let signature = wechat::sign(
            &self.own_key,
            &wechat::answer_message(&timestamp, &nonce, body.as_bytes()),
        );
        (
            status,
            [
                ("content-type", "application/json".to_owned()),
                ("wechatpay-timestamp", timestamp),
                ("wechatpay-nonce", nonce),
                ("wechatpay-signature", signature),
                ("wechatpay-serial", OWN_SERIAL.to_owned()),
            ],
            body,
        )
            .into_response()
    }

    fn failed(&self, status: StatusCode, code: &str) -> Response {
        self.answer(status, Some(json!({"code": code, "message": code})))
    }

    fn transaction(&self, out_trade_no: &str, trade: &Trade) -> Value {
        json!({
            "appid": self.app_id, "mchid": self.mch_id, "out_trade_no": out_trade_no,
            "transaction_id": trade.transaction_id, "trade_type": "NATIVE", "trade_state": trade.state,
            "amount": {"total": trade.amount, "payer_total": trade.amount, "currency": "CNY"},
        })
    }

    /// A notification of the trade: its headers and body, the transaction
    /// changed by `edit`, signed by `signer` (else the stand-in's key) at
    /// `timestamp`.
    fn notification(
        &self,
        out_trade_no: &str,
        signer: Option<&RsaPrivateKey>,
        timestamp: i64,
        edit: impl FnOnce(&mut Value),
    ) -> Option<(Vec<(&'static str, String)>, String)> {
        let trade = self.ledger.trades().get(out_trade_no).cloned()?;
        let mut transaction = self.transaction(out_trade_no, &trade);
        edit(&mut transaction);
        let sealing_nonce = &nonce()[..12];
        let ciphertext = wechat::encrypt(
            &self.api_v3_key,
            sealing_nonce,
            "transaction",
            transaction.to_string().as_bytes(),
        );
        let body = json!({
            "id": format!("EV-{out_trade_no}"), "create_time": Utc::now().to_rfc3339(),
            "event_type": "TRANSACTION.SUCCESS", "resource_type": "encrypt-resource", "summary": "支付成功",
            "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                         "ciphertext": ciphertext, "associated_data": "transaction", "nonce": sealing_nonce},
        })
        .to_string();
        let (timestamp, nonce) = (timestamp.to_string(), nonce());
        let signature = wechat::sign(
            signer.unwrap_or(&self.own_key),
            &wechat::answer_message(&timestamp, &nonce, body.as_bytes()),
        );
        let headers = vec![
            ("content-type", "application/json".to_owned()),
            ("wechatpay-timestamp", timestamp),
            ("wechatpay-nonce", nonce),
            ("wechatpay-signature", signature),
            ("wechatpay-serial", OWN_SERIAL.to_owned()),
        ];
        Some((headers, body))
    }
}

/// Every API call must carry our merchant's valid signature, as at
/// WeChat Pay; the rest is the handlers'.
async fn signed_by_the_merchant(State(books): State<Arc<Books>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024).await else {
        return books.failed(StatusCode::BAD_REQUEST, "PARAM_ERROR");
    };
    if !books.authorized(&parts.method, &parts.uri, &parts.headers, &body) {
        return books.failed(StatusCode::UNAUTHORIZED, "SIGN_ERROR");
    }
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// Sends the trade's notification until a 2xx answers it.
async fn notify(books: Arc<Books>, out_trade_no: String) {
    for wait in std::iter::once(0).chain(RESENDS) {
        tokio::time::sleep(Duration::from_secs(wait)).await;
        if !books.ledger.notifying() {
            return;
        }
        let Some(url) = books
            .ledger
            .trades()
            .get(&out_trade_no)
            .map(|trade| trade.notify_url.clone())
        else {
            return;
        };
        let Some((headers, body)) = books.notification(&out_trade_no, None, Utc::now().timestamp(), |_| {}) else {
            return;
        };
        let mut request = books.ledger.http.post(&url).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if request.send().await.is_ok_and(|reply| reply.status().is_success()) {
            return;
        }
    }
}

async fn native(State(books): State<Arc<Books>>, body: Bytes) -> Response {
    let order: Value = serde_json::from_slice(&body).unwrap_or_default();
    let (Some(out_trade_no), Some(amount)) = (order["out_trade_no"].as_str(), order["amount"]["total"].as_i64()) else {
        return books.failed(StatusCode::BAD_REQUEST, "PARAM_ERROR");
    };
    if order["mchid"] != books.mch_id.as_str() || order["appid"] != books.app_id.as_str() {
        return books.failed(StatusCode::BAD_REQUEST, "APPID_MCHID_NOT_MATCH");
    }
    let state = books
        .ledger
        .trades()
        .entry(out_trade_no.to_owned())
        .or_insert(Trade {
            amount,
            description: order["description"].as_str().unwrap_or_default().to_owned(),
            notify_url: order["notify_url"].as_str().unwrap_or_default().to_owned(),
            state: "NOTPAY",
            transaction_id: None,
            refunds: BTreeMap::new(),
        })
        .state;
    let address = books.address.lock().expect("the address").expect("serving");
    match state {
        "NOTPAY" => books.answer(
            StatusCode::OK,
            Some(json!({"code_url": format!("http://{address}/scan/{out_trade_no}")})),
        ),
        "CLOSED" => books.failed(StatusCode::BAD_REQUEST, "ORDERCLOSED"),
        _ => books.failed(StatusCode::BAD_REQUEST, "ORDERPAID"),
    }
}

async fn query(State(books): State<Arc<Books>>, Path(out_trade_no): Path<String>) -> Response {
    let trade = books.ledger.trades().get(&out_trade_no).cloned();
    match trade {
        Some(trade) => books.answer(StatusCode::OK, Some(books.transaction(&out_trade_no, &trade))),
        None => books.failed(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST"),
    }
}

async fn close(State(books): State<Arc<Books>>, Path(out_trade_no): Path<String>) -> Response {
    let mut trades = books.ledger.trades();
    let answer = match trades.get_mut(&out_trade_no) {
        None => {
            return {
                drop(trades);
                books.failed(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST")
            };
        }
        Some(trade) if trade.state == "NOTPAY" || trade.state == "CLOSED" => {
            trade.state = "CLOSED";
            None
        }
        Some(_) => Some("ORDERPAID"),
    };
    drop(trades);
    match answer {
        None => books.answer(StatusCode::NO_CONTENT, None),
        Some(code) => books.failed(StatusCode::BAD_REQUEST, code),
    }
}

async fn refund(State(books): State<Arc<Books>>, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or_default();
    let key = request["out_refund_no"].as_str().unwrap_or_default().to_owned();
    let amount = request["amount"]["refund"].as_i64().unwrap_or_default();
    let mut trades = books.ledger.trades();
    let Some(trade) = trades.values_mut().find(|trade| {
        trade.transaction_id.is_some() && trade.transaction_id.as_deref() == request["transaction_id"].as_str()
    }) else {
        drop(trades);
        return books.failed(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS");
    };
    let refunded: i64 = trade.refunds.values().sum();
    let done = json!({"refund_id": format!("50{key}"), "out_refund_no": key, "status": "SUCCESS", "amount": {"refund": amount, "total": trade.amount}});
    let answer = if trade.refunds.contains_key(&key) {
        Ok(done)
    } else if amount > 0 && refunded + amount <= trade.amount {
        trade.refunds.insert(key, amount);
        trade.state = "REFUND";
        Ok(done)
    } else {
        Err("NOT_ENOUGH")
    };
    drop(trades);
    match answer {
        Ok(done) => books.answer(StatusCode::OK, Some(done)),
        Err(code) => books.failed(StatusCode::FORBIDDEN, code),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"zh\"><head><meta charset=\"utf-8\"><title>WeChat Pay</title></head>\
         <body style=\"font-family:sans-serif;max-width:28em;margin:3em auto\">\
         <h1>微信支付 · WeChat Pay stand-in</h1>{body}</body></html>"
    ))
}

/// What scanning the QR code opens: the trade, and a button to pay it.
async fn scanned(State(books): State<Arc<Books>>, Path(out_trade_no): Path<String>) -> Html<String> {
    let Some(trade) = books.ledger.trades().get(&out_trade_no).cloned() else {
        return page("<p id=\"status\">no such trade</p>");
    };
    let what = format!(
        "<p>{} — <strong id=\"amount\">¥{}.{:02}</strong></p>",
        escape(&trade.description),
        trade.amount / 100,
        trade.amount % 100
    );
    match trade.state {
        "NOTPAY" => page(&format!(
            "{what}<form method=\"post\" action=\"/scan/{}/pay\"><button id=\"pay\">确认支付 · Pay</button></form>",
            escape(&out_trade_no)
        )),
        state => page(&format!("{what}<p id=\"status\">{state}</p>")),
    }
}

async fn pay(State(books): State<Arc<Books>>, Path(out_trade_no): Path<String>) -> Html<String> {
    {
        let mut trades = books.ledger.trades();
        let Some(trade) = trades.get_mut(&out_trade_no).filter(|trade| trade.state == "NOTPAY") else {
            return page("<p id=\"status\">this trade cannot be paid</p>");
        };
        let number = books.ledger.next_number();
        trade.state = "SUCCESS";
        trade.transaction_id = Some(format!("4200{number:024}"));
    }
    tokio::spawn(notify(books, out_trade_no));
    page("<p id=\"status\">SUCCESS</p><p>You may close this page.</p>")
}

/// The stand-in, serving on a loopback port until dropped.
pub struct WechatStandIn {
    books: Arc<Books>,
    served: Served,
}

impl WechatStandIn {
    /// A fresh merchant key pair and APIv3 key, a stand-in for them, and
    /// the keys our adapter uses with it, its notifications sent to
    /// `notify_url`.
    pub async fn with_merchant(notify_url: &str) -> std::io::Result<(Self, WechatKeys)> {
        let merchant_key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("a 2048-bit key");
        let own_key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("a 2048-bit key");
        let api_v3_key = nonce();
        let books = Arc::new(Books {
            mch_id: "1900000001".into(),
            app_id: "wx0000000000000001".into(),
            merchant_serial: "5157F09EFDC096DE15EBE81A47057A7232F1B8E1".into(),
            merchant_key: RsaPublicKey::from(&merchant_key),
            api_v3_key: api_v3_key.clone(),
            own_key,
            address: Mutex::default(),
            ledger: Ledger::default(),
        });
        let router = Router::new()
            .route("/v3/pay/transactions/native", post(native))
            .route("/v3/pay/transactions/out-trade-no/{out_trade_no}", get(query))
            .route("/v3/pay/transactions/out-trade-no/{out_trade_no}/close", post(close))
            .route("/v3/refund/domestic/refunds", post(refund))
            .route_layer(middleware::from_fn_with_state(books.clone(), signed_by_the_merchant))
            .route("/scan/{out_trade_no}", get(scanned))
            .route("/scan/{out_trade_no}/pay", post(pay))
            .with_state(books.clone());
        let served = Served::start(router).await?;
        let address = served.address;
        *books.address.lock().expect("the address") = Some(address);
        let keys = WechatKeys {
            mch_id: books.mch_id.clone(),
            app_id: books.app_id.clone(),
            merchant_key,
            merchant_serial: books.merchant_serial.clone(),
            api_v3_key: Secret(api_v3_key),
            platform_keys: vec![(OWN_SERIAL.into(), RsaPublicKey::from(&books.own_key))],
            api_base: format!("http://{address}"),
            notify_url: notify_url.into(),
        };
        Ok((WechatStandIn { books, served }, keys))
    }

    pub fn api_base(&self) -> String {
        format!("http://{}", self.served.address)
    }

    /// From now on every notification is lost for good.
    pub fn lose_notifications(&self) {
        self.books.ledger.lose_notifications();
    }

    /// The refunds of a trade, by `out_refund_no`.
    pub fn refunds(&self, out_trade_no: &str) -> BTreeMap<String, i64> {
        self.books.ledger.refunds(out_trade_no)
    }

    /// A notification of the trade (headers and body), its transaction
    /// changed by `edit`, signed by `signer` (else the stand-in) at
    /// `timestamp`.
    pub fn notification(
        &self,
        out_trade_no: &str,
        signer: Option<&RsaPrivateKey>,
        timestamp: i64,
        edit: impl FnOnce(&mut Value),
    ) -> Option<(Vec<(&'static str, String)>, String)> {
        self.books.notification(out_trade_no, signer, timestamp, edit)
    }
}
