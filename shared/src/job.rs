//! The edge of the scheduled functions: a failed run tells Lambda (and so
//! the schedule's retry policy, the logs and any failure destination)
//! whether trying again can help, as lambda_runtime's `Diagnostic`.

use lambda_runtime::Diagnostic;

use crate::error::Error;

/// The `errorType` of a failed run that may succeed if run again: a backend
/// was down, or records kept changing under it.
pub const RETRYABLE: &str = "Retryable";
/// The `errorType` of a failed run that will fail the same way again.
pub const NOT_RETRYABLE: &str = "NotRetryable";

/// Ends a scheduled run: counts it, by outcome, writes out the run's
/// metrics, and turns a failure into a [`JobFailure`].
pub fn finished<T>(job: &'static str, run: Result<T, Error>) -> Result<T, JobFailure> {
    crate::metrics::job_run(job, &run);
    crate::metrics::flush();
    Ok(run?)
}

/// A scheduled run that failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JobFailure(#[from] pub Error);

impl From<JobFailure> for Diagnostic {
    fn from(failure: JobFailure) -> Diagnostic {
        let error_type = if failure.0.is_retryable() {
            RETRYABLE
        } else {
            NOT_RETRYABLE
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: failure.0.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_outage_is_worth_retrying_and_a_broken_record_is_not() {
        let outage = Diagnostic::from(JobFailure(Error::unavailable("Redis: connection refused")));
        assert_eq!(outage.error_type, RETRYABLE);
        let stuck = Diagnostic::from(JobFailure(Error::InvalidState("held past a deadline".into())));
        assert_eq!(stuck.error_type, NOT_RETRYABLE);
    }
}
