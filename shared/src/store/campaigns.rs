//! The red-packet ledger: campaigns, credits and balances.

use aws_sdk_dynamodb::{
    error::ProvideErrorMetadata,
    operation::transact_write_items::TransactWriteItemsError,
    types::{AttributeValue, Put, TransactWriteItem, Update},
};
use chrono::{DateTime, Utc};

use super::{Dynamo, IndexPage, Page, StoreError, tables};
use crate::{
    Error,
    red_packet::{Campaign, CampaignStore, ClaimRecord, Credit, CreditOutcome},
};

impl CampaignStore for Dynamo {
    async fn insert_campaign(&self, campaign: &Campaign) -> Result<(), Error> {
        Ok(self.put(&self.table(tables::CAMPAIGNS), campaign, Some("id")).await?)
    }

    async fn get_campaign(&self, id: &str) -> Result<Option<Campaign>, Error> {
        Ok(self.get(&self.table(tables::CAMPAIGNS), "id", id).await?)
    }

    async fn credit(&self, record: &ClaimRecord, now: DateTime<Utc>) -> Result<CreditOutcome, Error> {
        let credit = Credit {
            red_packet_id: record.red_packet_id.clone(),
            campaign_id: record.campaign_id.clone(),
            username: record.username.clone(),
            amount: record.amount,
            credited_at: now,
        };
        let amount = AttributeValue::N(record.amount.to_string());
        // The guard: this packet's credit must not exist yet.
        let put_credit = Put::builder()
            .table_name(self.table(tables::CREDITS))
            .set_item(Some(serde_dynamo::to_item(&credit).map_err(StoreError::from)?))
            .condition_expression("attribute_not_exists(red_packet_id)")
            .build()
            .map_err(StoreError::from)?;
        let add_to_balance = Update::builder()
            .table_name(self.table(tables::BALANCES))
            .key("username", AttributeValue::S(record.username.clone()))
            .update_expression("ADD balance :amount")
            .expression_attribute_values(":amount", amount.clone())
            .build()
            .map_err(StoreError::from)?;
        let count_on_campaign = Update::builder()
            .table_name(self.table(tables::CAMPAIGNS))
            .key("id", AttributeValue::S(record.campaign_id.clone()))
            .update_expression("ADD credited :one, credited_amount :amount")
            .condition_expression("attribute_exists(id)")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":amount", amount)
            .build()
            .map_err(StoreError::from)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put_credit).build())
            .transact_items(TransactWriteItem::builder().update(add_to_balance).build())
            .transact_items(TransactWriteItem::builder().update(count_on_campaign).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(CreditOutcome::Credited),
            Err(error) => {
                let guard_failed = match error.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => cancelled
                        .cancellation_reasons()
                        .first()
                        .is_some_and(|reason| reason.code() == Some("ConditionalCheckFailed")),
                    _ => false,
                };
                if guard_failed {
                    Ok(CreditOutcome::AlreadyCredited)
                } else {
                    tracing::warn!(code = ?error.code(), "credit transaction failed");
                    Err(StoreError::from(error).into())
                }
            }
        }
    }

    async fn balance(&self, username: &str) -> Result<i64, Error> {
        #[derive(serde::Deserialize)]
        struct Balance {
            #[serde(default)]
            balance: i64,
        }
        let found: Option<Balance> = self.get(&self.table(tables::BALANCES), "username", username).await?;
        Ok(found.map_or(0, |b| b.balance))
    }

    async fn credits_of_user(&self, username: &str, limit: usize, cursor: Option<&str>) -> Result<Page<Credit>, Error> {
        self.index_page(IndexPage {
            table: tables::CREDITS,
            index: Some(tables::CREDITS_BY_USER),
            partition: ("username", username),
            limit,
            cursor,
            newest_first: true,
        })
        .await
    }
}
