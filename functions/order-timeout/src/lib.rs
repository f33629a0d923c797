//! The order-timeout job, run by an EventBridge Scheduler schedule (a
//! timer in the local server): cancels unpaid orders past their deadline,
//! gives their units back, and settles holds whose order was never written.

use chrono::Utc;
use lambda_runtime::LambdaEvent;
use shared::{
    App, Error,
    domain::flash_sale::{self, SweepReport},
    job::JobFailure,
};

/// Holds settled per SKU per run; the rest wait for the next tick.
pub const BATCH: usize = 500;

pub async fn run_once(app: &App) -> Result<SweepReport, Error> {
    let report = flash_sale::sweep(app.ports(), Utc::now(), BATCH).await?;
    shared::metrics::timeouts_released(report.timed_out);
    if report != SweepReport::default() {
        tracing::info!(?report, "order-timeout sweep");
    }
    Ok(report)
}

/// The scheduler's payload carries nothing we need: every run sweeps
/// whatever is due at that moment. A failed run says whether it is worth
/// retrying (a backend was down) or not.
pub async fn handler(app: &App, _event: LambdaEvent<serde_json::Value>) -> Result<SweepReport, JobFailure> {
    shared::job::finished("order-timeout", run_once(app).await)
}
