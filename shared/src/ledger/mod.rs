//! The DynamoDB adapter: the ledger. One file per port it implements
//! (`orders.rs`, `skus.rs`, `records.rs`, `accounts.rs`, `campaigns.rs`),
//! the table definitions in `tables.rs`, listing cursors in `cursor.rs`,
//! and here the client and the few request shapes they all use. Every write
//! that can race is conditional.

mod accounts;
mod campaigns;
mod cursor;
mod orders;
mod records;
mod skus;
pub mod tables;

use std::{collections::HashMap, time::Duration};

use aws_sdk_dynamodb::{
    Client,
    error::{DisplayErrorContext, ProvideErrorMetadata, SdkError},
    operation::{
        query::builders::QueryFluentBuilder, scan::builders::ScanFluentBuilder,
        transact_write_items::TransactWriteItemsError,
    },
    types::{AttributeValue, CancellationReason, TransactWriteItem},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::ports::{Page, PortError, PortResult};

impl<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug> From<SdkError<E, R>> for PortError {
    fn from(error: SdkError<E, R>) -> Self {
        if error.code() == Some("ConditionalCheckFailedException") {
            PortError::ConditionFailed
        } else if error.code() == Some("TransactionConflictException") {
            // A single write on an item a transaction holds.
            PortError::TransactionConflict
        } else {
            crate::metrics::dynamodb_error();
            PortError::Unavailable(format!("DynamoDB: {}", DisplayErrorContext(&error)))
        }
    }
}

impl From<aws_sdk_dynamodb::error::BuildError> for PortError {
    fn from(error: aws_sdk_dynamodb::error::BuildError) -> Self {
        PortError::Unavailable(format!("DynamoDB request not built: {error}"))
    }
}

impl From<serde_dynamo::Error> for PortError {
    fn from(error: serde_dynamo::Error) -> Self {
        PortError::Unavailable(format!("DynamoDB item does not match its record type: {error}"))
    }
}

/// The longest a DynamoDB call may take before the client gives up on it
/// (`app::dynamodb_client`): a write still in flight lands within it.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// How long after a write began a global secondary index surely shows it:
/// the write's own timeout, plus propagation, which AWS puts at a
/// fraction of a second in normal conditions (2 s allowed here).
pub const LISTING_LAG: Duration = Duration::from_secs(OPERATION_TIMEOUT.as_secs() + 2);

#[derive(Debug, Clone)]
pub struct Dynamo {
    client: Client,
    table_prefix: String,
    listing_lag: Duration,
}

/// One page of one partition of a table or index.
struct IndexPage<'a> {
    table: tables::TableDef,
    /// `None` for the table itself.
    index: Option<&'a str>,
    partition: (&'a str, &'a str),
    limit: usize,
    cursor: Option<&'a str>,
    /// Highest sort key first (newest, for time-sorted keys).
    newest_first: bool,
}

/// A page of what a query or scan returned, with the cursor of the next.
fn page_of<T: DeserializeOwned>(
    items: Option<Vec<HashMap<String, AttributeValue>>>,
    last_key: Option<HashMap<String, AttributeValue>>,
) -> PortResult<Page<T>> {
    Ok(Page {
        items: serde_dynamo::from_items(items.unwrap_or_default())?,
        next_cursor: cursor::of_last_key(last_key),
    })
}

fn limit(limit: usize) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX)
}

impl Dynamo {
    pub fn new(client: Client, table_prefix: &str) -> Self {
        Dynamo {
            client,
            table_prefix: table_prefix.to_owned(),
            listing_lag: LISTING_LAG,
        }
    }

    /// The same tables with another bound on index lag (DynamoDB Local's
    /// indexes do not lag).
    pub fn with_listing_lag(self, listing_lag: Duration) -> Self {
        Dynamo { listing_lag, ..self }
    }

