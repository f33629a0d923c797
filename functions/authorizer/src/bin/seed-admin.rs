//! `seed-admin`: creates the first operator, `ADMIN_LOGIN` with the password
//! in the secret `ADMIN_PASSWORD_ARN` (or `ADMIN_PASSWORD` locally), unless
//! an operator of that name exists. Invoked once after the first deploy (see
//! docs/deploy.md); invoking it again changes nothing, and it never resets the
//! password of an existing operator.
//!
//! Pointed at DynamoDB Local (`DYNAMODB_ENDPOINT` set, as by `sam local`) it
//! first creates the missing tables, which CloudFormation does in the cloud.

use lambda_runtime::{LambdaEvent, run, service_fn};
use serde::Serialize;
use shared::{
    app::dynamodb_client,
    config::{ADMIN_PASSWORD, required},
    domain::accounts::ensure_admin,
    ledger::{Dynamo, tables},
};

#[derive(Serialize)]
struct Seeded {
    login_name: String,
    created: bool,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::setup_tracing();
    let login_name = required("ADMIN_LOGIN")?;
    let password = ADMIN_PASSWORD.from_env().await?;
    let endpoint = required("DYNAMODB_ENDPOINT").ok();
    let table_prefix = shared::config::table_prefix();
    let store = Dynamo::new(dynamodb_client(endpoint.as_deref()).await, &table_prefix);
    let local = endpoint.is_some();
    let (store, login_name, password, table_prefix) = (&store, &login_name, &password, &table_prefix);
    run(service_fn(move |_: LambdaEvent<serde_json::Value>| async move {
        if local {
            tables::create_all(store.client(), table_prefix).await?;
        }
        let created = ensure_admin(store, login_name, &password.0).await?;
        tracing::info!(login_name, created, "first operator seeded");
        Ok::<_, lambda_runtime::Error>(Seeded {
            login_name: login_name.clone(),
            created,
        })
    }))
    .await
}
