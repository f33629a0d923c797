//! A stand-in for Alipay's open platform on loopback, faithful where this
//! backend depends on it (no Alipay sandbox is reachable offline): it
//! verifies our RSA2-signed requests with the app's public key, keeps its
//! own books of trades and refunds, shows the cashier page where the
//! shopper "pays", answers `alipay.trade.query`, `close` and `refund`
//! signed with its own key, and sends signed notifications to the notify
//! URL until one is answered exactly `success`, on Alipay's schedule (4 m,
//! 10 m, 10 m, 1 h, 2 h, 6 h, 15 h after the first) with minutes read as
//! seconds. As at Alipay, a trade exists only once the shopper opens its
//! page, and a refund is kept under its `out_request_no`.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Bytes,
    extract::{Query, State},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use chrono::Utc;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use shared::payments::{
    AlipayKeys,
    alipay::{self, Signed},
};

use crate::{
    ledger::{Ledger, Refunded},
    services::Served,
};

/// Alipay's resends after the first send, minutes read as seconds.
const RESENDS: [u64; 7] = [4, 10, 10, 60, 120, 360, 900];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    WaitBuyerPay,
    Success,
    Closed,
}

impl Status {
    fn name(&self) -> &'static str {
        match self {
            Status::WaitBuyerPay => "WAIT_BUYER_PAY",
            Status::Success => "TRADE_SUCCESS",
            Status::Closed => "TRADE_CLOSED",
        }
    }
}

#[derive(Debug, Clone)]
struct Trade {
    amount: i64,
    subject: String,
    notify_url: String,
    /// Where the cashier sends the shopper once paid.
    return_url: Option<String>,
    status: Status,
    trade_no: Option<String>,
    /// Refunds by `out_request_no`.
    refunds: BTreeMap<String, i64>,
}

impl Refunded for Trade {
    fn refunds(&self) -> &BTreeMap<String, i64> {
        &self.refunds
    }
}

struct Books {
    app_id: String,
    app_key: RsaPublicKey,
    own_key: RsaPrivateKey,
    ledger: Ledger<Trade>,
}

type Pairs = Vec<(String, String)>;

