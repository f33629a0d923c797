//! The back office's catalog records (activities, time slots, brands,
//! categories) share one life cycle — validate, create or put, read, page,
//! delete unless still in use — written once here over [`Fields`].

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};
use ulid::Ulid;

use crate::{
    Error,
    error::invalid,
    http::is_valid_id,
    model::{ActivityFields, BrandFields, CategoryFields, Deleted, ROOT_CATEGORY, SkuActivity, SlotFields, Stored},
    store::{Page, StoreError, tables, tables::TableDef},
};

/// What one kind of catalog record needs beyond storage.
pub trait Fields: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    const TABLE: TableDef;
    /// Its name in errors ("brand not found").
    const KIND: &'static str;

    /// Checks the fields and fills in derived ones.
    fn validate(&mut self) -> Result<(), Error>;

    /// Checks references to other records (a category's parent).
    fn check_links(&self, _id: &str, _catalog: &impl CatalogStore) -> impl Future<Output = Result<(), Error>> + Send {
        async { Ok(()) }
    }

    /// Why the record cannot be deleted now, if it cannot.
    fn in_use(
        _id: &str,
        _catalog: &impl CatalogStore,
        _now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<String>, Error>> + Send {
        async { Ok(None) }
    }

    /// Soft-deletable kinds mark themselves deleted and return `true`.
    fn mark_deleted(&mut self) -> bool {
        false
    }

    /// Whether listings show it (soft-deleted records are hidden).
    fn listed(&self) -> bool {
        true
    }
}

