//! The sandbox provider: answers a charge at once and keeps its books in a
//! DynamoDB table of its own, as a real provider keeps them in its
//! database: every instance of every function (the pay handler, the
//! payments job) sees the same trades, so a lookup answers truly.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::{
    ledger::{Dynamo, tables},
    ports::{ChargeLookup, ChargeOutcome, ChargeRequest, PortError, PortResult},
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

/// One order's trade in the sandbox's books: charged, or closed unpaid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxCharge {
    /// The merchant's trade number: the order id.
    pub idempotency_key: String,
    /// Absent on a trade closed before it was charged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    pub amount: i64,
    /// Set once the whole amount was paid back.
    #[serde(default)]
    pub refunded: bool,
    /// The merchant's key of that refund: asked again with it, the
    /// sandbox pays nothing more; with another, it refuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_key: Option<String>,
}

impl SandboxCharge {
    fn lookup(&self) -> ChargeLookup {
        match &self.transaction_id {
            Some(transaction_id) => ChargeLookup::Charged {
                transaction_id: transaction_id.clone(),
                amount_cents: self.amount,
            },
            None => ChargeLookup::NotCharged,
        }
    }
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

    /// Every trade in the books, to count the money against the ledger.
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

    async fn trade(&self, order_id: &str) -> PortResult<Option<SandboxCharge>> {
        let output = self
            .books
            .client()
            .get_item()
            .table_name(self.table())
            .key(
                tables::SANDBOX_PAYMENTS.hash_key,
                AttributeValue::S(order_id.to_owned()),
            )
            .consistent_read(true)
            .send()
            .await?;
        Ok(output.item.map(serde_dynamo::from_item).transpose()?)
    }

    /// Writes a trade the books do not hold yet; false if they do.
    async fn open(&self, trade: &SandboxCharge) -> PortResult<bool> {
        let written = self
            .books
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(serde_dynamo::to_item(trade)?))
            .condition_expression("attribute_not_exists(idempotency_key)")
            .send()
            .await
            .map_err(PortError::from);
        match written {
            Ok(_) => Ok(true),
            Err(PortError::ConditionFailed) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// The trade an earlier call wrote.
    async fn existing(&self, order_id: &str) -> PortResult<SandboxCharge> {
        self.trade(order_id)
            .await?
            .ok_or_else(|| PortError::Unavailable(format!("the sandbox lost the trade of {order_id}")))
    }

    pub async fn charge(&self, request: &ChargeRequest<'_>) -> PortResult<ChargeOutcome> {
        let outcome = sandbox_answer(request.order_id, request.amount_cents);
        let ChargeOutcome::Approved { transaction_id } = &outcome else {
            return Ok(outcome);
        };
        let charge = SandboxCharge {
            idempotency_key: request.order_id.to_owned(),
            transaction_id: Some(transaction_id.clone()),
            amount: request.amount_cents,
            refunded: false,
            refund_key: None,
        };
        if self.open(&charge).await? {
            return Ok(outcome);
        }
        // Charged before (the same transaction), or closed.
        Ok(match self.existing(request.order_id).await?.lookup() {
            ChargeLookup::Charged { transaction_id, .. } => ChargeOutcome::Approved { transaction_id },
            ChargeLookup::NotCharged => ChargeOutcome::Declined("the trade is closed".into()),
        })
    }

    pub async fn close(&self, order_id: &str) -> PortResult<ChargeLookup> {
        let closed = SandboxCharge {
            idempotency_key: order_id.to_owned(),
            transaction_id: None,
            amount: 0,
            refunded: false,
            refund_key: None,
        };
        if self.open(&closed).await? {
            return Ok(ChargeLookup::NotCharged);
        }
        Ok(self.existing(order_id).await?.lookup())
    }

    pub async fn refund(&self, transaction_id: &str, refund_key: &str) -> PortResult<()> {
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
                "attribute_exists(transaction_id) AND (attribute_not_exists(refund_key) OR refund_key = :key)",
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

    pub async fn lookup(&self, order_id: &str) -> PortResult<ChargeLookup> {
        Ok(self
            .trade(order_id)
            .await?
            .map_or(ChargeLookup::NotCharged, |trade| trade.lookup()))
    }
}
