//! The SKUs operators put on sale and shoppers browse.

use chrono::{DateTime, Duration, FixedOffset, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::{
    Error,
    backoffice::{self, CatalogStore},
    error::invalid,
    flash_sale::{self, OrderStore, SkuStore, StockGate},
    http::is_valid_id,
    model::{SaleState, Sku, SkuFields, SkuStatus, SlotFields, Stored},
    store::Page,
};

pub const MAX_PRICE_CENTS: i64 = 10_000_000_000;
pub const MAX_SECKILL_NUM: i64 = 1_000_000;
pub const MAX_SALE_DAYS: i64 = 366;

fn check_range(field: &str, value: i64, min: i64, max: i64) -> Result<(), Error> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(invalid(format!("`{field}` must be between {min} and {max}")))
    }
}

fn check_text(field: &str, value: Option<&str>, max: usize) -> Result<(), Error> {
    match value {
        Some(v) if v.chars().count() > max => Err(invalid(format!("`{field}` must be at most {max} characters"))),
        _ => Ok(()),
    }
}

/// Refuses SKUs that cannot be sold sanely: prices in cents above zero and
/// with the sale price not above the list price, a positive bounded
/// quantity, a window that ends after it begins and lasts at most a year.
pub fn validate(fields: &SkuFields) -> Result<(), Error> {
    if fields.name.trim().is_empty() {
        return Err(invalid("`name` must not be empty"));
    }
    check_text("name", Some(&fields.name), 200)?;
    check_range("price", fields.price, 1, MAX_PRICE_CENTS)?;
    check_range("seckill_price", fields.seckill_price, 1, fields.price)?;
    check_range("seckill_num", fields.seckill_num, 1, MAX_SECKILL_NUM)?;
    check_range("pay_timeout_seconds", i64::from(fields.pay_timeout_seconds), 1, 86_400)?;
    for (field, value) in [("num", fields.num), ("alert_num", fields.alert_num)] {
        if let Some(value) = value {
            check_range(field, value, 0, 1_000_000_000)?;
        }
    }
    if fields.seckill_end <= fields.seckill_begin {
        return Err(invalid("`seckill_end` must be after `seckill_begin`"));
    }
    if fields.seckill_end - fields.seckill_begin > Duration::days(MAX_SALE_DAYS) {
        return Err(invalid(format!("a sale may last at most {MAX_SALE_DAYS} days")));
    }
    if fields.images.len() > 20 {
        return Err(invalid("at most 20 `images`"));
    }
    for image in fields.images.iter().chain(&fields.image) {
        check_text("image", Some(image), 1000)?;
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
        check_text(field, value.as_deref(), 200)?;
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
    }
}

pub async fn create_sku(skus: &impl SkuStore, fields: SkuFields, now: DateTime<Utc>) -> Result<Sku, Error> {
    validate(&fields)?;
    let sku = new_sku(Ulid::generate().to_string(), fields, now);
    skus.put_sku(&sku).await?;
    Ok(sku)
}

/// `PUT /admin/skus/{id}`: creates the SKU under the operator's id, or
/// replaces its fields. A published SKU's new terms go to Redis first —
/// refused there if the new `seckill_num` is below what is sold — so
/// Redis and the catalog never disagree about a sale.
pub async fn put_sku(
    gate: &impl StockGate,
    skus: &impl SkuStore,
    orders: &impl OrderStore,
    id: &str,
    fields: SkuFields,
    now: DateTime<Utc>,
) -> Result<Sku, Error> {
    if !is_valid_id(id) {
        return Err(invalid("ids are 1-64 characters of letters, digits, `_`, `.` or `-`"));
    }
    validate(&fields)?;
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
    flash_sale::load_terms(gate, orders, &next, false).await?;
    if let Err(error) = skus.put_sku(&next).await {
        // Put the old terms back so Redis keeps matching the catalog.
        if let Err(undo) = flash_sale::load_terms(gate, orders, &current, false).await {
            tracing::error!(sku_id = id, %undo, "Redis holds terms the catalog does not; re-publish the SKU");
        }
        return Err(error.into());
    }
    Ok(next)
}

/// Deleting a SKU is refused while its sale is running or upcoming: orders
/// and shoppers still refer to it. Its activity links go with it.
pub async fn delete_sku(
    skus: &impl SkuStore,
    catalog: &impl CatalogStore,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let sku = skus.get_sku(id).await?.ok_or(Error::NotFound("sku"))?;
    if sku.status == SkuStatus::Seckill && sku.fields.seckill_end > now {
        return Err(Error::Conflict(
            "the SKU is on sale until its seckill_end; it cannot be deleted".into(),
        ));
    }
    for link in catalog.activities_of_sku(id).await? {
        catalog.unlink(&link).await?;
    }
    skus.delete_sku(id).await?;
    Ok(())
}

/// Item pages are read-mostly, and a hot item is read thousands of times a
/// second: each Lambda instance keeps catalog records (and misses) for a
/// few seconds, so operator edits show within that time. `remaining` is
/// never cached.
pub struct ItemCache(moka::sync::Cache<String, Option<Sku>>);

impl ItemCache {
    pub fn new(ttl: std::time::Duration) -> Self {
        ItemCache(
            moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ttl)
                .build(),
        )
    }
}

/// A SKU on sale as shoppers see it: the catalog record with its live stock.
#[derive(Debug, Clone, Serialize)]
pub struct SaleItem {
    #[serde(flatten)]
    pub sku: Sku,
    pub remaining: i64,
    pub state: SaleState,
}