/// The DynamoDB side of the back office.
pub trait CatalogStore: Sync {
    /// Fails with `ConditionFailed` if the id exists.
    fn insert_record<F: Fields>(&self, record: &Stored<F>) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn put_record<F: Fields>(&self, record: &Stored<F>) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get_record<F: Fields>(&self, id: &str) -> impl Future<Output = Result<Option<Stored<F>>, StoreError>> + Send;
    fn delete_record<F: Fields>(&self, id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn page_records<F: Fields>(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> impl Future<Output = Result<Page<Stored<F>>, Error>> + Send;
    fn child_categories(
        &self,
        parent_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> impl Future<Output = Result<Page<Stored<CategoryFields>>, Error>> + Send;
    /// SKUs on sale (published) whose sale has not ended by `now`, and that
    /// match `filter` (brand or category id); a handful per live promotion.
    fn live_skus_matching(
        &self,
        filter: LiveFilter<'_>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<String>, Error>> + Send;
    fn link(&self, link: &SkuActivity) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn unlink(&self, link: &SkuActivity) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn skus_of_activity(
        &self,
        activity_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> impl Future<Output = Result<Page<SkuActivity>, Error>> + Send;
    fn activities_of_sku(&self, sku_id: &str) -> impl Future<Output = Result<Vec<SkuActivity>, StoreError>> + Send;
}

/// Which live SKUs [`CatalogStore::live_skus_matching`] looks for.
#[derive(Debug, Clone, Copy)]
pub enum LiveFilter<'a> {
    Brand(&'a str),
    Category(&'a str),
    Ids(&'a [String]),
}

fn check_name(name: &str, max: usize) -> Result<(), Error> {
    let len = name.trim().chars().count();
    if (1..=max).contains(&len) {
        Ok(())
    } else {
        Err(invalid(format!("`name` must be 1-{max} characters")))
    }
}

fn check_flag(field: &str, value: &str) -> Result<(), Error> {
    match value {
        "0" | "1" => Ok(()),
        _ => Err(invalid(format!("`{field}` must be \"0\" or \"1\""))),
    }
}

fn hours_between(seconds: i64) -> f64 {
    (seconds as f64 / 36.0).round() / 100.0
}

impl Fields for ActivityFields {
    const TABLE: TableDef = tables::ACTIVITIES;
    const KIND: &'static str = "activity";

    fn validate(&mut self) -> Result<(), Error> {
        check_name(&self.name, 100)?;
        // Deleting is DELETE's job; a written activity is a live one (a PUT
        // of a deleted activity restores it).
        self.is_del = Deleted::No;
        if let (Some(begin), Some(end)) = (self.begintime, self.endtime) {
            if end <= begin {
                return Err(invalid("`endtime` must be after `begintime`"));
            }
            self.total_time
                .get_or_insert(hours_between((end - begin).num_seconds()));
        }
        if self
            .total_time
            .is_some_and(|hours| !(0.0..=24.0 * 366.0).contains(&hours))
        {
            return Err(invalid("`total_time` must be between 0 and 8784 hours"));
        }
        Ok(())
    }

    async fn in_use(id: &str, catalog: &impl CatalogStore, now: DateTime<Utc>) -> Result<Option<String>, Error> {
        let linked: Vec<String> = catalog
            .skus_of_activity(id, 1000, None)
            .await?
            .items
            .into_iter()
            .map(|link| link.sku_id)
            .collect();
        let live = catalog.live_skus_matching(LiveFilter::Ids(&linked), now).await?;
        Ok(live.first().map(|sku| format!("linked SKU {sku} is on sale")))
    }

    fn mark_deleted(&mut self) -> bool {
        self.is_del = Deleted::Yes;
        true
    }

    fn listed(&self) -> bool {
        self.is_del == Deleted::No
    }
}

impl Fields for SlotFields {
    const TABLE: TableDef = tables::SLOTS;
    const KIND: &'static str = "slot";

    fn validate(&mut self) -> Result<(), Error> {
        check_name(&self.name, 20)?;
        if self.endtime <= self.starttime {
            return Err(invalid(
                "`endtime` must be after `starttime` (a slot lies within one day)",
            ));
        }
        self.total_time
            .get_or_insert(hours_between((self.endtime - self.starttime).num_seconds()));
        Ok(())
    }
}

impl Fields for BrandFields {
    const TABLE: TableDef = tables::BRANDS;
    const KIND: &'static str = "brand";

    fn validate(&mut self) -> Result<(), Error> {
        check_name(&self.name, 100)?;
        if self.letter.as_ref().is_some_and(|l| l.chars().count() != 1) {
            return Err(invalid("`letter` must be one character"));
        }
        if self.image.as_ref().is_some_and(|i| i.chars().count() > 1000) {
            return Err(invalid("`image` must be at most 1000 characters"));
        }
        Ok(())
    }

    async fn in_use(id: &str, catalog: &impl CatalogStore, now: DateTime<Utc>) -> Result<Option<String>, Error> {
        let live = catalog.live_skus_matching(LiveFilter::Brand(id), now).await?;
        Ok(live.first().map(|sku| format!("SKU {sku} of this brand is on sale")))
    }
}

/// Categories nest at most this deep (`tb_category`'s three levels).
pub const CATEGORY_LEVELS: usize = 3;

impl Fields for CategoryFields {
    const TABLE: TableDef = tables::CATEGORIES;
    const KIND: &'static str = "category";

    fn validate(&mut self) -> Result<(), Error> {
        check_name(&self.name, 50)?;
        check_flag("is_show", &self.is_show)?;
        check_flag("is_menu", &self.is_menu)?;
        if self.goods_num < 0 {
            return Err(invalid("`goods_num` must not be negative"));
        }
        Ok(())
    }

    /// The parent must exist and the new node must not be deeper than the
    /// third level (nor, on an update, become its own ancestor).
    async fn check_links(&self, id: &str, catalog: &impl CatalogStore) -> Result<(), Error> {
        let mut depth = 1;
        let mut parent = self.parent_id.clone();
        while parent != ROOT_CATEGORY {
            if parent == id {
                return Err(invalid("a category cannot be its own ancestor"));
            }
            depth += 1;
            if depth > CATEGORY_LEVELS {
                return Err(invalid(format!(
                    "categories nest at most {CATEGORY_LEVELS} levels deep"
                )));
            }
            let found = catalog
                .get_record::<CategoryFields>(&parent)
                .await?
                .ok_or_else(|| invalid(format!("parent category `{parent}` does not exist")))?;
            parent = found.fields.parent_id;
        }
        Ok(())
    }

    async fn in_use(id: &str, catalog: &impl CatalogStore, now: DateTime<Utc>) -> Result<Option<String>, Error> {
        if !catalog.child_categories(id, 1, None).await?.items.is_empty() {
            return Ok(Some("it has subcategories".into()));
        }
        let live = catalog.live_skus_matching(LiveFilter::Category(id), now).await?;
        Ok(live.first().map(|sku| format!("SKU {sku} of this category is on sale")))
    }
}

pub async fn create<F: Fields>(catalog: &impl CatalogStore, mut fields: F) -> Result<Stored<F>, Error> {
    fields.validate()?;
    let record = Stored {
        id: Ulid::generate().to_string(),
        fields,
    };
    record.fields.check_links(&record.id, catalog).await?;
    catalog.insert_record(&record).await?;
    Ok(record)
}

/// Creates the record under the operator's id, or replaces it.
pub async fn put<F: Fields>(catalog: &impl CatalogStore, id: &str, mut fields: F) -> Result<Stored<F>, Error> {
    if !is_valid_id(id) {
        return Err(invalid("ids are 1-64 characters of letters, digits, `_`, `.` or `-`"));
    }
    fields.validate()?;
    let record = Stored {
        id: id.to_owned(),
        fields,
    };
    record.fields.check_links(id, catalog).await?;
    catalog.put_record(&record).await?;
    Ok(record)
}

pub async fn get<F: Fields>(catalog: &impl CatalogStore, id: &str) -> Result<Stored<F>, Error> {
    catalog
        .get_record::<F>(id)
        .await?
        .filter(|record| record.fields.listed())
        .ok_or(Error::NotFound(F::KIND))
}

pub async fn page<F: Fields>(
    catalog: &impl CatalogStore,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<Stored<F>>, Error> {
    let mut page = catalog.page_records::<F>(limit, cursor).await?;
    page.items.retain(|record| record.fields.listed());
    Ok(page)
}

pub async fn delete<F: Fields>(catalog: &impl CatalogStore, id: &str, now: DateTime<Utc>) -> Result<(), Error> {
    let mut record = get::<F>(catalog, id).await?;
    if let Some(reason) = F::in_use(id, catalog, now).await? {
        return Err(Error::Conflict(format!("this {} is still in use: {reason}", F::KIND)));
    }
    if record.fields.mark_deleted() {
        catalog.put_record(&record).await?;
    } else {
        catalog.delete_record::<F>(id).await?;
    }
    Ok(())
}
