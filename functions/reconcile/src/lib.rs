//! The reconciliation job, run by an EventBridge Scheduler schedule (a
//! timer in the local server): repairs the gate toward the ledger, so that
//! grabs and claims Redis forgot in a failover are held again, and a SKU
//! or campaign Redis lost entirely is loaded again.

use chrono::Utc;
use lambda_runtime::LambdaEvent;
use shared::{
    App, Error,
    domain::reconcile::{self, ReconcileReport},
    job::JobFailure,
};

pub async fn run_once(app: &App) -> Result<ReconcileReport, Error> {
    let report = reconcile::reconcile(app.ports(), Utc::now()).await?;
    let repaired = report.skus_rebuilt + report.orders_restored + report.campaigns_rebuilt + report.failed;
    if repaired > 0 {
        tracing::warn!(?report, "reconciliation repaired the gate");
    }
    Ok(report)
}

/// The scheduler's payload carries nothing we need; a failed run says
/// whether it is worth retrying.
pub async fn handler(app: &App, _event: LambdaEvent<serde_json::Value>) -> Result<ReconcileReport, JobFailure> {
    shared::job::finished("reconcile", run_once(app).await)
}
