//! [`CampaignStore`] on DynamoDB: campaigns, credits and balances.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, Select, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};

use super::{Dynamo, IndexPage, tables};
use crate::{
    model::{Campaign, ClaimRecord, Claimant, Credit, Packet, SplitChunk},
    ports::{CampaignStore, ClaimRecorded, CreditOutcome, Page, PortError, PortResult, Waiting},
    ts,
};

/// Credits per transaction: each is two items (the credit and the
/// balance), plus one for the campaign's totals, within DynamoDB's 100.
pub const MAX_CREDITS_PER_TRANSACTION: usize = 25;

/// Why [`Dynamo::credit_together`] wrote nothing.
enum Refused {
    /// A packet of the batch is not owed any more (credited before):
    /// credit them one by one, each guarded, to find which.
    AlreadyCredited,
    /// Anything else, an overlapping run's transaction included: nothing
    /// is known of the packets, so the caller tries again or leaves them
    /// for the next run.
    Failed(PortError),
}

impl Dynamo {
    /// In one transaction: each record's owed credit marked credited (only
    /// if it is still owed) and its shopper's balance, and the batch's
    /// count and sum on one shard of its campaign's totals.
    async fn credit_together(&self, records: &[ClaimRecord], now: DateTime<Utc>) -> Result<(), Refused> {
        let fail = |error: PortError| Refused::Failed(error);
        let mut items = Vec::with_capacity(2 * records.len() + 1);
        for record in records {
            let mark_credited = Update::builder()
                .table_name(self.table(tables::CREDITS))
                .key("red_packet_id", AttributeValue::S(record.red_packet_id.clone()))
                .update_expression("SET credited_at = :now REMOVE payout_shard")
                .condition_expression("attribute_exists(payout_shard) AND username = :username")
                .expression_attribute_values(":now", AttributeValue::S(ts::format(&now)))
                .expression_attribute_values(":username", AttributeValue::S(record.username.clone()))
                .build()
                .map_err(|e| fail(e.into()))?;
            let add_to_balance = Update::builder()
                .table_name(self.table(tables::BALANCES))
                .key("username", AttributeValue::S(record.username.clone()))
                .update_expression("ADD balance :amount")
                .expression_attribute_values(":amount", AttributeValue::N(record.amount.to_string()))
                .build()
                .map_err(|e| fail(e.into()))?;
            items.push(TransactWriteItem::builder().update(mark_credited).build());
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

/// One of `shards`, spread by a packet id.
fn spread(red_packet_id: &str, shards: u64) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(red_packet_id, &mut hasher);
    std::hash::Hasher::finish(&hasher) % shards
}

/// The totals shard a transaction adds to, spread by a packet id.
fn totals_shard(red_packet_id: &str) -> String {
    format!("{:02}", spread(red_packet_id, tables::CAMPAIGN_TOTALS_SHARDS))
}

/// The shard of the payout queue an owed credit waits in.
fn payout_shard(shard: u64) -> String {
    format!("{shard:02}")
}

impl Dynamo {
    /// The owed credits of one shard of the payout queue, the oldest first.
    fn owed_shard(&self, shard: u64) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.partition(
            tables::CREDITS,
            Some(tables::CREDITS_OWED),
            ("payout_shard", &payout_shard(shard)),
        )
        .scan_index_forward(true)
    }

    /// What a refused claim's item holds: the one a failed condition
    /// returned, or a fresh read of it.
    async fn refused_item<T: serde::de::DeserializeOwned>(
        &self,
        returned: Option<&HashMap<String, AttributeValue>>,
        table: tables::TableDef,
        key: &[(&str, &str)],
    ) -> PortResult<Option<T>> {
        if let Some(item) = returned {
            return Ok(Some(serde_dynamo::from_item(item.clone())?));
        }
        let key = key
            .iter()
            .map(|(name, value)| ((*name).to_owned(), AttributeValue::S((*value).to_owned())))
            .collect();
        let output = self
            .client
            .get_item()
            .table_name(self.table(table))
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await?;
        Ok(output.item.map(serde_dynamo::from_item).transpose()?)
    }
}

/// Amounts per `packet_splits` item: 5,000 numbers stay far below
/// DynamoDB's 400 KB item limit, so 100,000 packets are 20 items.
const SPLIT_CHUNK: usize = 5_000;

impl CampaignStore for Dynamo {
    async fn record_claim(&self, claim: &ClaimRecord) -> PortResult<ClaimRecorded> {
        let claimed_at = claim.claimed_at.map(ts::from_millis);
        let owed = Credit {
            red_packet_id: claim.red_packet_id.clone(),
            campaign_id: claim.campaign_id.clone(),
            username: claim.username.clone(),
            amount: claim.amount,
            claimed_at,
            credited_at: None,
            payout_shard: Some(payout_shard(spread(&claim.red_packet_id, tables::OWED_SHARDS))),
        };
        let claimant = Claimant {
            username: claim.username.clone(),
            campaign_id: claim.campaign_id.clone(),
            red_packet_id: claim.red_packet_id.clone(),
            amount: claim.amount,
        };
        let put = |table: tables::TableDef, item, key: &str| {
            Put::builder()
                .table_name(self.table(table))
                .set_item(Some(item))
                .condition_expression(format!("attribute_not_exists({key})"))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .build()
        };
        let items = vec![
            TransactWriteItem::builder()
                .put(put(tables::CREDITS, serde_dynamo::to_item(&owed)?, "red_packet_id")?)
                .build(),
            TransactWriteItem::builder()
                .put(put(tables::CLAIMANTS, serde_dynamo::to_item(&claimant)?, "username")?)
                .build(),
        ];
        let Some(reasons) = self.transact_or_refused(items).await? else {
            return Ok(ClaimRecorded::Recorded);
        };
        let failed = |i: usize| reasons.get(i).and_then(|r| r.code()) == Some("ConditionalCheckFailed");
        // Written before: the same claim (a retry), or another's.
        let holder: Option<Credit> = match failed(0) {
            true => {
                let key = [("red_packet_id", claim.red_packet_id.as_str())];
                self.refused_item(reasons[0].item(), tables::CREDITS, &key).await?
            }
            false => None,
        };
        let popped_taken = holder.is_some_and(|holder| holder.username != claim.username);
        if failed(1) {
            let theirs: Option<Claimant> = self
                .refused_item(
                    reasons[1].item(),
                    tables::CLAIMANTS,
                    &[("username", &claim.username), ("campaign_id", &claim.campaign_id)],
                )
                .await?;
            if let Some(theirs) = theirs.filter(|theirs| theirs.red_packet_id != claim.red_packet_id) {
                return Ok(ClaimRecorded::AlreadyHas {
                    theirs: Packet {
                        red_packet_id: theirs.red_packet_id,
                        amount: theirs.amount,
                    },
                    popped_taken,
                });
            }
        }
        if popped_taken {
            return Ok(ClaimRecorded::PacketTaken);
        }
        if failed(0) && failed(1) {
            return Ok(ClaimRecorded::RecordedBefore);
        }
        // One half written before and not the other: a claim that died
        // half way cannot exist (one transaction), so this is a retry
        // racing itself; asked again, it settles.
        Err(PortError::TransactionConflict)
    }

