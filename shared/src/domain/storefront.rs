//! The storefront: the catalog as shoppers see it — today's time slots, the
//! items on sale with live stock, one item's page, the red-packet rains on
//! now or coming within a day.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    domain::{
        catalog,
        red_packet::{self, RAINS_AHEAD, Rain},
    },
    error::{Error, invalid},
    model::{Campaign, Enabled, SaleState, Sku, SkuStatus, SlotFields, Stored},
    ports::{CampaignStore, PacketPool, Page, PageStore, Ports, RecordStore, SaleSearch, SkuStore, StockGate},
    ts,
};

/// The storefront is read-mostly, and a hot item or the first page of a
/// sale is read thousands of times a second, all from one partition (an
/// item's key, the on-sale index's): each Lambda instance keeps catalog
/// records (and misses) and listing pages for a few seconds, so DynamoDB
/// sees at most one read per instance per page in that time, and operator
/// edits show within it. `remaining` (from the gate) is read on every view,
/// except a hot SKU's (see `domain::hot`): its record is kept for
/// [`HOT_ITEM_TTL`] and its `remaining` for [`HOT_REMAINING_TTL`], one gate
/// read per instance in that time however many views come.
pub struct CatalogCache {
    items: moka::sync::Cache<String, Option<Sku>>,
    hot_items: moka::sync::Cache<String, Option<Sku>>,
    hot_remaining: moka::future::Cache<String, Option<i64>>,
    listings: moka::sync::Cache<String, Page<Sku>>,
    /// The campaigns not yet ended, under one key; one scan at a time.
    rains: moka::future::Cache<(), Vec<Campaign>>,
}

/// How long a hot SKU's record is served from an instance's memory: an
/// operator's edit of a hot item shows within this.
pub const HOT_ITEM_TTL: Duration = Duration::from_secs(30);

/// How stale a hot SKU's `remaining` may be.
pub const HOT_REMAINING_TTL: Duration = Duration::from_millis(500);

impl CatalogCache {
    pub fn new(ttl: Duration) -> Self {
        CatalogCache {
            items: short_lived(ttl),
            hot_items: short_lived(HOT_ITEM_TTL),
            hot_remaining: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(HOT_REMAINING_TTL)
                .build(),
            listings: short_lived(ttl),
            rains: moka::future::Cache::builder().max_capacity(1).time_to_live(ttl).build(),
        }
    }
}

fn short_lived<V: Clone + Send + Sync + 'static>(ttl: Duration) -> moka::sync::Cache<String, V> {
    moka::sync::Cache::builder()
        .max_capacity(10_000)
        .time_to_live(ttl)
        .build()
}

/// A SKU on sale as shoppers see it: the catalog record with its live stock.
#[derive(Debug, Clone, Serialize)]
pub struct SaleItem {
    #[serde(flatten)]
    pub sku: Sku,
    pub remaining: i64,
    pub state: SaleState,
}

/// Only published SKUs are visible to shoppers. A `hot` SKU's page comes
/// from the longer-lived caches.
pub async fn sale_item(
    ports: Ports<'_, impl StockGate, impl SkuStore, impl Sync>,
    cache: &CatalogCache,
    sku_id: &str,
    hot: bool,
    now: DateTime<Utc>,
) -> Result<SaleItem, Error> {
    let items = if hot { &cache.hot_items } else { &cache.items };
    let sku = match items.get(sku_id) {
        Some(hit) => hit,
        None => {
            let fetched = ports.ledger.get_sku(sku_id).await?;
            items.insert(sku_id.to_owned(), fetched.clone());
            fetched
        }
    };
    let sku = sku
        .filter(|sku| sku.status == SkuStatus::Seckill)
        .ok_or(Error::NotFound("item"))?;
    let remaining = if hot {
        // Views arriving together share one read.
        cache
            .hot_remaining
            .try_get_with(sku_id.to_owned(), ports.gate.remaining(sku_id))
            .await
            .map_err(|error| Error::from((*error).clone()))?
    } else {
        ports.gate.remaining(sku_id).await?
    };
    let remaining =
        remaining.ok_or_else(|| Error::unavailable(format!("published SKU {sku_id} missing from Redis")))?;
    Ok(SaleItem {
        state: SaleState::of(&sku.fields, remaining, now),
        remaining,
        sku,
    })
}

