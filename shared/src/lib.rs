//! The common crate of the flash-sale and red-packet backend.
//!
//! * `model` — the records (seed-schema field names).
//! * `flash_sale`, `red_packet`, `accounts`, `catalog` — the domain flows
//!   and the ports they need (`StockGate`, `OrderStore`, `SkuStore`,
//!   `PacketPool`, `CampaignStore`, `AccountStore`).
//! * `gate` (Redis + the Lua scripts in `lua/`) and `store` (DynamoDB) —
//!   the adapters behind those ports; `payments` — the payment port.
//! * `http` — extractors and problem+json shared by every function.
//! * `app`, `config` — wiring, built once per cold start.

pub mod accounts;
pub mod app;
pub mod auth;
pub mod backoffice;
pub mod catalog;
pub mod config;
pub mod error;
pub mod flash_sale;
pub mod gate;
pub mod http;
pub mod model;
pub mod payments;
pub mod red_packet;
pub mod store;
pub mod ts;

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
