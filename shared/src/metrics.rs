//! What operators watch a sale by: counters, gauges and timings recorded
//! through the `metrics` facade. In a Lambda they go out as CloudWatch
//! Embedded Metric Format lines after each invocation
//! ([`emit_to_cloudwatch`], `metrics_cloudwatch_embedded`); the local server
//! renders the same figures at `GET /metrics` in Prometheus text
//! ([`record_for_prometheus`], `metrics-exporter-prometheus`). Recording
//! without either installed is a no-op.

use std::{
    sync::OnceLock,
    time::{Duration, Instant},
};

use axum::{extract::Request, middleware::Next, response::Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::{domain::red_packet::PayoutBacklog, error::Error};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "FlashSale";

static CLOUDWATCH: OnceLock<&'static metrics_cloudwatch_embedded::Collector> = OnceLock::new();
static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// In a Lambda: what is recorded goes out as Embedded Metric Format lines
/// on stdout, which CloudWatch Logs turns into metrics of [`NAMESPACE`] at
/// every [`flush`]. Their labels (`code`, `route`, `job`) are their only
/// dimensions, so the dashboard sums every function's instances.
pub fn emit_to_cloudwatch() -> Result<(), BoxError> {
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(NAMESPACE)
        .init()?;
    let _ = CLOUDWATCH.set(collector);
    Ok(())
}

/// Whether [`emit_to_cloudwatch`] ran in this process.
pub fn emitting_to_cloudwatch() -> bool {
    CLOUDWATCH.get().is_some()
}

/// Writes out what was recorded since the last flush (in a Lambda, after
/// each invocation; elsewhere nothing to do).
pub fn flush() {
    if let Err(error) = flush_to(std::io::stdout()) {
        tracing::warn!(%error, "metrics not written");
    }
}

fn flush_to(writer: impl std::io::Write) -> std::io::Result<()> {
    match CLOUDWATCH.get() {
        Some(collector) => collector.flush(writer),
        None => Ok(()),
    }
}

/// Middleware: flushes after every request, which in a Lambda is after
/// every invocation.
pub async fn flush_after(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    flush();
    response
}

/// In the local server: records into a Prometheus registry, installed
/// once per process; [`render`] gives its text.
pub fn record_for_prometheus() -> Result<(), BoxError> {
    if PROMETHEUS.get().is_none() {
        let handle = PrometheusBuilder::new().install_recorder()?;
        let _ = PROMETHEUS.set(handle);
    }
    Ok(())
}

/// Every figure in the Prometheus text format, or `None` if
/// [`record_for_prometheus`] did not run.
pub fn render() -> Option<String> {
    let handle = PROMETHEUS.get()?;
    handle.run_upkeep();
    Some(handle.render())
}

/// Times a grab or claim from its start.
pub struct Timer(Instant);

impl Timer {
    pub fn start() -> Self {
        Timer(Instant::now())
    }

    fn took(&self) -> Duration {
        self.0.elapsed()
    }
}

/// Grabs answered, by `code`: `CREATED` or the problem's code.
pub const GRABS: &str = "grabs";
/// Claims answered, by `code`: `CLAIMED` or the problem's code.
pub const CLAIMS: &str = "claims";
/// How long a grab or claim took in the function, by `route`, in ms.
pub const LATENCY: &str = "latency_ms";
/// Redis calls that failed (a node down, a timeout, a refused write).
pub const REDIS_ERRORS: &str = "redis_errors";
/// DynamoDB calls that failed other than by a lost condition.
pub const DYNAMODB_ERRORS: &str = "dynamodb_errors";
/// Unpaid orders the order-timeout job cancelled, their units put back.
pub const TIMEOUTS_RELEASED: &str = "timeouts_released";
/// Red packets the payout job credited.
pub const PAYOUT_CREDITED: &str = "payout_credited";
/// Claim records waiting for the payout job, over every live campaign.
pub const PAYOUT_BACKLOG: &str = "payout_backlog";
/// How long the oldest of them has waited, in seconds.
pub const PAYOUT_OLDEST_AGE: &str = "payout_oldest_claim_age_seconds";
/// Runs of a scheduled job, by `job` and `outcome` (`ok`, `failed`).
pub const JOB_RUNS: &str = "job_runs";

/// Records one grab's answer (`CREATED` or the problem's code, see
/// `http::problem::code_of`) and how long it took.
pub fn grab(code: &'static str, timer: Timer) {
    metrics::counter!(GRABS, "code" => code).increment(1);
    metrics::histogram!(LATENCY, "route" => "grab").record(timer.took().as_secs_f64() * 1000.0);
}

/// Records one claim's answer (`CLAIMED` or the problem's code) and how
/// long it took.
pub fn claim(code: &'static str, timer: Timer) {
    metrics::counter!(CLAIMS, "code" => code).increment(1);
    metrics::histogram!(LATENCY, "route" => "claim").record(timer.took().as_secs_f64() * 1000.0);
}

pub fn redis_error() {
    metrics::counter!(REDIS_ERRORS).increment(1);
}

pub fn dynamodb_error() {
    metrics::counter!(DYNAMODB_ERRORS).increment(1);
}

/// Records one run of a scheduled job.
pub fn job_run<T>(job: &'static str, run: &Result<T, Error>) {
    let outcome = if run.is_ok() { "ok" } else { "failed" };
    metrics::counter!(JOB_RUNS, "job" => job, "outcome" => outcome).increment(1);
}

pub fn timeouts_released(count: u32) {
    metrics::counter!(TIMEOUTS_RELEASED).increment(u64::from(count));
}

/// Records a payout run: what it credited, and what is still waiting.
pub fn payout(credited: u32, backlog: &PayoutBacklog) {
    metrics::counter!(PAYOUT_CREDITED).increment(u64::from(credited));
    metrics::gauge!(PAYOUT_BACKLOG).set(backlog.records as f64);
    metrics::gauge!(PAYOUT_OLDEST_AGE).set(backlog.oldest_age_seconds.unwrap_or(0) as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lambda_writes_what_it_recorded_as_embedded_metric_format() {
        emit_to_cloudwatch().unwrap();
        grab("CREATED", Timer::start());
        grab("SOLD_OUT", Timer::start());
        let mut written = Vec::new();
        flush_to(&mut written).unwrap();
        let documents: Vec<serde_json::Value> = String::from_utf8(written)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let sold_out = documents
            .iter()
            .find(|document| document["code"] == "SOLD_OUT")
            .expect("a document for the SOLD_OUT grabs");
        assert_eq!(sold_out[GRABS], 1);
        let directive = &sold_out["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"][0][0], "code");
        assert!(documents.iter().any(|document| document["code"] == "CREATED"));
    }
}
