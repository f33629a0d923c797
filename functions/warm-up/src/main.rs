use lambda_runtime::{run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::setup_tracing();
    let job = warm_up::from_env().await?;
    run(service_fn(|event| warm_up::handler(&job, event))).await
}
