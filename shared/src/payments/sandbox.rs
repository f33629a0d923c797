//! The payment adapter: a sandbox provider behind
//! [`PaymentProvider`](crate::ports::PaymentProvider), keeping its books in
//! a DynamoDB table of its own, as a real provider keeps them in its
//! database: every instance of every function (the pay handler, the
//! payments job) sees the same charges, so a lookup answers truly.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::{
    ledger::{Dynamo, tables},
    ports::{ChargeLookup, ChargeOutcome, PaymentProvider, PortError, PortResult},
};

/// The sandbox's transaction ids: derived from the idempotency key (so a
/// repeated charge yields the same one) and within `tb_order`'s
/// 30-character `transaction_id` column.
const TRANSACTION_PREFIX: &str = "SBX";

/// What the sandbox answers a charge: it approves any positive amount.
pub fn sandbox_answer(idempotency_key: &str, amount_cents: i64) -> ChargeOutcome {
    if amount_cents <= 0 {
        return ChargeOutcome::Declined("amount must be positive".into());
    }
    ChargeOutcome::Approved {
        transaction_id: format!("{TRANSACTION_PREFIX}{idempotency_key}"),
    }
}

/// The idempotency key a sandbox transaction was charged under.
fn sandbox_key(transaction_id: &str) -> PortResult<&str> {
    transaction_id
        .strip_prefix(TRANSACTION_PREFIX)
        .ok_or_else(|| PortError::Unavailable(format!("{transaction_id} is not a sandbox transaction")))
}

/// One approved charge in the sandbox's books.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxCharge {
    pub idempotency_key: String,
    pub transaction_id: String,
    pub amount: i64,
    /// Set once the whole amount was paid back.
    #[serde(default)]
    pub refunded: bool,
    /// The merchant's key of that refund: asked again with it, the
    /// sandbox pays nothing more; with another, it refuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_key: Option<String>,
}

/// Moves no money; approves every positive charge and every refund.
#[derive(Debug, Clone)]
pub struct SandboxPayments {
    books: Dynamo,
}

impl SandboxPayments {
    pub fn new(books: Dynamo) -> Self {
        SandboxPayments { books }
    }

    fn table(&self) -> String {
        self.books.table(tables::SANDBOX_PAYMENTS)
    }

    /// Every charge in the books, to count the money against the ledger.
    pub async fn statement(&self) -> PortResult<Vec<SandboxCharge>> {
        Dynamo::scanned(
            self.books
                .client()
                .scan()
                .table_name(self.table())
                .consistent_read(true),
        )
        .await
    }
}

impl PaymentProvider for SandboxPayments {
    async fn charge(&self, idempotency_key: &str, amount_cents: i64) -> PortResult<ChargeOutcome> {
        let outcome = sandbox_answer(idempotency_key, amount_cents);
        if let ChargeOutcome::Approved { transaction_id } = &outcome {
            let charge = SandboxCharge {
                idempotency_key: idempotency_key.to_owned(),
                transaction_id: transaction_id.clone(),
                amount: amount_cents,
                refunded: false,
                refund_key: None,
            };
            let written = self
                .books
                .client()
                .put_item()
                .table_name(self.table())
                .set_item(Some(serde_dynamo::to_item(&charge)?))
                .condition_expression("attribute_not_exists(idempotency_key)")
                .send()
                .await
                .map_err(PortError::from);
            match written {
                // Charged under this key before: the same transaction.
                Ok(_) | Err(PortError::ConditionFailed) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(outcome)
    }

    async fn refund(&self, transaction_id: &str, _amount_cents: i64, refund_key: &str) -> PortResult<()> {
        self.books
            .client()
            .update_item()
            .table_name(self.table())
            .key(
                tables::SANDBOX_PAYMENTS.hash_key,
                AttributeValue::S(sandbox_key(transaction_id)?.to_owned()),
            )
            .update_expression("SET refunded = :yes, refund_key = :key")
            .condition_expression(
                "attribute_exists(idempotency_key) AND (attribute_not_exists(refund_key) OR refund_key = :key)",
            )
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":key", AttributeValue::S(refund_key.to_owned()))
            .send()
            .await
            .map_err(|error| match PortError::from(error) {
                PortError::ConditionFailed => PortError::Unavailable(format!(
                    "no sandbox charge {transaction_id}, or it was refunded under another key than {refund_key}"
                )),
                other => other,
            })?;
        Ok(())
    }

    async fn lookup(&self, idempotency_key: &str) -> PortResult<ChargeLookup> {
        let output = self
            .books
            .client()
            .get_item()
            .table_name(self.table())
            .key(
                tables::SANDBOX_PAYMENTS.hash_key,
                AttributeValue::S(idempotency_key.to_owned()),
            )
            .consistent_read(true)
            .send()
            .await?;
        let charge: Option<SandboxCharge> = output.item.map(serde_dynamo::from_item).transpose()?;
        Ok(match charge {
            Some(charge) => ChargeLookup::Charged {
                transaction_id: charge.transaction_id,
            },
            None => ChargeLookup::NotCharged,
        })
    }
}
