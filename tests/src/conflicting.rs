//! A stand-in for DynamoDB on loopback that forwards every call to DynamoDB
//! Local, except that while told to it answers `TransactWriteItems` as
//! DynamoDB does when a concurrent transaction holds one of its items: a
//! `TransactionCanceledException` whose reason is `TransactionConflict`.
//! DynamoDB Local serialises transactions and never gives that answer, yet
//! overlapping payout runs meet it in the cloud.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

const TRANSACT_WRITE_ITEMS: &str = "DynamoDB_20120810.TransactWriteItems";

struct Shared {
    target: String,
    client: reqwest::Client,
    conflicting: AtomicBool,
    conflicts: AtomicUsize,
}

/// The stand-in; [`endpoint`](Self::endpoint) is its address.
pub struct ConflictingDynamo {
    endpoint: String,
    shared: Arc<Shared>,
}

impl ConflictingDynamo {
    /// Starts forwarding to the DynamoDB at `target`, conflicting from the start.
    pub async fn start(target: &str) -> Self {
        let shared = Arc::new(Shared {
            target: target.to_owned(),
            client: reqwest::Client::new(),
            conflicting: AtomicBool::new(true),
            conflicts: AtomicUsize::new(0),
        });
        let router = Router::new().fallback(answer).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        ConflictingDynamo { endpoint, shared }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether transactions conflict from now on.
    pub fn conflict(&self, on: bool) {
        self.shared.conflicting.store(on, Ordering::SeqCst);
    }

    /// How many transactions it refused so far.
    pub fn conflicts(&self) -> usize {
        self.shared.conflicts.load(Ordering::SeqCst)
    }
}

async fn answer(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if target == TRANSACT_WRITE_ITEMS && shared.conflicting.load(Ordering::SeqCst) {
        shared.conflicts.fetch_add(1, Ordering::SeqCst);
        return conflict(&body);
    }
    let mut forwarded = shared.client.post(&shared.target).body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            forwarded = forwarded.header(name, value);
        }
    }
    match forwarded.send().await {
        Ok(reply) => {
            let status = reply.status();
            let headers = reply.headers().clone();
            let body = reply.bytes().await.unwrap_or_default();
            (status, headers, body).into_response()
        }
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}

/// The cancellation DynamoDB sends: one reason per item, the first in
/// conflict, the others `None`.
fn conflict(request: &[u8]) -> Response {
    let request: Value = serde_json::from_slice(request).unwrap_or_default();
    let items = request["TransactItems"].as_array().map_or(1, Vec::len);
    let reasons: Vec<Value> = (0..items)
        .map(|i| match i {
            0 => json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}),
            _ => json!({"Code": "None"}),
        })
        .collect();
    let body = json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
        "CancellationReasons": reasons,
    });
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/x-amz-json-1.0")],
        body.to_string(),
    )
        .into_response()
}
