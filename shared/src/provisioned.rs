//! [`WarmCapacity`] as Lambda's provisioned concurrency on each crowd
//! function's `live` alias (the one API Gateway invokes). Asking 0 removes
//! the configuration, so nothing is paid for between sales.

use aws_sdk_lambda::{Client, error::DisplayErrorContext, types::ProvisionedConcurrencyStatusEnum};

use crate::ports::{CrowdFunction, PortError, PortResult, WarmCapacity};

/// The alias SAM publishes (`AutoPublishAlias`) and the gateway invokes.
pub const ALIAS: &str = "live";

#[derive(Debug, Clone)]
pub struct ProvisionedConcurrency {
    client: Client,
    /// The grab and claim functions' names.
    grab: String,
    claim: String,
}

impl ProvisionedConcurrency {
    pub fn new(client: Client, grab: impl Into<String>, claim: impl Into<String>) -> Self {
        ProvisionedConcurrency {
            client,
            grab: grab.into(),
            claim: claim.into(),
        }
    }

    fn name(&self, function: CrowdFunction) -> &str {
        match function {
            CrowdFunction::Grab => &self.grab,
            CrowdFunction::Claim => &self.claim,
        }
    }
}

fn unavailable(error: impl std::error::Error) -> PortError {
    PortError::Unavailable(format!("provisioned concurrency: {}", DisplayErrorContext(error)))
}

impl WarmCapacity for ProvisionedConcurrency {
    async fn warm(&self, function: CrowdFunction) -> PortResult<u32> {
        let asked = self
            .client
            .get_provisioned_concurrency_config()
            .function_name(self.name(function))
            .qualifier(ALIAS)
            .send()
            .await;
        match asked {
            // An allocation Lambda gave up on is asked for again.
            Ok(config) if config.status == Some(ProvisionedConcurrencyStatusEnum::Failed) => Ok(0),
            Ok(config) => Ok(config
                .requested_provisioned_concurrent_executions
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0)),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|error| error.is_provisioned_concurrency_config_not_found_exception()) =>
            {
                Ok(0)
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn set_warm(&self, function: CrowdFunction, instances: u32) -> PortResult<()> {
        let name = self.name(function);
        if instances == 0 {
            let removed = self
                .client
                .delete_provisioned_concurrency_config()
                .function_name(name)
                .qualifier(ALIAS)
                .send()
                .await;
            return match removed {
                Err(error)
                    if !error
                        .as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
                {
                    Err(unavailable(error))
                }
                _ => Ok(()),
            };
        }
        let instances = i32::try_from(instances)
            .map_err(|_| PortError::Unavailable(format!("{instances} instances are more than Lambda takes")))?;
        self.client
            .put_provisioned_concurrency_config()
            .function_name(name)
            .qualifier(ALIAS)
            .provisioned_concurrent_executions(instances)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
