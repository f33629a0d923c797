#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::setup_tracing();
    let app = shared::App::from_env().await?;
    lambda_http::run(shared::http::finish(payment_notify::routes().into_router(app))).await
}