/// What a rendered page asks live, and an edge may keep for a second:
/// how many are left, where the sale stands, and the server's clock, which
/// the page counts down on (a shopper's own is often minutes off).
#[derive(Debug, Clone, Serialize)]
pub struct Stock {
    #[serde(flatten)]
    pub level: StockLevel,
    #[serde(with = "ts")]
    pub server_time: DateTime<Utc>,
}

/// What a [`Stock`] says, whenever it is read: its entity tag's content.
/// The sale's window is live here too, so a page rendered (or kept by an
/// edge) before the sale was moved still counts down to the right time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StockLevel {
    pub remaining: i64,
    pub state: SaleState,
    #[serde(with = "ts")]
    pub begin: DateTime<Utc>,
    #[serde(with = "ts")]
    pub end: DateTime<Utc>,
}

/// A SKU's [`Stock`]: its stock as [`sale_item`] reads it.
pub async fn item_stock(
    ports: Ports<'_, impl StockGate, impl SkuStore, impl Sync>,
    cache: &CatalogCache,
    sku_id: &str,
    hot: bool,
    now: DateTime<Utc>,
) -> Result<Stock, Error> {
    let item = sale_item(ports, cache, sku_id, hot, now).await?;
    Ok(Stock {
        level: StockLevel {
            remaining: item.remaining,
            state: item.state,
            begin: item.sku.fields.seckill_begin,
            end: item.sku.fields.seckill_end,
        },
        server_time: now,
    })
}

/// A rain's [`Stock`]: its packets left, for a rain on now or soon.
pub async fn rain_stock(
    ports: Ports<'_, impl PacketPool, impl CampaignStore, impl Sync>,
    cache: &CatalogCache,
    campaign_id: &str,
    now: DateTime<Utc>,
) -> Result<Stock, Error> {
    let rain = rains(ports, cache, now)
        .await?
        .into_iter()
        .find(|rain| rain.id == campaign_id)
        .ok_or(Error::NotFound("rain"))?;
    Ok(Stock {
        level: StockLevel {
            remaining: i64::try_from(rain.remaining).unwrap_or(i64::MAX),
            state: rain.state,
            begin: rain.begin,
            end: rain.end,
        },
        server_time: now,
    })
}

/// Keeps a SKU's rendered page in step with its record, after every write
/// of it: there while the SKU is published (its window and prices as they
/// now are), gone once it is not.
pub async fn refresh_item_page(pages: &impl PageStore, sku: &Sku) -> Result<(), Error> {
    match sku.status {
        SkuStatus::Seckill => pages.put_item_page(sku).await?,
        SkuStatus::Normal => pages.remove_item_page(&sku.id).await?,
    }
    Ok(())
}

/// A deleted SKU's page goes with it.
pub async fn remove_item_page(pages: &impl PageStore, sku_id: &str) -> Result<(), Error> {
    Ok(pages.remove_item_page(sku_id).await?)
}

