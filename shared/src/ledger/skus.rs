//! [`SkuStore`] on DynamoDB, with the sparse `on_sale` index the
//! storefront reads: only published SKUs carry its key, and the
//! reconciliation job takes it off once a sale is over and paid for, so
//! reads walk live sales and those a few minutes past their end, never the
//! history.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};

use super::{Dynamo, cursor, limit, page_of, tables};
use crate::{
    model::{Sku, SkuStatus},
    ports::{LiveFilter, Page, PortError, PortResult, SaleSearch, SkuStore},
    ts,
};

/// The value of the sparse `on_sale` attribute, present on published SKUs.
const ON_SALE: &str = "1";

/// A SKU's item, with the `on_sale` index key when it is listed on sale.
fn item(sku: &Sku) -> PortResult<HashMap<String, AttributeValue>> {
    let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(sku)?;
    if sku.listed_on_sale() {
        item.insert("on_sale".into(), AttributeValue::S(ON_SALE.into()));
    }
    Ok(item)
}

impl Dynamo {
    /// Ids of published SKUs whose sale has not ended, passing `filter`.
    async fn on_sale_ids(&self, filter: &str, values: &[(&str, &str)], now: DateTime<Utc>) -> PortResult<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Id {
            id: String,
        }
        let mut query = self
            .partition(tables::SKUS, Some(tables::SKUS_ON_SALE), ("on_sale", ON_SALE))
            .filter_expression(format!("seckill_end > :now AND ({filter})"))
            .projection_expression("id")
            .expression_attribute_values(":now", AttributeValue::S(ts::format(&now)));
        for (name, value) in values {
            query = query.expression_attribute_values(*name, AttributeValue::S((*value).to_owned()));
        }
        let ids: Vec<Id> = Self::all(query).await?;
        Ok(ids.into_iter().map(|found| found.id).collect())
    }
}

impl SkuStore for Dynamo {
    async fn get_sku(&self, id: &str) -> PortResult<Option<Sku>> {
        self.get(tables::SKUS, id).await
    }

    async fn put_sku(&self, sku: &Sku) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(self.table(tables::SKUS))
            .set_item(Some(item(sku)?))
            .send()
            .await?;
        Ok(())
    }

    async fn delete_sku(&self, id: &str) -> PortResult<()> {
        self.delete(tables::SKUS, &[("id", id)]).await
    }

    async fn sku_page(&self, limit: usize, cursor: Option<&str>) -> PortResult<Page<Sku>> {
        self.scan_page(tables::SKUS, limit, cursor).await
    }

    /// The `on_sale` index by start time, narrowed by the search's filters.
    async fn skus_on_sale(
        &self,
        search: &SaleSearch,
        now: DateTime<Utc>,
        size: usize,
        cursor: Option<&str>,
    ) -> PortResult<Page<Sku>> {
        let mut key = "on_sale = :on_sale".to_owned();
        let mut filters = vec!["seckill_end > :now"];
        let mut values = vec![(":on_sale", ON_SALE.to_owned()), (":now", ts::format(&now))];
        if let Some((from, to)) = search.starting {
            key.push_str(" AND seckill_begin BETWEEN :from AND :to");
            values.push((":from", ts::format(&from)));
            values.push((":to", ts::format(&(to - chrono::Duration::milliseconds(1)))));
        }
        if let Some(category) = &search.category {
            filters.push("(category1_id = :category OR category2_id = :category OR category3_id = :category)");
            values.push((":category", category.clone()));
        }
        if let Some(brand) = &search.brand {
            filters.push("brand_id = :brand");
            values.push((":brand", brand.clone()));
        }
        if let Some(q) = &search.q {
            filters.push("contains(#name, :q)");
            values.push((":q", q.clone()));
        }
        let keys = tables::SKUS.cursor_keys(Some(tables::SKUS_ON_SALE));
        let start = cursor
            .map(|c| cursor::start_key(c, &keys, &[("on_sale", ON_SALE)]))
            .transpose()?;
        let mut query = self
            .client
            .query()
            .table_name(self.table(tables::SKUS))
            .index_name(tables::SKUS_ON_SALE)
            .key_condition_expression(key)
            .filter_expression(filters.join(" AND "))
            .limit(limit(size))
            .set_exclusive_start_key(start);
        if search.q.is_some() {
            query = query.expression_attribute_names("#name", "name");
        }
        for (name, value) in values {
            query = query.expression_attribute_values(name, AttributeValue::S(value));
        }
        let output = query.send().await?;
        page_of(output.items, output.last_evaluated_key)
    }

    async fn live_skus_matching(&self, filter: LiveFilter<'_>, now: DateTime<Utc>) -> PortResult<Vec<String>> {
        match filter {
            LiveFilter::Brand(id) => self.on_sale_ids("brand_id = :id", &[(":id", id)], now).await,
            LiveFilter::Category(id) => {
                let any_level = "category1_id = :id OR category2_id = :id OR category3_id = :id";
                self.on_sale_ids(any_level, &[(":id", id)], now).await
            }
            LiveFilter::Ids(ids) => {
                let mut live = Vec::new();
                for id in ids {
                    let on_sale = self
                        .get_sku(id)
                        .await?
                        .filter(|sku| sku.status == SkuStatus::Seckill && sku.fields.seckill_end > now);
                    live.extend(on_sale.map(|sku| sku.id));
                }
                Ok(live)
            }
        }
    }

    async fn mark_published(&self, id: &str, now: DateTime<Utc>) -> PortResult<Sku> {
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
            .expression_attribute_values(":on_sale", AttributeValue::S(ON_SALE.into()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await?;
        Ok(serde_dynamo::from_item(output.attributes.unwrap_or_default())?)
    }

    async fn set_sku_shards(&self, id: &str, shards: u32) -> PortResult<()> {
        self.client
            .update_item()
            .table_name(self.table(tables::SKUS))
            .key("id", AttributeValue::S(id.to_owned()))
            .update_expression("SET shards = :shards")
            .condition_expression("attribute_exists(id) AND (attribute_not_exists(shards) OR shards = :shards)")
            .expression_attribute_values(":shards", AttributeValue::N(shards.to_string()))
            .send()
            .await?;
        Ok(())
    }

    async fn take_off_sale(&self, id: &str, ended_before: DateTime<Utc>) -> PortResult<bool> {
        let taken_off = self
            .client
            .update_item()
            .table_name(self.table(tables::SKUS))
            .key("id", AttributeValue::S(id.to_owned()))
            .update_expression("REMOVE on_sale")
            .condition_expression("attribute_exists(on_sale) AND seckill_end < :ended_before")
            .expression_attribute_values(":ended_before", AttributeValue::S(ts::format(&ended_before)))
            .send()
            .await;
        match taken_off {
            Ok(_) => Ok(true),
            Err(error) => match PortError::from(error) {
                PortError::ConditionFailed => Ok(false),
                other => Err(other),
            },
        }
    }
}
