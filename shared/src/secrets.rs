//! Secret settings (the token signing key, the cache password, the first
//! operator's password). In the cloud a function's environment holds only
//! the ARN of a Secrets Manager secret (`<NAME>_ARN`), read once at cold
//! start and kept for the instance's life: the values are never in a
//! function's configuration, where anyone allowed
//! `lambda:GetFunctionConfiguration` could read them. A local run may give
//! the value itself (`<NAME>`).

use std::time::Duration;

use aws_config::{BehaviorVersion, retry::RetryConfig, timeout::TimeoutConfig};
use aws_sdk_secretsmanager::{Client, error::DisplayErrorContext};

/// A value that must not show up in logs.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading the secret {arn}: {reason}")]
pub struct SecretError {
    arn: String,
    reason: String,
}

/// Reads secret values from Secrets Manager.
#[derive(Debug, Clone)]
pub struct SecretsManager {
    client: Client,
}

impl SecretsManager {
    pub fn new(client: Client) -> Self {
        SecretsManager { client }
    }

    /// A client from the function's own region and role, with short
    /// timeouts: a cold start that cannot read its secrets fails fast.
    pub async fn from_env() -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_timeout(Duration::from_secs(5))
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .load()
            .await;
        SecretsManager::new(Client::new(&config))
    }

    /// The current value of the secret `arn`.
    pub async fn value(&self, arn: &str) -> Result<Secret, SecretError> {
        let failed = |reason: String| SecretError {
            arn: arn.to_owned(),
            reason,
        };
        let output = self
            .client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|error| failed(DisplayErrorContext(&error).to_string()))?;
        output
            .secret_string
            .map(Secret)
            .ok_or_else(|| failed("it holds no string".into()))
    }
}
