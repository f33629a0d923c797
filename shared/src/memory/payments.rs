//! [`PaymentProvider`] in memory: the sandbox's answers and books, plus a
//! record of every charge and refund, so a test can count the money.

use std::{collections::BTreeMap, sync::Mutex};

use super::{Faults, Op};
use crate::{
    payments::sandbox_answer,
    ports::{ChargeLookup, ChargeOutcome, PaymentProvider, PortResult},
};

#[derive(Debug, Default)]
struct Moves {
    /// (transaction id, amount) of each approved charge, repeats included.
    charges: Vec<(String, i64)>,
    /// (transaction id, amount) of each transaction refunded, once each.
    refunds: Vec<(String, i64)>,
    /// Transaction id by idempotency key: what a lookup finds.
    books: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
pub struct MemoryPayments {
    moves: Mutex<Moves>,
    pub faults: Faults,
}

impl MemoryPayments {
    fn moves(&self) -> std::sync::MutexGuard<'_, Moves> {
        self.moves.lock().expect("payments lock")
    }

    /// Charges approved so far, repeats of one idempotency key included.
    pub fn charges(&self) -> Vec<(String, i64)> {
        self.moves().charges.clone()
    }

    pub fn refunds(&self) -> Vec<(String, i64)> {
        self.moves().refunds.clone()
    }

    /// What the provider kept: each approved transaction once, less those
    /// refunded, by transaction id.
    pub fn kept(&self) -> BTreeMap<String, i64> {
        let moves = self.moves();
        let mut kept: BTreeMap<String, i64> = moves.charges.iter().cloned().collect();
        for (transaction_id, _) in &moves.refunds {
            kept.remove(transaction_id);
        }
        kept
    }
}

impl PaymentProvider for MemoryPayments {
    async fn charge(&self, idempotency_key: &str, amount_cents: i64) -> PortResult<ChargeOutcome> {
        let outcome = sandbox_answer(idempotency_key, amount_cents);
        self.faults
            .run(Op::Charge, || {
                if let ChargeOutcome::Approved { transaction_id } = &outcome {
                    let mut moves = self.moves();
                    moves.charges.push((transaction_id.clone(), amount_cents));
                    moves.books.insert(idempotency_key.to_owned(), transaction_id.clone());
                }
                Ok(outcome.clone())
            })
            .await
    }

    async fn refund(&self, transaction_id: &str, amount_cents: i64) -> PortResult<()> {
        self.faults
            .run(Op::Refund, || {
                let mut moves = self.moves();
                if !moves.refunds.iter().any(|(id, _)| id == transaction_id) {
                    moves.refunds.push((transaction_id.to_owned(), amount_cents));
                }
                Ok(())
            })
            .await
    }

    async fn lookup(&self, idempotency_key: &str) -> PortResult<ChargeLookup> {
        let found = || {
            Ok(match self.moves().books.get(idempotency_key) {
                Some(transaction_id) => ChargeLookup::Charged {
                    transaction_id: transaction_id.clone(),
                },
                None => ChargeLookup::NotCharged,
            })
        };
        let behind = || Ok(ChargeLookup::NotCharged);
        self.faults.run_read(Op::Lookup, found, behind).await
    }
}