/// Brings a SKU's page in step with its record as stored now, whatever
/// wrote it last: the cloud's edge function is told only which SKUs
/// changed (the table's stream of keys), so a page follows the last write
/// however late, repeated or out of order the news of each arrives.
pub async fn render_stored_item_page(skus: &impl SkuStore, pages: &impl PageStore, sku_id: &str) -> Result<(), Error> {
    match skus.get_sku(sku_id).await? {
        Some(sku) => refresh_item_page(pages, &sku).await,
        None => remove_item_page(pages, sku_id).await,
    }
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
    ports: Ports<'_, impl StockGate, impl SkuStore + RecordStore, impl Sync>,
    cache: &CatalogCache,
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
            let slot = catalog::get::<SlotFields>(ports.ledger, slot_id).await?;
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
    // The slot's window is today's, so the key changes at midnight.
    let listing = format!("{search:?} {limit} {cursor:?}");
    let page = match cache.listings.get(&listing) {
        Some(hit) => hit,
        None => {
            let fetched = ports.ledger.skus_on_sale(&search, now, limit, cursor).await?;
            cache.listings.insert(listing, fetched.clone());
            fetched
        }
    };
    let ids: Vec<&str> = page.items.iter().map(|sku| sku.id.as_str()).collect();
    let remaining = ports.gate.remaining_of(&ids).await?;
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
    records: &impl RecordStore,
    offset: FixedOffset,
    now: DateTime<Utc>,
) -> Result<Vec<SlotToday>, Error> {
    let mut slots = catalog::page::<SlotFields>(records, MAX_SLOTS, None).await?.items;
    slots.retain(|slot| slot.fields.status == Enabled::Yes);
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

/// `GET /red-packets`: the rains open now or opening within
/// [`RAINS_AHEAD`], with their pools' counts (read every time). The
/// campaign list is one small scan, kept per instance like a listing page.
pub async fn rains(
    ports: Ports<'_, impl PacketPool, impl CampaignStore, impl Sync>,
    cache: &CatalogCache,
    now: DateTime<Utc>,
) -> Result<Vec<Rain>, Error> {
    let campaigns = cache
        .rains
        .try_get_with((), ports.ledger.campaigns_ending_after(now))
        .await
        .map_err(|error| Error::from((*error).clone()))?;
    let showing = campaigns
        .into_iter()
        .filter(|campaign| campaign.end > now && campaign.begin <= now + RAINS_AHEAD)
        .collect();
    red_packet::rains(ports.gate, showing, now).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::flash_sale::{
            grab,
            tests::{now, on_sale},
        },
        memory::{Memory, MemoryPages, Op},
    };

    #[tokio::test]
    async fn a_page_is_rendered_while_its_sku_is_published_and_only_then() {
        let memory = Memory::default();
        let pages = MemoryPages::default();
        let sku_id = on_sale(&memory, 2).await;
        let mut sku = memory.ledger.get_sku(&sku_id).await.unwrap().unwrap();
        refresh_item_page(&pages, &sku).await.unwrap();
        assert!(pages.page(&sku_id).unwrap().contains("<h1>Phone</h1>"));
        sku.fields.name = "Phone 2".into();
        refresh_item_page(&pages, &sku).await.unwrap();
        assert!(pages.page(&sku_id).unwrap().contains("<h1>Phone 2</h1>"), "edited");
        sku.status = SkuStatus::Normal;
        refresh_item_page(&pages, &sku).await.unwrap();
        assert_eq!(pages.page(&sku_id), None, "unpublished");
        sku.status = SkuStatus::Seckill;
        refresh_item_page(&pages, &sku).await.unwrap();
        remove_item_page(&pages, &sku_id).await.unwrap();
        assert_eq!(pages.page(&sku_id), None, "deleted");
    }

    #[tokio::test]
    async fn a_stored_sku_renders_as_it_is_now_and_a_gone_one_loses_its_page() {
        let memory = Memory::default();
        let pages = MemoryPages::default();
        let sku_id = on_sale(&memory, 2).await;
        render_stored_item_page(&memory.ledger, &pages, &sku_id).await.unwrap();
        assert!(pages.page(&sku_id).unwrap().contains("<h1>Phone</h1>"));
        memory.ledger.delete_sku(&sku_id).await.unwrap();
        render_stored_item_page(&memory.ledger, &pages, &sku_id).await.unwrap();
        assert_eq!(pages.page(&sku_id), None);
    }

    #[tokio::test]
    async fn a_listing_page_is_read_once_per_instance_while_its_stock_stays_live() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 2).await;
        let cache = CatalogCache::new(Duration::from_secs(60));
        let list = || {
            sale_items(
                memory.ports(),
                &cache,
                ItemQuery::default(),
                FixedOffset::east_opt(0).unwrap(),
                now(),
                (10, None),
            )
        };
        assert_eq!(list().await.unwrap().items[0].remaining, 2);
        grab(memory.ports(), "alice", &sku, now()).await.unwrap();
        assert_eq!(list().await.unwrap().items[0].remaining, 1);
        assert_eq!(memory.ledger.faults.calls(Op::SkusOnSale), 1);
    }

    #[tokio::test]
    async fn a_hot_items_page_reads_the_gate_once_per_half_second_and_a_cold_one_every_time() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 2).await;
        let cache = CatalogCache::new(Duration::from_secs(60));
        let view = |hot| sale_item(memory.ports(), &cache, &sku, hot, now());
        let reads = || memory.gate.faults.calls(Op::Stocks);
        let before = reads();
        let views = futures::future::join_all((0..10).map(|_| view(true))).await;
        assert!(views.iter().all(|item| item.as_ref().unwrap().remaining == 2));
        grab(memory.ports(), "alice", &sku, now()).await.unwrap();
        assert_eq!(view(true).await.unwrap().remaining, 2, "up to half a second stale");
        assert_eq!(reads() - before, 1);
        assert_eq!(view(false).await.unwrap().remaining, 1);
        tokio::time::sleep(HOT_REMAINING_TTL).await;
        assert_eq!(view(true).await.unwrap().remaining, 1);
        assert_eq!(reads() - before, 3);
    }
}
