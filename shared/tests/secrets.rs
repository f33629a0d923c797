//! Secret settings read through the Secrets Manager SDK at cold start,
//! against a stand-in for the service on loopback that answers
//! `GetSecretValue` as AWS does (the JSON 1.1 protocol) and counts calls.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{Json, Router, body::Bytes, extract::State, http::StatusCode, response::IntoResponse, routing::post};
use serde_json::{Value, json};
use shared::{
    config::{Config, ConfigError},
    secrets::SecretsManager,
};

const SIGNING_KEY_ARN: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:jwt-AbCdEf";
const CACHE_PASSWORD_ARN: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:cache-GhIjKl";
const SIGNING_KEY: &str = "a-signing-key-of-at-least-thirty-two-bytes";

#[derive(Default)]
struct Service {
    secrets: HashMap<&'static str, &'static str>,
    reads: Mutex<Vec<String>>,
}

/// The SDK posts `application/x-amz-json-1.1`, so the body is read as is.
async fn get_secret_value(State(service): State<Arc<Service>>, body: Bytes) -> impl IntoResponse {
    let request: Value = serde_json::from_slice(&body).unwrap_or_default();
    let id = request["SecretId"].as_str().unwrap_or_default().to_owned();
    service.reads.lock().unwrap().push(id.clone());
    match service.secrets.get(id.as_str()) {
        Some(value) => (
            StatusCode::OK,
            Json(json!({"ARN": id, "Name": "secret", "SecretString": value, "VersionId": "v1"})),
        ),
        None => (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"__type": "ResourceNotFoundException", "Message": "Secrets Manager can't find the specified secret."}),
            ),
        ),
    }
}

/// The stand-in service, and a client pointed at it.
async fn secrets_manager(secrets: &[(&'static str, &'static str)]) -> (Arc<Service>, SecretsManager) {
    let service = Arc::new(Service {
        secrets: secrets.iter().copied().collect(),
        reads: Mutex::default(),
    });
    let router = Router::new()
        .route("/", post(get_secret_value))
        .with_state(service.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (
        service,
        SecretsManager::new(shared::app::secrets_manager_client(Some(&endpoint)).await),
    )
}

/// A function's environment as the template sets it: ARNs, no values.
fn cloud_env(name: &str) -> Option<String> {
    let value = match name {
        "REDIS_URL" => "rediss://flashsale@cache.example.internal:6379",
        "REDIS_PASSWORD_ARN" => CACHE_PASSWORD_ARN,
        "JWT_SECRET_ARN" => SIGNING_KEY_ARN,
        "TABLE_PREFIX" => "stack-",
        _ => return None,
    };
    Some(value.to_owned())
}

#[tokio::test]
async fn a_cold_start_reads_each_secret_once_by_its_arn() {
    let (service, secrets) =
        secrets_manager(&[(SIGNING_KEY_ARN, SIGNING_KEY), (CACHE_PASSWORD_ARN, "CachePassword123")]).await;
    let config = Config::from_vars(&cloud_env, Some(&secrets)).await.unwrap();
    assert_eq!(config.jwt_secret.0, SIGNING_KEY);
    assert_eq!(
        config.redis_url,
        "rediss://flashsale:CachePassword123@cache.example.internal:6379"
    );
    let mut reads = service.reads.lock().unwrap().clone();
    reads.sort();
    assert_eq!(reads, [CACHE_PASSWORD_ARN, SIGNING_KEY_ARN]);
}

#[tokio::test]
async fn a_secret_that_cannot_be_read_stops_the_cold_start_naming_it() {
    let (_, secrets) = secrets_manager(&[(CACHE_PASSWORD_ARN, "CachePassword123")]).await;
    let refused = Config::from_vars(&cloud_env, Some(&secrets)).await.unwrap_err();
    assert!(
        matches!(&refused, ConfigError::Invalid { name: "JWT_SECRET", reason } if reason.contains("ResourceNotFoundException")),
        "{refused}"
    );
}

#[tokio::test]
async fn a_signing_key_too_short_is_refused_wherever_it_comes_from() {
    let (_, secrets) = secrets_manager(&[(SIGNING_KEY_ARN, "short"), (CACHE_PASSWORD_ARN, "pw")]).await;
    let refused = Config::from_vars(&cloud_env, Some(&secrets)).await.unwrap_err();
    assert!(
        matches!(&refused, ConfigError::Invalid { name: "JWT_SECRET", reason } if reason.contains("32 bytes")),
        "{refused}"
    );
}

#[tokio::test]
async fn a_local_run_may_give_the_values_themselves() {
    let local = |name: &str| match name {
        "REDIS_URL" => Some("redis://127.0.0.1:6379".to_owned()),
        "JWT_SECRET" => Some(SIGNING_KEY.to_owned()),
        _ => None,
    };
    let config = Config::from_vars(&local, None).await.unwrap();
    assert_eq!(
        (config.jwt_secret.0.as_str(), config.redis_url.as_str()),
        (SIGNING_KEY, "redis://127.0.0.1:6379")
    );
}
