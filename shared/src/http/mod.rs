//! The HTTP edge every function shares: strict extraction (`extract`),
//! identities from verified tokens (`identity`), problem+json errors
//! (`problem`, the one table from an error to its status and code), and a
//! function's list of routes (`routes`).

pub mod extract;
pub mod identity;
pub mod problem;
pub mod routes;

pub use extract::{ApiJson, ApiQuery, OptionalJson, PageQuery, PathId, PathIds};
pub use identity::{Caller, ClientAddress, LateShopper, Operator, SaleTicket, Shopper, bearer_token};
pub use routes::{Routes, cacheable, created, finish, live};