/// Only published SKUs are visible to shoppers.
pub async fn sale_item(
    gate: &impl StockGate,
    skus: &impl SkuStore,
    cache: &ItemCache,
    sku_id: &str,
    now: DateTime<Utc>,
) -> Result<SaleItem, Error> {
    let sku = match cache.0.get(sku_id) {
        Some(hit) => hit,
        None => {
            let fetched = skus.get_sku(sku_id).await?;
            cache.0.insert(sku_id.to_owned(), fetched.clone());
            fetched
        }
    };
    let sku = sku
        .filter(|sku| sku.status == SkuStatus::Seckill)
        .ok_or(Error::NotFound("item"))?;
    let remaining = gate
        .remaining(sku_id)
        .await?
        .ok_or_else(|| Error::unavailable(format!("published SKU {sku_id} missing from Redis")))?;
    Ok(SaleItem {
        state: SaleState::of(&sku.fields, remaining, now),
        remaining,
        sku,
    })
}

/// The storefront's filters (`GET /seckill/items`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SaleSearch {
    /// Sales starting within `[from, to)`: today's window of a time slot.
    pub starting: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// A category id at any of the three levels.
    pub category: Option<String>,
    pub brand: Option<String>,
    /// A piece of the name (case-sensitive, as DynamoDB's `contains`).
    pub q: Option<String>,
}

/// `GET /seckill/items?slot=&category=&brand=&q=&limit=&cursor=`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ItemQuery {
    pub slot: Option<String>,
    pub category: Option<String>,
    pub brand: Option<String>,
    pub q: Option<String>,
}

/// A filtered listing can hold fewer than `limit` items on a page (the
/// filters apply after DynamoDB's limit); `next_cursor` says if more follow.
pub async fn sale_items(
    gate: &impl StockGate,
    skus: &impl SkuStore,
    catalog: &impl CatalogStore,
    query: ItemQuery,
    offset: FixedOffset,
    now: DateTime<Utc>,
    (limit, cursor): (usize, Option<&str>),
) -> Result<Page<SaleItem>, Error> {
    // An empty filter (`?slot=`) is no filter.
    let given = |value: Option<String>| value.filter(|v| !v.is_empty());
    let (slot, category, brand, q) = (
        given(query.slot),
        given(query.category),
        given(query.brand),
        given(query.q),
    );
    let starting = match &slot {
        Some(slot_id) => {
            let slot = backoffice::get::<SlotFields>(catalog, slot_id).await?;
            let window = slot_window(&slot, offset, now);
            Some((window.start, window.end))
        }
        None => None,
    };
    if q.as_ref().is_some_and(|q| q.chars().count() > 100) {
        return Err(invalid("`q` must be at most 100 characters"));
    }
    let search = SaleSearch {
        starting,
        category,
        brand,
        q,
    };
    let page = skus.skus_on_sale(&search, now, limit, cursor).await?;
    let ids: Vec<&str> = page.items.iter().map(|sku| sku.id.as_str()).collect();
    let remaining = gate.remaining_of(&ids).await?;
    let items = page
        .items
        .into_iter()
        .zip(remaining)
        .map(|(sku, remaining)| {
            let remaining = remaining.unwrap_or(0);
            SaleItem {
                state: SaleState::of(&sku.fields, remaining, now),
                remaining,
                sku,
            }
        })
        .collect();
    Ok(Page {
        items,
        next_cursor: page.next_cursor,
    })
}

/// One time slot as it falls today.
#[derive(Debug, Clone, Serialize)]
pub struct SlotToday {
    #[serde(flatten)]
    pub slot: Stored<SlotFields>,
    #[serde(with = "crate::ts")]
    pub start: DateTime<Utc>,
    #[serde(with = "crate::ts")]
    pub end: DateTime<Utc>,
    pub state: SlotState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotState {
    Ended,
    Active,
    Upcoming,
}

struct Window {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// Today's instance of a slot, "today" being the sale's calendar day.
fn slot_window(slot: &Stored<SlotFields>, offset: FixedOffset, now: DateTime<Utc>) -> Window {
    let today = now.with_timezone(&offset).date_naive();
    let at = |time: NaiveTime| {
        today
            .and_time(time)
            .and_local_timezone(offset)
            .single()
            .expect("a fixed offset has no gaps")
            .with_timezone(&Utc)
    };
    Window {
        start: at(slot.fields.starttime),
        end: at(slot.fields.endtime),
    }
}

/// The most slots a timetable holds; the storefront reads them all.
pub const MAX_SLOTS: usize = 100;

/// `GET /seckill/slots`: today's enabled slots in order, with their state.
pub async fn slots_today(
    catalog: &impl CatalogStore,
    offset: FixedOffset,
    now: DateTime<Utc>,
) -> Result<Vec<SlotToday>, Error> {
    let mut slots = backoffice::page::<SlotFields>(catalog, MAX_SLOTS, None).await?.items;
    slots.retain(|slot| slot.fields.status == crate::model::Enabled::Yes);
    slots.sort_by_key(|slot| (slot.fields.sort, slot.fields.starttime));
    Ok(slots
        .into_iter()
        .map(|slot| {
            let window = slot_window(&slot, offset, now);
            let state = if now >= window.end {
                SlotState::Ended
            } else if now >= window.start {
                SlotState::Active
            } else {
                SlotState::Upcoming
            };
            SlotToday {
                start: window.start,
                end: window.end,
                state,
                slot,
            }
        })
        .collect())
}
