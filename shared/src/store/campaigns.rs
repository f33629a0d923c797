//! [`CampaignStore`] on DynamoDB: campaigns, credits and balances.

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    error::ProvideErrorMetadata,
    operation::transact_write_items::TransactWriteItemsError,
    types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem, Update},
};
use chrono::{DateTime, Utc};

use super::{Dynamo, IndexPage, tables};
use crate::{
    model::{Campaign, ClaimRecord, Credit, Packet, SplitChunk},
    ports::{CampaignStore, CreditOutcome, Page, PortError, PortResult},
    ts,
};

/// Amounts per `packet_splits` item: 5,000 numbers stay far below
/// DynamoDB's 400 KB item limit, so 100,000 packets are 20 items.
const SPLIT_CHUNK: usize = 5_000;

impl CampaignStore for Dynamo {
    async fn insert_campaign(&self, campaign: &Campaign) -> PortResult<()> {
        self.put(tables::CAMPAIGNS, campaign, true).await
    }

    async fn get_campaign(&self, id: &str) -> PortResult<Option<Campaign>> {
        self.get(tables::CAMPAIGNS, id).await
    }

    async fn campaigns_ending_after(&self, cutoff: DateTime<Utc>) -> PortResult<Vec<Campaign>> {
        let items = self
            .client
            .scan()
            .table_name(self.table(tables::CAMPAIGNS))
            .filter_expression("#end > :cutoff")
            .expression_attribute_names("#end", "end")
            .expression_attribute_values(":cutoff", AttributeValue::S(ts::format(&cutoff)))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        items
            .into_iter()
            .map(|item| Ok(serde_dynamo::from_item(item?)?))
            .collect()
    }

    async fn insert_split(&self, campaign_id: &str, packets: &[Packet]) -> PortResult<()> {
        for (index, amounts) in packets.chunks(SPLIT_CHUNK).enumerate() {
            let first = index * SPLIT_CHUNK;
            let chunk = SplitChunk {
                campaign_id: campaign_id.to_owned(),
                chunk: format!("{first:06}"),
                first,
                amounts: amounts.iter().map(|p| p.amount).collect(),
            };
            self.put(tables::PACKET_SPLITS, &chunk, false).await?;
        }
        Ok(())
    }

    async fn split_of(&self, campaign_id: &str) -> PortResult<Vec<Packet>> {
        let query = self
            .partition(tables::PACKET_SPLITS, None, ("campaign_id", campaign_id))
            .consistent_read(true);
        let chunks: Vec<SplitChunk> = Self::all(query).await?;
        Ok(chunks
            .iter()
            .flat_map(|chunk| {
                let numbers = chunk.first..;
                numbers
                    .zip(&chunk.amounts)
                    .map(|(number, amount)| Packet::numbered(campaign_id, number, *amount))
            })
            .collect())
    }

    async fn credits_of_packets(&self, packet_ids: &[String]) -> PortResult<Vec<Credit>> {
        let table = self.table(tables::CREDITS);
        let mut credits = Vec::new();
        for ids in packet_ids.chunks(100) {
            let keys = ids
                .iter()
                .map(|id| HashMap::from([("red_packet_id".to_owned(), AttributeValue::S(id.clone()))]))
                .collect();
            let mut wanted = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()?,
            );
            // DynamoDB may answer part of a batch (throttled); ask again for
            // the rest, backing off.
            let mut backoff = std::time::Duration::from_millis(25);
            while let Some(request) = wanted.take() {
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&table, request)
                    .send()
                    .await?;
                for item in output.responses.and_then(|mut r| r.remove(&table)).unwrap_or_default() {
                    credits.push(serde_dynamo::from_item(item)?);
                }
                wanted = output.unprocessed_keys.and_then(|mut u| u.remove(&table));
                if wanted.is_some() {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
                }
            }
        }
        Ok(credits)
    }

    async fn credit(&self, record: &ClaimRecord, now: DateTime<Utc>) -> PortResult<CreditOutcome> {
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
            .set_item(Some(serde_dynamo::to_item(&credit)?))
            .condition_expression("attribute_not_exists(red_packet_id)")
            .build()?;
        let add_to_balance = Update::builder()
            .table_name(self.table(tables::BALANCES))
            .key("username", AttributeValue::S(record.username.clone()))
            .update_expression("ADD balance :amount")
            .expression_attribute_values(":amount", amount.clone())
            .build()?;
        let count_on_campaign = Update::builder()
            .table_name(self.table(tables::CAMPAIGNS))
            .key("id", AttributeValue::S(record.campaign_id.clone()))
            .update_expression("ADD credited :one, credited_amount :amount")
            .condition_expression("attribute_exists(id)")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":amount", amount)
            .build()?;
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
                    Err(PortError::from(error))
                }
            }
        }
    }

    async fn balance(&self, username: &str) -> PortResult<i64> {
        #[derive(serde::Deserialize)]
        struct Balance {
            #[serde(default)]
            balance: i64,
        }
        let found: Option<Balance> = self.get(tables::BALANCES, username).await?;
        Ok(found.map_or(0, |b| b.balance))
    }

    async fn credits_of_user(&self, username: &str, limit: usize, cursor: Option<&str>) -> PortResult<Page<Credit>> {
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
