//! [`PaymentProvider`] in memory: the sandbox's answers, plus a record of
//! every charge and refund, so a test can count the money.

use std::sync::Mutex;

use super::{Faults, Op};
use crate::{
    payments::SandboxPayments,
    ports::{ChargeOutcome, PaymentProvider, PortResult},
};

/// (transaction id, amount) of each approved charge and each refund.
#[derive(Debug, Default)]
struct Moves {
    charges: Vec<(String, i64)>,
    refunds: Vec<(String, i64)>,
}

#[derive(Debug, Default)]
pub struct MemoryPayments {
    moves: Mutex<Moves>,
    pub faults: Faults,
}

impl MemoryPayments {
    /// Charges approved so far, repeats of one idempotency key included.
    pub fn charges(&self) -> Vec<(String, i64)> {
        self.moves.lock().expect("payments lock").charges.clone()
    }

    pub fn refunds(&self) -> Vec<(String, i64)> {
        self.moves.lock().expect("payments lock").refunds.clone()
    }
}

impl PaymentProvider for MemoryPayments {
    async fn charge(&self, idempotency_key: &str, amount_cents: i64) -> PortResult<ChargeOutcome> {
        let outcome = SandboxPayments.charge(idempotency_key, amount_cents).await?;
        self.faults.run(Op::Charge, || {
            if let ChargeOutcome::Approved { transaction_id } = &outcome {
                let mut moves = self.moves.lock().expect("payments lock");
                moves.charges.push((transaction_id.clone(), amount_cents));
            }
            Ok(outcome.clone())
        })
    }

    async fn refund(&self, transaction_id: &str, amount_cents: i64) -> PortResult<()> {
        self.faults.run(Op::Refund, || {
            let mut moves = self.moves.lock().expect("payments lock");
            moves.refunds.push((transaction_id.to_owned(), amount_cents));
            Ok(())
        })
    }
}
