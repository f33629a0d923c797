//! [`RecordStore`] on DynamoDB: activities, time slots, brands and
//! categories, each in its own table, and the SKU ↔ activity links.

use super::{Dynamo, IndexPage, tables};
use crate::{
    model::{CategoryFields, Record, SkuActivity, Stored},
    ports::{Page, PortResult, RecordStore},
};

impl RecordStore for Dynamo {
    async fn insert_record<F: Record>(&self, record: &Stored<F>) -> PortResult<()> {
        self.put(tables::of(F::KIND), record, true).await
    }

    async fn put_record<F: Record>(&self, record: &Stored<F>) -> PortResult<()> {
        self.put(tables::of(F::KIND), record, false).await
    }

    async fn get_record<F: Record>(&self, id: &str) -> PortResult<Option<Stored<F>>> {
        self.get(tables::of(F::KIND), id).await
    }

    async fn delete_record<F: Record>(&self, id: &str) -> PortResult<()> {
        let table = tables::of(F::KIND);
        self.delete(table, &[(table.hash_key, id)]).await
    }

    async fn page_records<F: Record>(&self, limit: usize, cursor: Option<&str>) -> PortResult<Page<Stored<F>>> {
        self.scan_page(tables::of(F::KIND), limit, cursor).await
    }

    async fn child_categories(
        &self,
        parent_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> PortResult<Page<Stored<CategoryFields>>> {
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

    async fn link(&self, link: &SkuActivity) -> PortResult<()> {
        self.put(tables::SKU_ACTIVITIES, link, false).await
    }

    async fn unlink(&self, link: &SkuActivity) -> PortResult<()> {
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
    ) -> PortResult<Page<SkuActivity>> {
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

    async fn activities_of_sku(&self, sku_id: &str) -> PortResult<Vec<SkuActivity>> {
        Self::all(self.partition(
            tables::SKU_ACTIVITIES,
            Some(tables::SKU_ACTIVITIES_BY_SKU),
            ("sku_id", sku_id),
        ))
        .await
    }
}
