//! The API as the crowd and the operator reach it: one HTTP call, its
//! status, problem `code`, body and how long it took.

use std::time::{Duration, Instant};

use reqwest::{Client, Method};
use serde_json::Value;

pub type Failure = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone)]
pub struct Api {
    http: Client,
    base: String,
}

/// One answer of the API.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// The problem's `code` (`SOLD_OUT`, …); empty on success.
    pub code: String,
    pub body: Value,
    pub took: Duration,
}

impl Reply {
    /// `201`, `409 SOLD_OUT`, `503 UNAVAILABLE`, or `error` (no answer).
    pub fn outcome(&self) -> String {
        match (self.status, self.code.as_str()) {
            (0, _) => "error".into(),
            (status, "") => status.to_string(),
            (status, code) => format!("{status} {code}"),
        }
    }

    pub fn str(&self, field: &str) -> Result<String, Failure> {
        self.body[field]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no `{field}` in {}", self.body).into())
    }
}

impl Api {
    pub fn new(base: &str, connections: usize) -> Result<Self, Failure> {
        let http = Client::builder()
            .pool_max_idle_per_host(connections)
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Api {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// Sends one request; a transport failure is an answer too (status 0),
    /// counted like any other outcome.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Reply {
        self.call_with(method, path, token, body, &[]).await
    }

    /// [`Api::call`] with extra headers (a grab's `Sale-Ticket`).
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let started = Instant::now();
        let (status, body) = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap_or(Value::Null))
            }
            Err(error) => (0, Value::String(error.to_string())),
        };
        Reply {
            status,
            code: body["code"].as_str().unwrap_or_default().to_owned(),
            body,
            took: started.elapsed(),
        }
    }

    /// A call that must answer `expected` (the set-up and the audit's reads).
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        expected: u16,
    ) -> Result<Reply, Failure> {
        let reply = self.call(method.clone(), path, token, body).await;
        if reply.status == expected {
            Ok(reply)
        } else {
            Err(format!(
                "{method} {path}: expected {expected}, got {} {}",
                reply.status, reply.body
            )
            .into())
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Result<Value, Failure> {
        Ok(self.expect(Method::GET, path, Some(token), None, 200).await?.body)
    }
}
