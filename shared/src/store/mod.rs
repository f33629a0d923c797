//! The DynamoDB adapter: the ledger behind [`OrderStore`], [`SkuStore`] and
//! [`AccountStore`]. Every write that can race is conditional.

mod accounts;
mod campaigns;
mod catalog;
mod orders;
pub mod tables;

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    Client,
    error::{DisplayErrorContext, ProvideErrorMetadata, SdkError},
    operation::query::builders::QueryFluentBuilder,
    types::{AttributeValue, ReturnValue},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    Error,
    catalog::SaleSearch,
    flash_sale::{OrderStore, SkuStore},
    model::{Order, OrderStatus, Sku, SkuStatus},
    ts,
};

/// The adapter layer's error: the one distinction the domain acts on is
/// whether a conditional write lost its race.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the conditional write lost to a concurrent change")]
    ConditionFailed,
    #[error("DynamoDB: {0}")]
    Backend(String),
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::ConditionFailed => Error::Conflict("the record changed concurrently; retry".into()),
            StoreError::Backend(detail) => Error::Unavailable(detail),
        }
    }
}

impl<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug> From<SdkError<E, R>> for StoreError {
    fn from(error: SdkError<E, R>) -> Self {
        if error.code() == Some("ConditionalCheckFailedException") {
            StoreError::ConditionFailed
        } else {
            StoreError::Backend(DisplayErrorContext(&error).to_string())
        }
    }
}

impl From<aws_sdk_dynamodb::error::BuildError> for StoreError {
    fn from(error: aws_sdk_dynamodb::error::BuildError) -> Self {
        StoreError::Backend(format!("request not built: {error}"))
    }
}

impl From<serde_dynamo::Error> for StoreError {
    fn from(error: serde_dynamo::Error) -> Self {
        StoreError::Backend(format!("item does not match its record type: {error}"))
    }
}

/// One page of a listing and the opaque cursor of the next, if any.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// DynamoDB's `LastEvaluatedKey` (string attributes only, as every key here
/// is) as URL-safe base64 of its JSON.
fn encode_cursor(key: Option<HashMap<String, AttributeValue>>) -> Option<String> {
    let key: HashMap<String, String> = key?
        .into_iter()
        .filter_map(|(name, value)| value.as_s().ok().map(|s| (name, s.clone())))
        .collect();
    Some(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&key).expect("a string map serialises")))
}

/// Only a cursor this API issued for this very listing is accepted: the
/// exact key attributes it would hold, and `pinned` ones (the caller's own
/// partition) with the values the query uses; anything else would reach
/// DynamoDB as a malformed key.
/// A page of what a query or scan returned, with the cursor of the next.
fn page_of<T: DeserializeOwned>(
    items: Option<Vec<HashMap<String, AttributeValue>>>,
    last_key: Option<HashMap<String, AttributeValue>>,
) -> Result<Page<T>, Error> {
    Ok(Page {
        items: serde_dynamo::from_items(items.unwrap_or_default()).map_err(StoreError::from)?,
        next_cursor: encode_cursor(last_key),
    })
}

fn decode_cursor(
    cursor: &str,
    keys: &[&str],
    pinned: &[(&str, &str)],
) -> Result<HashMap<String, AttributeValue>, Error> {
    let bad = || Error::Validation("`cursor` is not one this API returned for this listing".into());
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let key: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let exact_keys = key.len() == keys.len() && keys.iter().all(|k| key.contains_key(*k));
    let pinned_match = pinned
        .iter()
        .all(|(k, v)| key.get(*k).is_some_and(|actual| actual == v));
    if !exact_keys || !pinned_match {
        return Err(bad());
    }
    Ok(key.into_iter().map(|(k, v)| (k, AttributeValue::S(v))).collect())
}

#[derive(Debug, Clone)]
pub struct Dynamo {
    client: Client,
    table_prefix: String,
}

impl Dynamo {
    pub fn new(client: Client, table_prefix: &str) -> Self {
        Dynamo {
            client,
            table_prefix: table_prefix.to_owned(),
        }
    }

    /// The deployed name of a table.
    pub fn table(&self, table: tables::TableDef) -> String {
        format!("{}{}", self.table_prefix, table.name)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        table: &str,
        key: &str,
        value: &str,
    ) -> Result<Option<T>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(table)
            .key(key, AttributeValue::S(value.to_owned()))
            .consistent_read(true)
            .send()
            .await?;
        Ok(output.item.map(serde_dynamo::from_item).transpose()?)
    }

    /// Deletes the item with this key (`(attribute, value)` pairs).
    pub(crate) async fn delete(&self, table: tables::TableDef, key: &[(&str, &str)]) -> Result<(), StoreError> {
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

    /// Puts an item; with `new_key` set, only if no item has that key yet.
    pub(crate) async fn put<T: Serialize>(
        &self,
        table: &str,
        record: &T,
        new_key: Option<&str>,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(serde_dynamo::to_item(record)?))
            .set_condition_expression(new_key.map(|key| format!("attribute_not_exists({key})")))
            .send()
            .await?;
        Ok(())
    }
}

