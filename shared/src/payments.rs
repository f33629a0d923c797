//! The payment provider port and a sandbox implementation of it.

use std::future::Future;

use crate::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub transaction_id: String,
}

/// A card/wallet processor. Charges are idempotent by key, as with real
/// providers: charging the same key twice yields the same transaction, so
/// a retried or doubled "pay" never takes money twice.
pub trait PaymentProvider: Sync {
    fn charge(&self, idempotency_key: &str, amount_cents: i64) -> impl Future<Output = Result<Charge, Error>> + Send;
    fn refund(&self, transaction_id: &str, amount_cents: i64) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Approves every charge and refund without moving money, for local runs,
/// tests and staging. Transaction ids are derived from the idempotency key
/// (as a real provider's would be looked up by it) and fit `tb_order`'s
/// 30-character `transaction_id` column.
#[derive(Debug, Clone, Copy, Default)]
pub struct SandboxPayments;

impl PaymentProvider for SandboxPayments {
    async fn charge(&self, idempotency_key: &str, amount_cents: i64) -> Result<Charge, Error> {
        if amount_cents <= 0 {
            return Err(Error::PaymentDeclined("amount must be positive".into()));
        }
        Ok(Charge {
            transaction_id: format!("SBX{idempotency_key}"),
        })
    }

    async fn refund(&self, _transaction_id: &str, _amount_cents: i64) -> Result<(), Error> {
        Ok(())
    }
}