    async fn claim_of(&self, campaign_id: &str, username: &str) -> PortResult<Option<Packet>> {
        let found: Option<Claimant> = self
            .refused_item(
                None,
                tables::CLAIMANTS,
                &[("username", username), ("campaign_id", campaign_id)],
            )
            .await?;
        Ok(found.map(|claimant| Packet {
            red_packet_id: claimant.red_packet_id,
            amount: claimant.amount,
        }))
    }

    async fn owed(&self, limit: usize) -> PortResult<Vec<ClaimRecord>> {
        let shards = (0..tables::OWED_SHARDS).map(|shard| {
            let query = self.owed_shard(shard).limit(super::limit(limit));
            async move {
                let output = query.send().await?;
                Ok::<Vec<Credit>, PortError>(serde_dynamo::from_items(output.items.unwrap_or_default())?)
            }
        });
        let mut owed: Vec<Credit> = futures::future::try_join_all(shards)
            .await?
            .into_iter()
            .flatten()
            .collect();
        owed.sort_by(|a, b| (a.claimed_at, &a.red_packet_id).cmp(&(b.claimed_at, &b.red_packet_id)));
        owed.truncate(limit);
        Ok(owed
            .into_iter()
            .map(|credit| ClaimRecord {
                claimed_at: credit.claimed_at.map(|at| ts::millis(&at)),
                red_packet_id: credit.red_packet_id,
                amount: credit.amount,
                username: credit.username,
                campaign_id: credit.campaign_id,
            })
            .collect())
    }

    async fn owed_count(&self) -> PortResult<Waiting> {
        let mut waiting = Waiting::default();
        for shard in 0..tables::OWED_SHARDS {
            let counted = self
                .owed_shard(shard)
                .select(Select::Count)
                .into_paginator()
                .send()
                .collect::<Vec<_>>()
                .await;
            for page in counted {
                waiting.records += u64::try_from(page?.count).unwrap_or(0);
            }
            let oldest = self.owed_shard(shard).limit(1).send().await?;
            let oldest: Vec<Credit> = serde_dynamo::from_items(oldest.items.unwrap_or_default())?;
            let oldest = oldest
                .first()
                .and_then(|credit| credit.claimed_at)
                .map(|at| ts::millis(&at));
            waiting.oldest_claimed_at = match (waiting.oldest_claimed_at, oldest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(waiting)
    }

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
