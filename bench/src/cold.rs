//! `--cold-starts`: each crowd function's bootstrap started cold under the
//! Lambda runtime emulator (`cargo lambda watch --only-lambda-apis`), timed
//! from process start to its first answered invocation, beside the second
//! invocation of the same instance (warm), and the binary's size.
//!
//! Each start is as in the cloud but for distances: the function reads
//! its secrets from Secrets Manager (moto on loopback: the signing key,
//! and the cache's password, which the cache asks for), then serves a real
//! request: a grab that wins a unit (the gate's script and the order's
//! write to DynamoDB Local), a claim that wins a packet, an operator's
//! token checked by the authorizer. Every start is a fresh process with
//! its own shopper.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use chrono::Utc;
use local_server::services::{DynamoLocal, Moto, Redis, free_port};
use serde_json::{Value, json};
use shared::{
    App,
    config::Config,
    domain::{auth::Role, catalog, flash_sale, red_packet},
};

const PASSWORD: &str = "cold-start-cache-password";
const SECRET: &str = "cold-start-secret-cold-start-secret-0123";

/// The functions timed: the crowd's (grab, claim) and the operators'
/// authorizer.
const FUNCTIONS: [&str; 3] = ["grab", "red-packet-claim", "authorizer"];

/// An HTTP API (payload 2.0) request, as the gateway invokes a function.
fn http_event(method: &str, path: &str, token: &str) -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"authorization": format!("Bearer {token}"), "content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench.example",
            "domainPrefix": "bench", "requestId": shared::ids::fresh(), "routeKey": "$default",
            "stage": "$default", "time": "05/Dec/2026:00:00:00 +0000", "timeEpoch": 0,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.1", "userAgent": "bench"}
        },
        "isBase64Encoded": false
    })
}

/// The authorizer's request (payload 2.0) for an operator's route.
fn authorizer_event(token: &str) -> Value {
    let authorization = format!("Bearer {token}");
    json!({
        "version": "2.0", "type": "REQUEST",
        "routeArn": "arn:aws:execute-api:us-east-1:123456789012:bench/$default/GET/admin/skus",
        "identitySource": [authorization], "routeKey": "GET /admin/skus", "rawPath": "/admin/skus",
        "rawQueryString": "", "headers": {"authorization": authorization},
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench.example",
            "domainPrefix": "bench", "requestId": "r", "routeKey": "GET /admin/skus", "stage": "$default",
            "time": "05/Dec/2026:00:00:00 +0000", "timeEpoch": 0,
            "http": {"method": "GET", "path": "/admin/skus", "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.1", "userAgent": "bench"}
        }
    })
}

/// The emulator, kept running for every start.
struct Emulator {
    port: u16,
    process: Child,
}

