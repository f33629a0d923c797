use lambda_runtime::{run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::setup_tracing();
    let app = shared::App::from_env().await?;
    let every = shared::config::hot_sweep_period()?;
    run(service_fn(|event| hot_sweep::handler(&app, every, event))).await
}