    /// The deployed name of a table.
    pub fn table(&self, table: tables::TableDef) -> String {
        format!("{}{}", self.table_prefix, table.name)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn get<T: DeserializeOwned>(&self, table: tables::TableDef, key: &str) -> PortResult<Option<T>> {
        let output = self
            .client
            .get_item()
            .table_name(self.table(table))
            .key(table.hash_key, AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await?;
        Ok(output.item.map(serde_dynamo::from_item).transpose()?)
    }

    /// Deletes the item with this key (`(attribute, value)` pairs).
    async fn delete(&self, table: tables::TableDef, key: &[(&str, &str)]) -> PortResult<()> {
        let key = key
            .iter()
            .map(|(name, value)| ((*name).to_owned(), AttributeValue::S((*value).to_owned())))
            .collect();
        self.client
            .delete_item()
            .table_name(self.table(table))
            .set_key(Some(key))
            .send()
            .await?;
        Ok(())
    }

    /// Puts an item; with `if_new`, only if no item has its key yet.
    async fn put<T: Serialize>(&self, table: tables::TableDef, record: &T, if_new: bool) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(self.table(table))
            .set_item(Some(serde_dynamo::to_item(record)?))
            .set_condition_expression(if_new.then(|| format!("attribute_not_exists({})", table.hash_key)))
            .send()
            .await?;
        Ok(())
    }

    /// Writes `items` all or none; `ConditionFailed` if one of their
    /// conditions failed, `TransactionConflict` if a concurrent transaction
    /// on one of them got in first (the conditions were then not all
    /// checked: nothing can be concluded from them, only tried again).
    async fn transact(&self, items: Vec<TransactWriteItem>) -> PortResult<()> {
        match self.transact_or_refused(items).await? {
            None => Ok(()),
            Some(_) => Err(PortError::ConditionFailed),
        }
    }

    /// [`Dynamo::transact`], telling a refusal's reasons, one per item in
    /// order (with the refused item where asked for), when a condition
    /// failed: `None` once written.
    async fn transact_or_refused(&self, items: Vec<TransactWriteItem>) -> PortResult<Option<Vec<CancellationReason>>> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let Err(error) = result else {
            return Ok(None);
        };
        let reasons = match error.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                cancelled.cancellation_reasons().to_vec()
            }
            _ => Vec::new(),
        };
        let any = |code: &str| reasons.iter().any(|reason| reason.code() == Some(code));
        if any("ConditionalCheckFailed") {
            Ok(Some(reasons))
        } else if any("TransactionConflict") {
            Err(PortError::TransactionConflict)
        } else {
            Err(error.into())
        }
    }

    /// A query of one partition (`attribute = value`) of a table or index.
    fn partition(
        &self,
        table: tables::TableDef,
        index: Option<&str>,
        (attribute, value): (&str, &str),
    ) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(self.table(table))
            .set_index_name(index.map(str::to_owned))
            .key_condition_expression("#partition = :partition")
            .expression_attribute_names("#partition", attribute)
            .expression_attribute_values(":partition", AttributeValue::S(value.to_owned()))
    }

    /// Every item a scan finds, all pages of it (small tables only).
    pub(crate) async fn scanned<T: DeserializeOwned>(scan: ScanFluentBuilder) -> PortResult<Vec<T>> {
        let items = scan.into_paginator().items().send().collect::<Vec<_>>().await;
        items
            .into_iter()
            .map(|item| Ok(serde_dynamo::from_item(item?)?))
            .collect()
    }

    /// Every item a query finds, all pages of it.
    async fn all<T: DeserializeOwned>(query: QueryFluentBuilder) -> PortResult<Vec<T>> {
        let items = query.into_paginator().items().send().collect::<Vec<_>>().await;
        items
            .into_iter()
            .map(|item| Ok(serde_dynamo::from_item(item?)?))
            .collect()
    }

    async fn index_page<T: DeserializeOwned>(&self, page: IndexPage<'_>) -> PortResult<Page<T>> {
        let (attribute, value) = page.partition;
        let start = page
            .cursor
            .map(|c| cursor::start_key(c, &page.table.cursor_keys(page.index), &[(attribute, value)]))
            .transpose()?;
        let output = self
            .partition(page.table, page.index, page.partition)
            .scan_index_forward(!page.newest_first)
            .limit(limit(page.limit))
            .set_exclusive_start_key(start)
            .send()
            .await?;
        page_of(output.items, output.last_evaluated_key)
    }

    /// One page of a whole table, `limit` items at most: the listing of a
    /// small back-office collection, never a full scan per request.
    async fn scan_page<T: DeserializeOwned>(
        &self,
        table: tables::TableDef,
        size: usize,
        cursor: Option<&str>,
    ) -> PortResult<Page<T>> {
        let keys = table.cursor_keys(None);
        let output = self
            .client
            .scan()
            .table_name(self.table(table))
            .limit(limit(size))
            .set_exclusive_start_key(cursor.map(|c| cursor::start_key(c, &keys, &[])).transpose()?)
            .send()
            .await?;
        page_of(output.items, output.last_evaluated_key)
    }
}
