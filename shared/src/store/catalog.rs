//! The back office's records: catalog entries, SKU ↔ activity links, and
//! the on-sale index of SKUs.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::{Dynamo, IndexPage, Page, StoreError, decode_cursor, page_of, tables};
use crate::{
    Error,
    backoffice::{CatalogStore, Fields, LiveFilter},
    catalog::SaleSearch,
    flash_sale::SkuStore,
    model::{CategoryFields, Sku, SkuActivity, SkuStatus, Stored},
    ts,
};

impl Dynamo {
    /// One page of a whole table, `limit` items at most: the listing of a
    /// small back-office collection, never a full scan per request.
    pub(crate) async fn scan_page<T: serde::de::DeserializeOwned>(
        &self,
        table: tables::TableDef,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<T>, Error> {
        let keys = table.cursor_keys(None);
        let output = self
            .client
            .scan()
            .table_name(self.table(table))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(cursor.map(|c| decode_cursor(c, &keys, &[])).transpose()?)
            .send()
            .await
            .map_err(StoreError::from)?;
        page_of(output.items, output.last_evaluated_key)
    }

    /// Ids of published SKUs whose sale has not ended, passing `filter`.
    async fn on_sale_ids(
        &self,
        filter: &str,
        values: &[(&str, &str)],
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, Error> {
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

/// The storefront query: the `on_sale` index by start time, narrowed by
/// the search's filters.
pub(crate) async fn skus_on_sale(
    store: &Dynamo,
    search: &SaleSearch,
    now: DateTime<Utc>,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<Sku>, Error> {
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
    let start = cursor
        .map(|c| {
            let keys = tables::SKUS.cursor_keys(Some(tables::SKUS_ON_SALE));
            decode_cursor(c, &keys, &[("on_sale", ON_SALE)])
        })
        .transpose()?;
    let mut query = store
        .client
        .query()
        .table_name(store.table(tables::SKUS))
        .index_name(tables::SKUS_ON_SALE)
        .key_condition_expression(key)
        .filter_expression(filters.join(" AND "))
        .limit(i32::try_from(limit).unwrap_or(i32::MAX))
        .set_exclusive_start_key(start);
    if search.q.is_some() {
        query = query.expression_attribute_names("#name", "name");
    }
    for (name, value) in values {
        query = query.expression_attribute_values(name, AttributeValue::S(value));
    }
    let output = query.send().await.map_err(StoreError::from)?;
    page_of(output.items, output.last_evaluated_key)
}

/// The value of the sparse `on_sale` attribute, present on published SKUs.
pub(crate) const ON_SALE: &str = "1";

/// Adds the `on_sale` index attribute to a SKU's item when it is on sale.
pub(crate) fn with_sale_index(
    mut item: std::collections::HashMap<String, AttributeValue>,
    status: SkuStatus,
) -> std::collections::HashMap<String, AttributeValue> {
    if status == SkuStatus::Seckill {
        item.insert("on_sale".into(), AttributeValue::S(ON_SALE.into()));
    }
    item
}

impl CatalogStore for Dynamo {
    async fn insert_record<F: Fields>(&self, record: &Stored<F>) -> Result<(), StoreError> {
        self.put(&self.table(F::TABLE), record, Some(F::TABLE.hash_key)).await
    }

    async fn put_record<F: Fields>(&self, record: &Stored<F>) -> Result<(), StoreError> {
        self.put(&self.table(F::TABLE), record, None).await
    }

    async fn get_record<F: Fields>(&self, id: &str) -> Result<Option<Stored<F>>, StoreError> {
        self.get(&self.table(F::TABLE), F::TABLE.hash_key, id).await
    }

    async fn delete_record<F: Fields>(&self, id: &str) -> Result<(), StoreError> {
        self.delete(F::TABLE, &[(F::TABLE.hash_key, id)]).await
    }

    async fn page_records<F: Fields>(&self, limit: usize, cursor: Option<&str>) -> Result<Page<Stored<F>>, Error> {
        self.scan_page(F::TABLE, limit, cursor).await
    }

    async fn child_categories(
        &self,
        parent_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Stored<CategoryFields>>, Error> {
        self.index_page(IndexPage {
            table: tables::CATEGORIES,
            index: Some(tables::CATEGORIES_BY_PARENT),
            partition: ("parent_id", parent_id),
            limit,
            cursor,
            newest_first: false,
        })
        .await
    }

    async fn live_skus_matching(&self, filter: LiveFilter<'_>, now: DateTime<Utc>) -> Result<Vec<String>, Error> {
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

    async fn link(&self, link: &SkuActivity) -> Result<(), StoreError> {
        self.put(&self.table(tables::SKU_ACTIVITIES), link, None).await
    }

    async fn unlink(&self, link: &SkuActivity) -> Result<(), StoreError> {
        let key = [
            ("activity_id", link.activity_id.as_str()),
            ("sku_id", link.sku_id.as_str()),
        ];
        self.delete(tables::SKU_ACTIVITIES, &key).await
    }

    async fn skus_of_activity(
        &self,
        activity_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<SkuActivity>, Error> {
        self.index_page(IndexPage {
            table: tables::SKU_ACTIVITIES,
            index: None,
            partition: ("activity_id", activity_id),
            limit,
            cursor,
            newest_first: false,
        })
        .await
    }

    async fn activities_of_sku(&self, sku_id: &str) -> Result<Vec<SkuActivity>, StoreError> {
        Self::all(self.partition(
            tables::SKU_ACTIVITIES,
            Some(tables::SKU_ACTIVITIES_BY_SKU),
            ("sku_id", sku_id),
        ))
        .await
    }
}
