//! [`PaymentProvider`] in memory: the sandbox's answers and books, plus a
//! record of every charge and refund, so a test can count the money.

use std::{collections::BTreeMap, sync::Mutex};

use super::{Faults, Op};
use crate::{
    payments::sandbox_answer,
    ports::{ChargeLookup, ChargeOutcome, PaymentProvider, PortError, PortResult},
};

#[derive(Debug, Default)]
struct Moves {
    /// (transaction id, amount) of each approved charge, repeats included.
    charges: Vec<(String, i64)>,
    /// (refund key, transaction id, amount) of each refund paid. As at a
    /// real provider, a transaction may be refunded in parts, never
    /// beyond what was charged, and a refund is asked again by its key.
    refunds: Vec<(String, String, i64)>,
    /// Transaction id by idempotency key: what a lookup finds.
    books: BTreeMap<String, String>,
}

impl Moves {
    /// What is left to refund of a transaction.
    fn kept_of(&self, transaction_id: &str) -> i64 {
        let charged = self
            .charges
            .iter()
            .find(|(id, _)| id == transaction_id)
            .map_or(0, |(_, amount)| *amount);
        let refunded: i64 = self
            .refunds
            .iter()
            .filter(|(_, id, _)| id == transaction_id)
            .map(|(_, _, amount)| amount)
            .sum();
        charged - refunded
    }
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

    /// (transaction id, amount) of each refund paid.
    pub fn refunds(&self) -> Vec<(String, i64)> {
        let moves = self.moves();
        moves
            .refunds
            .iter()
            .map(|(_, id, amount)| (id.clone(), *amount))
            .collect()
    }

    /// What the provider kept: each approved transaction once, less what
    /// was refunded of it, by transaction id (those refunded in full
    /// left out).
    pub fn kept(&self) -> BTreeMap<String, i64> {
        let moves = self.moves();
        let mut kept: BTreeMap<String, i64> = moves.charges.iter().cloned().collect();
        for (_, transaction_id, amount) in &moves.refunds {
            if let Some(left) = kept.get_mut(transaction_id) {
                *left -= amount;
            }
        }
        kept.retain(|_, left| *left > 0);
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

    async fn refund(&self, transaction_id: &str, amount_cents: i64, refund_key: &str) -> PortResult<()> {
        self.faults
            .run(Op::Refund, || {
                let mut moves = self.moves();
                if let Some((_, refunded, _)) = moves.refunds.iter().find(|(key, _, _)| key == refund_key) {
                    return match refunded == transaction_id {
                        true => Ok(()),
                        false => Err(PortError::Unavailable(format!("refund {refund_key} is of {refunded}"))),
                    };
                }
                let left = moves.kept_of(transaction_id);
                if amount_cents > left {
                    return Err(PortError::Unavailable(format!(
                        "refund of {amount_cents} exceeds the {left} left of {transaction_id}"
                    )));
                }
                moves
                    .refunds
                    .push((refund_key.to_owned(), transaction_id.to_owned(), amount_cents));
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
