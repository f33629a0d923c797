//! The payment adapter: a sandbox provider behind
//! [`PaymentProvider`](crate::ports::PaymentProvider).

use crate::ports::{ChargeOutcome, PaymentProvider, PortResult};

/// Approves every charge and refund without moving money, for local runs,
/// tests and staging. Transaction ids are derived from the idempotency key
/// (as a real provider's would be looked up by it) and fit `tb_order`'s
/// 30-character `transaction_id` column.
#[derive(Debug, Clone, Copy, Default)]
pub struct SandboxPayments;

impl PaymentProvider for SandboxPayments {
    async fn charge(&self, idempotency_key: &str, amount_cents: i64) -> PortResult<ChargeOutcome> {
        if amount_cents <= 0 {
            return Ok(ChargeOutcome::Declined("amount must be positive".into()));
        }
        Ok(ChargeOutcome::Approved {
            transaction_id: format!("SBX{idempotency_key}"),
        })
    }

    async fn refund(&self, _transaction_id: &str, _amount_cents: i64) -> PortResult<()> {
        Ok(())
    }
}
