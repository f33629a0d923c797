use lambda_runtime::{run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::setup_tracing();
    let edge = edge::from_env().await?;
    run(service_fn(|event| edge::handler(&edge, event))).await
}
