//! The SKUs operators put on sale and shoppers browse.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use ulid::Ulid;

use crate::{
    Error,
    error::invalid,
    flash_sale::{SkuStore, StockGate},
    model::{SaleState, Sku, SkuFields, SkuStatus},
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

pub async fn create_sku(skus: &impl SkuStore, fields: SkuFields, now: DateTime<Utc>) -> Result<Sku, Error> {
    validate(&fields)?;
    let sku = Sku {
        id: Ulid::generate().to_string(),
        fields,
        status: SkuStatus::Normal,
        sale_num: 0,
        comment_num: 0,
        create_time: now,
        update_time: now,
        published_at: None,
    };
    skus.put_sku(&sku).await?;
    Ok(sku)
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
    sku_id: &str,
    now: DateTime<Utc>,
) -> Result<SaleItem, Error> {
    let sku = skus
        .get_sku(sku_id)
        .await?
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
