//! The catalog: what is for sale and how it is organised. SKUs (created,
//! edited, deleted here; published by `flash_sale`) and the records around
//! them — activities, time slots, brands, categories — which share one life
//! cycle (validate, create or put, read, page, delete unless still in use),
//! written once here over [`Fields`].

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::{
    domain::flash_sale,
    error::{Error, invalid},
    ids,
    model::{
        ActivityFields, BrandFields, CategoryFields, Deleted, ROOT_CATEGORY, Record, Sku, SkuActivity, SkuFields,
        SkuStatus, SlotFields, Stored,
    },
    ports::{LiveFilter, OrderStore, Page, Ports, RecordStore, SkuStore, StockGate},
    validate,
};

/// What one kind of catalog record needs beyond storage.
pub trait Fields: Record {
    /// Checks the fields and fills in derived ones.
    fn validate(&mut self) -> Result<(), Error>;

    /// Checks references to other records (a category's parent).
    fn check_links(&self, _id: &str, _records: &impl RecordStore) -> impl Future<Output = Result<(), Error>> + Send {
        async { Ok(()) }
    }

    /// Why the record cannot be deleted now, if it cannot.
    fn in_use(
        _id: &str,
        _ledger: &(impl RecordStore + SkuStore),
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

fn hours_between(seconds: i64) -> f64 {
    (seconds as f64 / 36.0).round() / 100.0
}

impl Fields for ActivityFields {
    fn validate(&mut self) -> Result<(), Error> {
        validate::length("name", &self.name, 1..=100)?;
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
        validate::hours("total_time", &mut self.total_time, 24.0 * 366.0)
    }

    async fn in_use(
        id: &str,
        ledger: &(impl RecordStore + SkuStore),
        now: DateTime<Utc>,
    ) -> Result<Option<String>, Error> {
        let linked: Vec<String> = ledger
            .skus_of_activity(id, 1000, None)
            .await?
            .items
            .into_iter()
            .map(|link| link.sku_id)
            .collect();
        let live = ledger.live_skus_matching(LiveFilter::Ids(&linked), now).await?;
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
    fn validate(&mut self) -> Result<(), Error> {
        validate::length("name", &self.name, 1..=20)?;
        if self.endtime <= self.starttime {
            return Err(invalid(
                "`endtime` must be after `starttime` (a slot lies within one day)",
            ));
        }
        self.total_time
            .get_or_insert(hours_between((self.endtime - self.starttime).num_seconds()));
        validate::hours("total_time", &mut self.total_time, 24.0)
    }
}

impl Fields for BrandFields {
    fn validate(&mut self) -> Result<(), Error> {
        validate::length("name", &self.name, 1..=100)?;
        if self.letter.as_ref().is_some_and(|l| l.chars().count() != 1) {
            return Err(invalid("`letter` must be one character"));
        }
        validate::optional_length("image", self.image.as_deref(), 1000)
    }

    async fn in_use(
        id: &str,
        ledger: &(impl RecordStore + SkuStore),
        now: DateTime<Utc>,
    ) -> Result<Option<String>, Error> {
        let live = ledger.live_skus_matching(LiveFilter::Brand(id), now).await?;
        Ok(live.first().map(|sku| format!("SKU {sku} of this brand is on sale")))
    }
}

/// Categories nest at most this deep (`tb_category`'s three levels).
pub const CATEGORY_LEVELS: usize = 3;

impl Fields for CategoryFields {
    fn validate(&mut self) -> Result<(), Error> {
        validate::length("name", &self.name, 1..=50)?;
        validate::id(&self.parent_id)?;
        validate::flag("is_show", &self.is_show)?;
        validate::flag("is_menu", &self.is_menu)?;
        validate::range("goods_num", self.goods_num, 0..=i64::MAX)
    }

    /// The parent must exist and the new node must not be deeper than the
    /// third level (nor, on an update, become its own ancestor).
    async fn check_links(&self, id: &str, records: &impl RecordStore) -> Result<(), Error> {
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
            let found = records
                .get_record::<CategoryFields>(&parent)
                .await?
                .ok_or_else(|| invalid(format!("parent category `{parent}` does not exist")))?;
            parent = found.fields.parent_id;
        }
        Ok(())
    }

    async fn in_use(
        id: &str,
        ledger: &(impl RecordStore + SkuStore),
        now: DateTime<Utc>,
    ) -> Result<Option<String>, Error> {
        if !ledger.child_categories(id, 1, None).await?.items.is_empty() {
            return Ok(Some("it has subcategories".into()));
        }
        let live = ledger.live_skus_matching(LiveFilter::Category(id), now).await?;
        Ok(live.first().map(|sku| format!("SKU {sku} of this category is on sale")))
    }
}

pub async fn create<F: Fields>(records: &impl RecordStore, mut fields: F) -> Result<Stored<F>, Error> {
    fields.validate()?;
    let record = Stored {
        id: ids::fresh(),
        fields,
    };
    record.fields.check_links(&record.id, records).await?;
    records.insert_record(&record).await?;
    Ok(record)
}

/// Creates the record under the operator's id, or replaces it.
pub async fn put<F: Fields>(records: &impl RecordStore, id: &str, mut fields: F) -> Result<Stored<F>, Error> {
    validate::id(id)?;
    fields.validate()?;
    let record = Stored {
        id: id.to_owned(),
        fields,
    };
    record.fields.check_links(id, records).await?;
    records.put_record(&record).await?;
    Ok(record)
}

pub async fn get<F: Fields>(records: &impl RecordStore, id: &str) -> Result<Stored<F>, Error> {
    records
        .get_record::<F>(id)
        .await?
        .filter(|record| record.fields.listed())
        .ok_or(Error::NotFound(F::KIND.name()))
}

pub async fn page<F: Fields>(
    records: &impl RecordStore,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<Stored<F>>, Error> {
    let mut page = records.page_records::<F>(limit, cursor).await?;
    page.items.retain(|record| record.fields.listed());
    Ok(page)
}

pub async fn delete<F: Fields>(
    ledger: &(impl RecordStore + SkuStore),
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let mut record = get::<F>(ledger, id).await?;
    if let Some(reason) = F::in_use(id, ledger, now).await? {
        return Err(Error::Conflict(format!(
            "this {} is still in use: {reason}",
            F::KIND.name()
        )));
    }
    if record.fields.mark_deleted() {
        ledger.put_record(&record).await?;
    } else {
        ledger.delete_record::<F>(id).await?;
    }
    Ok(())
}

/// Categories, all of them or the children of `parent_id` (`0` for the top).
pub async fn categories(
    records: &impl RecordStore,
    parent_id: Option<&str>,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<Stored<CategoryFields>>, Error> {
    match parent_id {
        Some(parent) => {
            validate::id(parent)?;
            Ok(records.child_categories(parent, limit, cursor).await?)
        }
        None => page::<CategoryFields>(records, limit, cursor).await,
    }
}

/// Links a SKU to an activity; both must exist.
pub async fn link(ledger: &(impl RecordStore + SkuStore), link: SkuActivity) -> Result<SkuActivity, Error> {
    get::<ActivityFields>(ledger, &link.activity_id).await?;
    sku(ledger, &link.sku_id).await?;
    ledger.link(&link).await?;
    Ok(link)
}

pub async fn unlink(records: &impl RecordStore, link: &SkuActivity) -> Result<(), Error> {
    Ok(records.unlink(link).await?)
}

/// The SKUs linked to an activity, a page at a time.
pub async fn linked_skus(
    records: &impl RecordStore,
    activity_id: &str,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<SkuActivity>, Error> {
    get::<ActivityFields>(records, activity_id).await?;
    Ok(records.skus_of_activity(activity_id, limit, cursor).await?)
}

pub const MAX_SECKILL_NUM: i64 = 1_000_000;

/// A return window no longer than a season.
pub const MAX_RETURN_DAYS: i64 = 90;

/// Refuses SKUs that cannot be sold sanely: prices in cents above zero and
/// with the sale price not above the list price, a positive bounded
/// quantity, a window that ends after it begins and lasts at most a year.
pub fn check_sku(fields: &SkuFields) -> Result<(), Error> {
    validate::length("name", &fields.name, 1..=200)?;
    validate::range("price", fields.price, 1..=validate::MAX_CENTS)?;
    validate::range("seckill_price", fields.seckill_price, 1..=fields.price)?;
    validate::range("seckill_num", fields.seckill_num, 1..=MAX_SECKILL_NUM)?;
    validate::range(
        "pay_timeout_seconds",
        i64::from(fields.pay_timeout_seconds),
        1..=validate::MAX_PAY_TIMEOUT_SECONDS,
    )?;
    validate::range("return_days", i64::from(fields.return_days), 0..=MAX_RETURN_DAYS)?;
    for (field, value) in [("num", fields.num), ("alert_num", fields.alert_num)] {
        if let Some(value) = value {
            validate::range(field, value, 0..=1_000_000_000)?;
        }
    }
    validate::window(
        ("seckill_begin", fields.seckill_begin),
        ("seckill_end", fields.seckill_end),
        validate::MAX_WINDOW_DAYS,
    )?;
    validate::guard(&fields.guard)?;
    if fields.images.len() > 20 {
        return Err(invalid("at most 20 `images`"));
    }
    for image in fields.images.iter().chain(&fields.image) {
        validate::optional_length("image", Some(image), 1000)?;
    }
    for (field, value) in [
        ("spu_id", &fields.spu_id),
        ("category1_id", &fields.category1_id),
        ("category2_id", &fields.category2_id),
        ("category3_id", &fields.category3_id),
        ("category1_name", &fields.category1_name),
        ("category2_name", &fields.category2_name),
        ("category3_name", &fields.category3_name),
        ("brand_id", &fields.brand_id),
        ("brand_name", &fields.brand_name),
        ("spec", &fields.spec),
    ] {
        validate::optional_length(field, value.as_deref(), 200)?;
    }
    Ok(())
}

fn new_sku(id: String, fields: SkuFields, now: DateTime<Utc>) -> Sku {
    Sku {
        id,
        fields,
        status: SkuStatus::Normal,
        sale_num: 0,
        comment_num: 0,
        create_time: now,
        update_time: now,
        published_at: None,
        shards: None,
    }
}

pub async fn sku(skus: &impl SkuStore, id: &str) -> Result<Sku, Error> {
    skus.get_sku(id).await?.ok_or(Error::NotFound("sku"))
}

/// Every SKU, a page at a time.
pub async fn skus(skus: &impl SkuStore, limit: usize, cursor: Option<&str>) -> Result<Page<Sku>, Error> {
    Ok(skus.sku_page(limit, cursor).await?)
}

pub async fn create_sku(skus: &impl SkuStore, fields: SkuFields, now: DateTime<Utc>) -> Result<Sku, Error> {
    check_sku(&fields)?;
    let sku = new_sku(ids::fresh(), fields, now);
    skus.put_sku(&sku).await?;
    Ok(sku)
}

/// `PUT /admin/skus/{id}`: creates the SKU under the operator's id, or
/// replaces its fields. A published SKU's new terms go to Redis first —
/// refused there if the new `seckill_num` is below what is sold — so
/// Redis and the catalog never disagree about a sale.
pub async fn put_sku(
    ports: Ports<'_, impl StockGate, impl OrderStore + SkuStore, impl Sync>,
    id: &str,
    fields: SkuFields,
    now: DateTime<Utc>,
) -> Result<Sku, Error> {
    validate::id(id)?;
    check_sku(&fields)?;
    let skus = ports.ledger;
    let Some(current) = skus.get_sku(id).await? else {
        let sku = new_sku(id.to_owned(), fields, now);
        skus.put_sku(&sku).await?;
        return Ok(sku);
    };
    let next = Sku {
        fields,
        update_time: now,
        ..current.clone()
    };
    if current.status != SkuStatus::Seckill {
        skus.put_sku(&next).await?;
        return Ok(next);
    }
    flash_sale::load_terms(ports, &next, false, now).await?;
    if let Err(error) = skus.put_sku(&next).await {
        // Put the old terms back so Redis keeps matching the catalog.
        if let Err(undo) = flash_sale::load_terms(ports, &current, false, now).await {
            tracing::error!(sku_id = id, %undo, "Redis holds terms the catalog does not; re-publish the SKU");
        }
        return Err(error.into());
    }
    Ok(next)
}

/// Deleting a SKU is refused while its sale is running or upcoming: orders
/// and shoppers still refer to it. Its activity links go with it.
pub async fn delete_sku(ledger: &(impl SkuStore + RecordStore), id: &str, now: DateTime<Utc>) -> Result<(), Error> {
    let sku = sku(ledger, id).await?;
    if sku.status == SkuStatus::Seckill && sku.fields.seckill_end > now {
        return Err(Error::Conflict(
            "the SKU is on sale until its seckill_end; it cannot be deleted".into(),
        ));
    }
    for link in ledger.activities_of_sku(id).await? {
        ledger.unlink(&link).await?;
    }
    ledger.delete_sku(id).await?;
    Ok(())
}
