//! The common crate of the flash-sale and red-packet backend. Its modules
//! form layers, and every dependency points down (a test, `layers`, holds
//! them to it):
//!
//! 1. **Records, errors, ports** — `model` (the records, seed-schema field
//!    names), `error` (the domain's one error), `ts` (instants),
//!    `validate` (every input rule), `ids` (fresh ids and randomness,
//!    replayable in a simulation), `ports` (the traits the domain needs,
//!    and the one `PortError` they fail with).
//! 2. **Domain** — `domain::{flash_sale, payments, red_packet, reconcile, hot,
//!    admission, catalog, storefront, accounts, auth, …}`: the flows, over the
//!    ports only.
//! 3. **Adapters and edges**, side by side — `gate` (Redis and the `lua`
//!    scripts), `ledger` (DynamoDB), `payments` (sandbox provider),
//!    `secrets` (Secrets Manager, read at cold start), `memory`
//!    (every port in memory with scripted faults, for tests: feature
//!    `memory`); `http` (extraction, identities, problem+json), `job`
//!    (scheduled runs' failures), `metrics` (what operators watch:
//!    EMF in a Lambda, Prometheus text locally), `pages` (the rendered
//!    item pages, in a folder an edge serves), `ticket_list` (the
//!    edge's list of sales that ask tickets, in CloudFront) and
//!    `provisioned` (the crowd functions' warm instances).
//! 4. **Wiring** — `config` and `app`: the adapters built once per cold
//!    start, which the functions (`functions/`) and the local server serve.

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod gate;
pub mod http;
pub mod ids;
pub mod job;
pub mod ledger;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
pub mod metrics;
pub mod model;
pub mod pages;
pub mod payments;
pub mod ports;
pub mod provisioned;
pub mod secrets;
pub mod ticket_list;
pub mod ts;
pub mod validate;

pub use app::{App, BoxError};
pub use error::Error;

/// Logs for CloudWatch: no colours, no timestamps (Lambda adds them), level
/// from `RUST_LOG` (default `info`).
pub fn setup_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .init();
}
