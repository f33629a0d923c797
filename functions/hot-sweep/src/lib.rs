//! The hot-item discovery job: marks the SKUs whose request rate made them
//! hot, cools those whose traffic fell away, and splits every hot SKU's
//! stock over the cache's masters. Locally a timer runs it every
//! `HOT_SWEEP_SECONDS`; in the cloud an EventBridge Scheduler schedule
//! starts it once a minute (its finest rate) and each run sweeps every
//! `HOT_SWEEP_SECONDS` until the minute is up, so a SKU is found hot
//! seconds after its crowd arrives, not a minute.

use std::time::Duration;

use chrono::Utc;
use lambda_runtime::LambdaEvent;
use shared::{
    App, Error,
    domain::hot::{self, SweepReport},
    job::JobFailure,
};

pub async fn run_once(app: &App) -> Result<SweepReport, Error> {
    hot::sweep(app.ports(), app.hot, Utc::now()).await
}

/// How long one scheduled run sweeps: the schedule's minute.
const RUN_FOR: Duration = Duration::from_secs(60);

/// Sweeps every `every` for a minute; what each sweep changed is logged
/// (see `domain::hot`). The scheduler's payload carries nothing we need; a
/// failed sweep ends the run and says whether it is worth retrying.
pub async fn handler(
    app: &App,
    every: Duration,
    _event: LambdaEvent<serde_json::Value>,
) -> Result<SweepReport, JobFailure> {
    let mut all = SweepReport::default();
    let sweeps = (RUN_FOR.as_secs() / every.as_secs().max(1)).max(1);
    for sweep in 0..sweeps {
        if sweep > 0 {
            tokio::time::sleep(every).await;
        }
        let report = shared::job::finished("hot-sweep", run_once(app).await)?;
        all.became_hot.extend(report.became_hot);
        all.cooled.extend(report.cooled);
    }
    Ok(all)
}
