//! The warm-up job, run every minute by an EventBridge Scheduler schedule:
//! asks each crowd function's `live` alias for the provisioned concurrency
//! the sales and rains about to open (or just opened) need together, and
//! gives it back once their rush is over (`shared::domain::warm`). It
//! touches no cache, so it runs outside the VPC.

use chrono::Utc;
use lambda_runtime::LambdaEvent;
use shared::{
    BoxError,
    app::{dynamodb_client, lambda_client},
    config,
    domain::warm::{Warm, WarmSettings, warm_up},
    job::JobFailure,
    ledger::Dynamo,
    provisioned::ProvisionedConcurrency,
};

pub struct Job {
    pub ledger: Dynamo,
    pub capacity: ProvisionedConcurrency,
    pub settings: WarmSettings,
}

/// The ledger, the functions to warm (`GRAB_FUNCTION`, `CLAIM_FUNCTION`)
/// and the `WARM_*` settings.
pub async fn from_env() -> Result<Job, BoxError> {
    shared::metrics::emit_to_cloudwatch()?;
    Ok(Job {
        ledger: Dynamo::new(dynamodb_client(None).await, &config::table_prefix()),
        capacity: ProvisionedConcurrency::new(
            lambda_client(None).await,
            config::required("GRAB_FUNCTION")?,
            config::required("CLAIM_FUNCTION")?,
        ),
        settings: config::warm_settings()?,
    })
}

/// The scheduler's payload carries nothing we need: each run asks for what
/// is due at that moment.
pub async fn handler(job: &Job, _event: LambdaEvent<serde_json::Value>) -> Result<Warm, JobFailure> {
    let warmed = warm_up(&job.ledger, &job.capacity, &job.settings, Utc::now()).await;
    shared::job::finished("warm-up", warmed)
}