/// A form body's pairs, decoded.
fn form(body: &[u8]) -> Pairs {
    form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(pairs: &'a Pairs, name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

impl Books {
    /// A request's business content, once its signature by our app holds.
    fn verified(&self, pairs: &Pairs) -> Result<Value, String> {
        let signature = field(pairs, "sign").ok_or("unsigned")?;
        let content = alipay::signed_content(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), Signed::Request);
        alipay::verify(&self.app_key, &content, signature).map_err(|_| "ACQ.INVALID_SIGN".to_owned())?;
        if field(pairs, "app_id") != Some(self.app_id.as_str()) {
            return Err("another app".into());
        }
        serde_json::from_str(field(pairs, "biz_content").ok_or("no biz_content")?).map_err(|e| e.to_string())
    }

    /// An answer as Alipay's gateway writes it: the response object, and
    /// the signature over its text.
    fn answer(&self, method: &str, response: Value) -> Response {
        let text = response.to_string();
        let signature = alipay::sign(&self.own_key, &text);
        let name = format!("{}_response", method.replace('.', "_"));
        let body = format!("{{\"{name}\":{text},\"sign\":\"{signature}\"}}");
        ([("content-type", "application/json;charset=utf-8")], body).into_response()
    }

    /// Where the paid cashier sends the shopper: the shop's `return_url`
    /// with Alipay's signed synchronous return (read for display only: the
    /// notification is what moves money).
    fn back_to_shop(&self, out_trade_no: &str, trade: &Trade) -> Option<String> {
        let return_url = trade.return_url.as_deref()?;
        let mut pairs: Pairs = [
            ("method", "alipay.trade.page.pay.return"),
            ("app_id", self.app_id.as_str()),
            ("auth_app_id", self.app_id.as_str()),
            ("charset", "utf-8"),
            ("version", "1.0"),
            ("sign_type", "RSA2"),
            ("timestamp", &alipay_time()),
            ("out_trade_no", out_trade_no),
            ("trade_no", trade.trade_no.as_deref().unwrap_or_default()),
            ("total_amount", &alipay::yuan(trade.amount)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        self.sign_pairs(&mut pairs);
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let separator = if return_url.contains('?') { '&' } else { '?' };
        Some(format!("{return_url}{separator}{query}"))
    }

    fn sign_pairs(&self, pairs: &mut Pairs) {
        let content = alipay::signed_content(
            pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            Signed::Notification,
        );
        pairs.push(("sign".into(), alipay::sign(&self.own_key, &content)));
    }

    fn notification(&self, out_trade_no: &str, trade: &Trade, notify_id: &str) -> Pairs {
        let now = alipay_time();
        let mut pairs: Pairs = [
            ("notify_time", now.as_str()),
            ("notify_type", "trade_status_sync"),
            ("notify_id", notify_id),
            ("app_id", self.app_id.as_str()),
            ("charset", "utf-8"),
            ("version", "1.0"),
            ("sign_type", "RSA2"),
            ("trade_no", trade.trade_no.as_deref().unwrap_or_default()),
            ("out_trade_no", out_trade_no),
            ("trade_status", trade.status.name()),
            ("total_amount", &alipay::yuan(trade.amount)),
            ("subject", &trade.subject),
            ("gmt_payment", now.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        self.sign_pairs(&mut pairs);
        pairs
    }
}

fn alipay_time() -> String {
    let china = chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00");
    Utc::now().with_timezone(&china).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Sends the trade's notification until it is answered exactly `success`.
async fn notify(books: Arc<Books>, out_trade_no: String) {
    let notify_id = format!("{:032x}", rand::random::<u128>());
    for wait in std::iter::once(0).chain(RESENDS) {
        tokio::time::sleep(Duration::from_secs(wait)).await;
        if !books.ledger.notifying() {
            return;
        }
        let Some(trade) = books.ledger.trades().get(&out_trade_no).cloned() else {
            return;
        };
        let pairs = books.notification(&out_trade_no, &trade, &notify_id);
        let sent = books.ledger.http.post(&trade.notify_url).form(&pairs).send().await;
        if let Ok(reply) = sent
            && reply.status().is_success()
            && reply.text().await.is_ok_and(|body| body == "success")
        {
            return;
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"zh\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;max-width:28em;margin:3em auto\">\
         <h1>支付宝 · Alipay stand-in</h1>{body}</body></html>"
    ))
}

/// The cashier page a signed `alipay.trade.page.pay` opens: the trade is
/// created now, as at Alipay when the shopper logs in.
async fn cashier(State(books): State<Arc<Books>>, Query(pairs): Query<Pairs>) -> Html<String> {
    let biz = match books.verified(&pairs) {
        Ok(biz) => biz,
        Err(reason) => return page("refused", &format!("<p id=\"refused\">{}</p>", escape(&reason))),
    };
    let (Some(out_trade_no), Some(amount)) = (
        biz["out_trade_no"].as_str(),
        biz["total_amount"].as_str().and_then(alipay::cents),
    ) else {
        return page(
            "refused",
            "<p id=\"refused\">out_trade_no and total_amount required</p>",
        );
    };
    let subject = biz["subject"].as_str().unwrap_or_default().to_owned();
    let notify_url = field(&pairs, "notify_url").unwrap_or_default().to_owned();
    let return_url = field(&pairs, "return_url").map(str::to_owned);
    let trade = books
        .ledger
        .trades()
        .entry(out_trade_no.to_owned())
        .or_insert(Trade {
            amount,
            subject,
            notify_url,
            return_url,
            status: Status::WaitBuyerPay,
            trade_no: None,
            refunds: BTreeMap::new(),
        })
        .clone();
    let what = format!(
        "<p>{} — <strong id=\"amount\">¥{}</strong></p>",
        escape(&trade.subject),
        alipay::yuan(trade.amount)
    );
    match trade.status {
        Status::WaitBuyerPay => page(
            "Pay",
            &format!(
                "{what}<form method=\"post\" action=\"/cashier/pay\">\
                 <input type=\"hidden\" name=\"out_trade_no\" value=\"{}\">\
                 <button id=\"pay\">确认付款 · Pay</button></form>",
                escape(out_trade_no)
            ),
        ),
        status => page("Trade", &format!("{what}<p id=\"status\">{}</p>", status.name())),
    }
}

/// The shopper pays on the cashier page: the trade succeeds, and its
/// notification is on its way.
async fn pay(State(books): State<Arc<Books>>, body: Bytes) -> Html<String> {
    let pairs = form(&body);
    let out_trade_no = field(&pairs, "out_trade_no").unwrap_or_default().to_owned();
    let back = {
        let mut trades = books.ledger.trades();
        let Some(trade) = trades
            .get_mut(&out_trade_no)
            .filter(|t| t.status == Status::WaitBuyerPay)
        else {
            return page("Trade", "<p id=\"status\">this trade cannot be paid</p>");
        };
        let number = books.ledger.next_number();
        trade.status = Status::Success;
        trade.trade_no = Some(format!("{}{number:014}", Utc::now().format("%Y%m%d%H%M%S")));
        books.back_to_shop(&out_trade_no, trade)
    };
    tokio::spawn(notify(books, out_trade_no));
    match back {
        Some(url) => {
            let url = escape(&url);
            Html(format!(
                "<!doctype html><html><head><meta charset=\"utf-8\">\
                 <meta http-equiv=\"refresh\" content=\"1;url={url}\"><title>Paid</title></head>\
                 <body><p id=\"status\">TRADE_SUCCESS</p><p><a id=\"back\" href=\"{url}\">返回商家 · Back to the shop</a></p></body></html>"
            ))
        }
        None => page(
            "Paid",
            "<p id=\"status\">TRADE_SUCCESS</p><p>You may close this page.</p>",
        ),
    }
}

/// `alipay.trade.query`, `alipay.trade.close` and `alipay.trade.refund`.
async fn gateway(State(books): State<Arc<Books>>, body: Bytes) -> Response {
    let pairs = form(&body);
    let method = field(&pairs, "method").unwrap_or_default().to_owned();
    let failed = |sub_code: &str| json!({"code": "40004", "msg": "Business Failed", "sub_code": sub_code});
    let biz = match books.verified(&pairs) {
        Ok(biz) => biz,
        Err(reason) => {
            return books.answer(
                &method,
                json!({"code": "40002", "msg": "Invalid Arguments", "sub_code": reason}),
            );
        }
    };
    let out_trade_no = biz["out_trade_no"].as_str().map(str::to_owned);
    let trade_no = biz["trade_no"].as_str();
    let mut trades = books.ledger.trades();
    let found = trades.iter_mut().find(|(number, trade)| {
        Some(number.as_str()) == out_trade_no.as_deref() || trade.trade_no.as_deref() == trade_no && trade_no.is_some()
    });
    let response = match (method.as_str(), found) {
        (_, None) => failed("ACQ.TRADE_NOT_EXIST"),
        ("alipay.trade.query", Some((number, trade))) => json!({
            "code": "10000", "msg": "Success", "out_trade_no": number,
            "trade_no": trade.trade_no, "trade_status": trade.status.name(),
            "total_amount": alipay::yuan(trade.amount),
        }),
        ("alipay.trade.close", Some((_, trade))) if trade.status == Status::WaitBuyerPay => {
            trade.status = Status::Closed;
            json!({"code": "10000", "msg": "Success"})
        }
        ("alipay.trade.close", Some(_)) => failed("ACQ.TRADE_STATUS_ERROR"),
        ("alipay.trade.refund", Some((_, trade))) => {
            let key = biz["out_request_no"].as_str().unwrap_or_default().to_owned();
            let amount = biz["refund_amount"].as_str().and_then(alipay::cents);
            let refunded: i64 = trade.refunds.values().sum();
            match amount {
                _ if trade.status != Status::Success && !trade.refunds.contains_key(&key) => {
                    failed("ACQ.TRADE_STATUS_ERROR")
                }
                _ if trade.refunds.contains_key(&key) => json!({"code": "10000", "msg": "Success", "fund_change": "N"}),
                Some(amount) if amount > 0 && refunded + amount <= trade.amount => {
                    trade.refunds.insert(key, amount);
                    if refunded + amount == trade.amount {
                        trade.status = Status::Closed;
                    }
                    json!({"code": "10000", "msg": "Success", "fund_change": "Y", "refund_fee": alipay::yuan(refunded + amount)})
                }
                _ => failed("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"),
            }
        }
        _ => json!({"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.METHOD_NOT_SUPPORTED"}),
    };
    drop(trades);
    books.answer(&method, response)
}

/// The stand-in, serving on a loopback port until dropped.
pub struct AlipayStandIn {
    books: Arc<Books>,
    served: Served,
}

impl AlipayStandIn {
    /// Serves for the app `app_id` whose requests `app_key` verifies.
    pub async fn start(app_id: &str, app_key: RsaPublicKey) -> std::io::Result<Self> {
        let own_key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("a 2048-bit key");
        let books = Arc::new(Books {
            app_id: app_id.to_owned(),
            app_key,
            own_key,
            ledger: Ledger::default(),
        });
        let router = Router::new()
            .route("/gateway.do", get(cashier).post(gateway))
            .route("/cashier/pay", post(pay))
            .with_state(books.clone());
        let served = Served::start(router).await?;
        Ok(AlipayStandIn { books, served })
    }

    /// A fresh app key pair, a stand-in for it, and the keys our adapter
    /// uses with it, its notifications sent to `notify_url`.
    pub async fn with_app(notify_url: &str) -> std::io::Result<(Self, AlipayKeys)> {
        let app_key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("a 2048-bit key");
        let app_id = "2021000000000001";
        let standin = Self::start(app_id, RsaPublicKey::from(&app_key)).await?;
        let keys = AlipayKeys {
            app_id: app_id.into(),
            app_key,
            alipay_key: RsaPublicKey::from(&standin.books.own_key),
            gateway: standin.gateway(),
            seller_id: None,
            notify_url: notify_url.into(),
            return_url: None,
        };
        Ok((standin, keys))
    }

    pub fn gateway(&self) -> String {
        format!("http://{}/gateway.do", self.served.address)
    }

    /// From now on every notification is lost for good.
    pub fn lose_notifications(&self) {
        self.books.ledger.lose_notifications();
    }

    /// The refunds of a trade, by `out_request_no`.
    pub fn refunds(&self, out_trade_no: &str) -> BTreeMap<String, i64> {
        self.books.ledger.refunds(out_trade_no)
    }

    /// What a notification of the trade says, signed with `key` (the
    /// stand-in's own, or a forger's) over `pairs` as changed by `edit`.
    pub fn notification_signed_by(
        &self,
        out_trade_no: &str,
        key: Option<&RsaPrivateKey>,
        edit: impl FnOnce(&mut Pairs),
    ) -> Option<String> {
        let trade = self.books.ledger.trades().get(out_trade_no).cloned()?;
        let mut pairs = self.books.notification(out_trade_no, &trade, "a-notify-id");
        pairs.retain(|(k, _)| k != "sign");
        edit(&mut pairs);
        let content = alipay::signed_content(
            pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            Signed::Notification,
        );
        pairs.push((
            "sign".into(),
            alipay::sign(key.unwrap_or(&self.books.own_key), &content),
        ));
        Some(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish(),
        )
    }
}
