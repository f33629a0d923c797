use lambda_runtime::{run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::setup_tracing();
    let (skus, pages) = pages::from_env().await?;
    run(service_fn(|event| pages::handler(&skus, &pages, event))).await
}