impl Emulator {
    fn start() -> Result<Self, shared::BoxError> {
        let port = free_port()?;
        let process = Command::new("cargo")
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("cargo lambda (pip install cargo-lambda): {error}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("cargo lambda watch did not listen within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Emulator { port, process })
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// What one function's starts measured.
struct Starts {
    function: &'static str,
    bytes: u64,
    cold: Vec<Duration>,
    warm: Vec<Duration>,
}

fn median(durations: &mut [Duration]) -> Duration {
    durations.sort();
    durations[durations.len() / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The release binaries, built beside this one (the same profile as
/// `cargo lambda build`, for this machine's architecture).
fn built_binaries() -> Result<PathBuf, shared::BoxError> {
    let mut build = Command::new("cargo");
    build.args(["build", "--release", "--quiet"]);
    for function in FUNCTIONS {
        build.args(["--bin", function]);
    }
    if !build.status()?.success() {
        return Err("building the functions failed".into());
    }
    Ok(std::env::current_exe()?.parent().ok_or("no folder")?.to_owned())
}

pub async fn figures(starts: usize) -> Result<(), shared::BoxError> {
    let folder = built_binaries()?;
    let redis = Redis::start()?;
    redis.cli(&["CONFIG", "SET", "requirepass", PASSWORD])?;
    let redis_url = format!("redis://:{PASSWORD}@127.0.0.1:{}", redis.port());
    let dynamo = DynamoLocal::start()?;
    let moto = Moto::start()?;
    let secrets = shared::app::secrets_manager_client(Some(&moto.endpoint())).await;
    let mut arns = Vec::new();
    for (name, value) in [("jwt", SECRET), ("cache", PASSWORD)] {
        let created = secrets.create_secret().name(name).secret_string(value).send().await?;
        arns.push(created.arn.ok_or("an ARN")?);
    }
    let app = App::connect(&Config::local(redis_url.clone(), dynamo.endpoint(), SECRET.into())).await?;
    local_server::create_tables(&app, "").await?;
    let now = Utc::now();
    let window = (now - chrono::Duration::minutes(1), now + chrono::Duration::hours(1));
    let fields = shared::model::SkuFields::new("Cold phone", (10_000, 100), 1_000, window);
    let sku = catalog::create_sku(&app.ledger, fields, now).await?;
    flash_sale::publish(app.ports(), &sku.id, now).await?;
    let rain = red_packet::NewCampaign {
        name: "Cold rain".into(),
        total_amount: 100_000,
        count: 1_000,
        begin: window.0,
        end: window.1,
        min_amount: 1,
        guard: shared::model::Guard::default(),
    };
    let rain = red_packet::create(app.ports(), rain, now).await?;

    let emulator = Emulator::start()?;
    let env = [
        (
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{}/.rt", emulator.port),
        ),
        ("AWS_LAMBDA_FUNCTION_NAME", "_".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "1".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "local".into()),
        ("AWS_SECRET_ACCESS_KEY", "local".into()),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.endpoint()),
        ("REDIS_URL", format!("redis://127.0.0.1:{}", redis.port())),
        ("REDIS_PASSWORD_ARN", arns[1].clone()),
        ("JWT_SECRET_ARN", arns[0].clone()),
        ("DYNAMODB_ENDPOINT", dynamo.endpoint()),
        ("RUST_LOG", "warn".into()),
    ];
    let invoke = format!("http://127.0.0.1:{}/2015-03-31/functions/_/invocations", emulator.port);
    let client = reqwest::Client::new();
    let mut measured = Vec::new();
    for function in FUNCTIONS {
        let binary = folder.join(function);
        let mut results = Starts {
            function,
            bytes: std::fs::metadata(&binary)?.len(),
            cold: Vec::new(),
            warm: Vec::new(),
        };
        for run in 0..starts {
            let event = |turn: usize| {
                let shopper = format!("{function}-{run}-{turn}");
                match function {
                    "grab" => {
                        let token = app.tokens.issue(&shopper, Role::User, Utc::now()).token;
                        http_event("POST", &format!("/seckill/items/{}/grab", sku.id), &token)
                    }
                    "red-packet-claim" => {
                        let token = app.tokens.issue(&shopper, Role::User, Utc::now()).token;
                        http_event("POST", &format!("/red-packets/{}/claim", rain.id), &token)
                    }
                    _ => authorizer_event(&app.tokens.issue("operator", Role::Admin, Utc::now()).token),
                }
            };
            let (first, second) = (event(0), event(1));
            let started = Instant::now();
            let process = Command::new(&binary)
                .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
                .stdout(Stdio::null())
                .spawn()?;
            let _running = Running(process);
            let answer = client.post(&invoke).json(&first).send().await?.text().await?;
            results.cold.push(started.elapsed());
            check(function, &answer)?;
            let warm = Instant::now();
            let answer = client.post(&invoke).json(&second).send().await?.text().await?;
            results.warm.push(warm.elapsed());
            check(function, &answer)?;
        }
        measured.push(results);
    }
    print(&mut measured, starts);
    Ok(())
}

/// Ends the instance once its two invocations are answered.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A start only counts if its answer is the request's real one.
fn check(function: &str, answer: &str) -> Result<(), shared::BoxError> {
    let answer: Value = serde_json::from_str(answer).map_err(|_| format!("{function} answered {answer}"))?;
    let served = match function {
        "authorizer" => answer["isAuthorized"] == json!(true),
        // A grab's order is created (201), a claim's packet given (200).
        _ => answer["statusCode"] == json!(201) || answer["statusCode"] == json!(200),
    };
    if served {
        Ok(())
    } else {
        Err(format!("{function} answered {answer}").into())
    }
}

fn print(measured: &mut [Starts], starts: usize) {
    println!("\ncold starts under `cargo lambda watch`, median of {starts} starts each:");
    println!(
        "{:<18} {:>10} {:>16} {:>12} {:>10}",
        "function", "binary", "first answer", "warm", "cold/warm"
    );
    for results in measured {
        let cold = median(&mut results.cold);
        let warm = median(&mut results.warm);
        println!(
            "{:<18} {:>7.1} MB {:>13.1} ms {:>9.1} ms {:>9.0}×",
            results.function,
            results.bytes as f64 / 1_048_576.0,
            ms(cold),
            ms(warm),
            cold.as_secs_f64() / warm.as_secs_f64()
        );
    }
}
