//! [`CampaignStore`] on DynamoDB: campaigns, credits and balances.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::{Dynamo, IndexPage, tables};
use crate::{
    model::{Campaign, ClaimRecord, Credit, Packet, SplitChunk},
    ports::{CampaignStore, CreditOutcome, Page, PortError, PortResult},
    ts,
};

/// Credits per transaction: each is two items (the credit and the
/// balance), plus one for the campaign's totals, within DynamoDB's 100.
pub const MAX_CREDITS_PER_TRANSACTION: usize = 25;

/// Why [`Dynamo::credit_together`] wrote nothing.
enum Refused {
    /// A packet of the batch was credited before: credit them one by one,
    /// each guarded, to find which.
    AlreadyCredited,
    /// Anything else, an overlapping run's transaction included: nothing
    /// is known of the packets, so the caller tries again or leaves them
    /// for the next run.
    Failed(PortError),
}

impl Dynamo {
    /// In one transaction: each record's credit (only if its packet was
    /// never credited) and its shopper's balance, and the batch's count and
    /// sum on one shard of its campaign's totals.
    async fn credit_together(&self, records: &[ClaimRecord], now: DateTime<Utc>) -> Result<(), Refused> {
        let fail = |error: PortError| Refused::Failed(error);
        let mut items = Vec::with_capacity(2 * records.len() + 1);
        for record in records {
            let credit = Credit {
                red_packet_id: record.red_packet_id.clone(),
                campaign_id: record.campaign_id.clone(),
                username: record.username.clone(),
                amount: record.amount,
                credited_at: now,
            };
            let put_credit = Put::builder()
                .table_name(self.table(tables::CREDITS))
                .set_item(Some(serde_dynamo::to_item(&credit).map_err(|e| fail(e.into()))?))
                .condition_expression("attribute_not_exists(red_packet_id)")
                .build()
                .map_err(|e| fail(e.into()))?;
            let add_to_balance = Update::builder()
                .table_name(self.table(tables::BALANCES))
                .key("username", AttributeValue::S(record.username.clone()))
                .update_expression("ADD balance :amount")
                .expression_attribute_values(":amount", AttributeValue::N(record.amount.to_string()))
                .build()
                .map_err(|e| fail(e.into()))?;
            items.push(TransactWriteItem::builder().put(put_credit).build());
            items.push(TransactWriteItem::builder().update(add_to_balance).build());
        }
        let Some(first) = records.first() else {
            return Ok(());
        };
        let sum = records
            .iter()
            .try_fold(0i64, |sum, r| sum.checked_add(r.amount))
            .ok_or_else(|| fail(PortError::Unavailable("credited amounts overflow".into())))?;
        let add_to_totals = Update::builder()
            .table_name(self.table(tables::CAMPAIGN_TOTALS))
            .key("campaign_id", AttributeValue::S(first.campaign_id.clone()))
            .key("shard", AttributeValue::S(totals_shard(&first.red_packet_id)))
            .update_expression("ADD credited :count, credited_amount :sum")
            .expression_attribute_values(":count", AttributeValue::N(records.len().to_string()))
            .expression_attribute_values(":sum", AttributeValue::N(sum.to_string()))
            .build()
            .map_err(|e| fail(e.into()))?;
        items.push(TransactWriteItem::builder().update(add_to_totals).build());
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(PortError::ConditionFailed) => Err(Refused::AlreadyCredited),
            Err(error) => {
                tracing::warn!(%error, credits = records.len(), "credit transaction failed");
                Err(fail(error))
            }
        }
    }
}

/// The totals shard a transaction adds to, spread by a packet id.
fn totals_shard(red_packet_id: &str) -> String {
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(red_packet_id, &mut hasher);
    format!(
        "{:02}",
        std::hash::Hasher::finish(&hasher) % tables::CAMPAIGN_TOTALS_SHARDS
    )
}

/// Amounts per `packet_splits` item: 5,000 numbers stay far below
/// DynamoDB's 400 KB item limit, so 100,000 packets are 20 items.
const SPLIT_CHUNK: usize = 5_000;

impl CampaignStore for Dynamo {
    async fn insert_campaign(&self, campaign: &Campaign) -> PortResult<()> {
        self.put(tables::CAMPAIGNS, campaign, true).await
    }

    async fn get_campaign(&self, id: &str) -> PortResult<Option<Campaign>> {
        let Some(mut campaign) = self.get::<Campaign>(tables::CAMPAIGNS, id).await? else {
            return Ok(None);
        };
        #[derive(serde::Deserialize)]
        struct Shard {
            credited: u32,
            credited_amount: i64,
        }
        let shards = self
            .partition(tables::CAMPAIGN_TOTALS, None, ("campaign_id", id))
            .consistent_read(true);
        for shard in Self::all::<Shard>(shards).await? {
            campaign.credited += shard.credited;
            campaign.credited_amount += shard.credited_amount;
        }
        Ok(Some(campaign))
    }

    async fn campaigns_ending_after(&self, cutoff: DateTime<Utc>) -> PortResult<Vec<Campaign>> {
        let scan = self
            .client
            .scan()
            .table_name(self.table(tables::CAMPAIGNS))
            .filter_expression("#end > :cutoff")
            .expression_attribute_names("#end", "end")
            .expression_attribute_values(":cutoff", AttributeValue::S(ts::format(&cutoff)))
            .consistent_read(true);
        Self::scanned(scan).await
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
        match self.credit_together(std::slice::from_ref(record), now).await {
            Ok(()) => Ok(CreditOutcome::Credited),
            Err(Refused::AlreadyCredited) => Ok(CreditOutcome::AlreadyCredited),
            Err(Refused::Failed(error)) => Err(error),
        }
    }

    async fn credit_batch(&self, records: &[ClaimRecord], now: DateTime<Utc>) -> PortResult<Vec<CreditOutcome>> {
        let mut shoppers: Vec<&str> = records.iter().map(|r| r.username.as_str()).collect();
        shoppers.sort_unstable();
        shoppers.dedup();
        // One transaction may touch an item once: a shopper twice in the
        // batch (two campaigns' records) is credited one record at a time.
        if records.len() > 1 && records.len() <= MAX_CREDITS_PER_TRANSACTION && shoppers.len() == records.len() {
            match self.credit_together(records, now).await {
                Ok(()) => return Ok(vec![CreditOutcome::Credited; records.len()]),
                Err(Refused::Failed(error)) => return Err(error),
                // Some packet was credited already (a run died after its
                // credit): each on its own, each guarded, finds out which.
                Err(Refused::AlreadyCredited) => {}
            }
        }
        let mut outcomes = Vec::with_capacity(records.len());
        for record in records {
            outcomes.push(self.credit(record, now).await?);
        }
        Ok(outcomes)
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
