//! The payout job, run by an EventBridge Scheduler schedule (a timer in the
//! local server): credits claimed red packets to balances, exactly once.

use chrono::Utc;
use lambda_runtime::LambdaEvent;
use shared::{
    App, Error,
    domain::red_packet::{self, PayoutLimits, PayoutReport},
    job::JobFailure,
};

/// One run, and the payout lag it leaves for the dashboard.
pub async fn run_once(app: &App) -> Result<PayoutReport, Error> {
    let report = red_packet::payout(app.ports(), Utc::now(), PayoutLimits::default()).await?;
    if report != PayoutReport::default() {
        tracing::info!(?report, "payout run");
    }
    let backlog = red_packet::backlog(&app.ledger, Utc::now()).await?;
    shared::metrics::payout(report.credited, &backlog);
    Ok(report)
}

/// The scheduler's payload carries nothing we need: every run pays out
/// whatever has been claimed by then. A failed run says whether it is worth
/// retrying (a backend was down) or not.
pub async fn handler(app: &App, _event: LambdaEvent<serde_json::Value>) -> Result<PayoutReport, JobFailure> {
    shared::job::finished("payout", run_once(app).await)
}