/// One page of one partition of a table or index.
pub(crate) struct IndexPage<'a> {
    pub table: tables::TableDef,
    /// `None` for the table itself.
    pub index: Option<&'a str>,
    pub partition: (&'a str, &'a str),
    pub limit: usize,
    pub cursor: Option<&'a str>,
    /// Highest sort key first (newest, for time-sorted keys).
    pub newest_first: bool,
}

impl Dynamo {
    /// A query of one partition (`attribute = value`) of a table or index.
    pub(crate) fn partition(
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

    /// Every item a query finds, all pages of it.
    pub(crate) async fn all<T: DeserializeOwned>(query: QueryFluentBuilder) -> Result<Vec<T>, StoreError> {
        let items = query.into_paginator().items().send().collect::<Vec<_>>().await;
        items
            .into_iter()
            .map(|item| Ok(serde_dynamo::from_item(item?)?))
            .collect()
    }

    pub(crate) async fn index_page<T: DeserializeOwned>(&self, page: IndexPage<'_>) -> Result<Page<T>, Error> {
        let (attribute, value) = page.partition;
        let start = page
            .cursor
            .map(|c| decode_cursor(c, &page.table.cursor_keys(page.index), &[(attribute, value)]))
            .transpose()?;
        let output = self
            .partition(page.table, page.index, page.partition)
            .scan_index_forward(!page.newest_first)
            .limit(i32::try_from(page.limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(StoreError::from)?;
        page_of(output.items, output.last_evaluated_key)
    }
}

impl OrderStore for Dynamo {
    async fn insert_order(&self, order: &Order) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(self.table(tables::ORDERS))
            .set_item(Some(orders::item(order)?))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await?;
        Ok(())
    }

    async fn replace_order(&self, next: &Order, current: &Order) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(self.table(tables::ORDERS))
            .set_item(Some(orders::item(next)?))
            .condition_expression("#version = :version")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":version", AttributeValue::N(current.version.to_string()))
            .send()
            .await?;
        Ok(())
    }

    async fn get_order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        self.get(&self.table(tables::ORDERS), "id", id).await
    }

    async fn orders_of_user(&self, username: &str, limit: usize, cursor: Option<&str>) -> Result<Page<Order>, Error> {
        self.index_page(IndexPage {
            table: tables::ORDERS,
            index: Some(tables::ORDERS_BY_USER),
            partition: ("username", username),
            limit,
            cursor,
            newest_first: true,
        })
        .await
    }

    async fn live_orders_of_sku(&self, sku_id: &str) -> Result<Vec<Order>, StoreError> {
        let live = self
            .partition(tables::ORDERS, Some(tables::ORDERS_BY_SKU), ("sku_id", sku_id))
            .filter_expression("#status <> :cancelled")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":cancelled", AttributeValue::S(OrderStatus::Cancelled.as_str().into()));
        Self::all(live).await
    }
}

impl SkuStore for Dynamo {
    async fn get_sku(&self, id: &str) -> Result<Option<Sku>, StoreError> {
        self.get(&self.table(tables::SKUS), "id", id).await
    }

    async fn put_sku(&self, sku: &Sku) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(self.table(tables::SKUS))
            .set_item(Some(catalog::with_sale_index(serde_dynamo::to_item(sku)?, sku.status)))
            .send()
            .await?;
        Ok(())
    }

    async fn delete_sku(&self, id: &str) -> Result<(), StoreError> {
        self.delete(tables::SKUS, &[("id", id)]).await
    }

    async fn sku_page(&self, limit: usize, cursor: Option<&str>) -> Result<Page<Sku>, Error> {
        self.scan_page(tables::SKUS, limit, cursor).await
    }

    async fn skus_on_sale(
        &self,
        search: &SaleSearch,
        now: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Sku>, Error> {
        catalog::skus_on_sale(self, search, now, limit, cursor).await
    }

    async fn mark_published(&self, id: &str, now: DateTime<Utc>) -> Result<Sku, StoreError> {
        let now = AttributeValue::S(ts::format(&now));
        let output = self
            .client
            .update_item()
            .table_name(self.table(tables::SKUS))
            .key("id", AttributeValue::S(id.to_owned()))
            .update_expression(
                "SET published_at = if_not_exists(published_at, :now), #status = :seckill, update_time = :now, \
                 on_sale = :on_sale",
            )
            .condition_expression("attribute_exists(id)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", now)
            .expression_attribute_values(":seckill", AttributeValue::N((SkuStatus::Seckill as u8).to_string()))
            .expression_attribute_values(":on_sale", AttributeValue::S(catalog::ON_SALE.into()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await?;
        Ok(serde_dynamo::from_item(output.attributes.unwrap_or_default())?)
    }
}
