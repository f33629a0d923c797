use lambda_runtime::{run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::setup_tracing();
    let tokens = authorizer::tokens_from_env().await?;
    run(service_fn(|event| authorizer::handler(&tokens, event))).await
}
