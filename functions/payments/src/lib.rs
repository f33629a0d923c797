//! The payments job, run by an EventBridge Scheduler schedule (a timer in
//! the local server): settles every charge whose answer was lost (asking
//! the provider: `PAID`, or a refund if the order closed meanwhile) and
//! retries every refund still owed.

use chrono::Utc;
use lambda_runtime::LambdaEvent;
use shared::{
    App, Error,
    domain::payments::{self, PaymentsReport},
    job::JobFailure,
};

/// Orders settled per run; the rest wait for the next tick.
pub const BATCH: usize = 500;

pub async fn run_once(app: &App) -> Result<PaymentsReport, Error> {
    let report = payments::settle_payments(app.ports(), Utc::now(), BATCH).await?;
    if report != PaymentsReport::default() {
        tracing::info!(?report, "payments settled");
    }
    Ok(report)
}

pub async fn handler(app: &App, _event: LambdaEvent<serde_json::Value>) -> Result<PaymentsReport, JobFailure> {
    shared::job::finished("payments", run_once(app).await)
}
