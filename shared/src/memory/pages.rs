//! [`PageStore`] in memory: each page as the folder adapter would render
//! it, so a test can read what a shopper would.

use std::{collections::BTreeMap, sync::Mutex};

use chrono::{TimeZone, Utc};

use crate::{
    model::{Sku, SkuFields, SkuStatus},
    pages::render_item,
    ports::{PageStore, PortResult},
};

#[derive(Debug, Default)]
pub struct MemoryPages {
    pages: Mutex<BTreeMap<String, String>>,
}

impl MemoryPages {
    /// The page of `sku_id`, if there is one.
    pub fn page(&self, sku_id: &str) -> Option<String> {
        self.pages.lock().expect("pages").get(sku_id).cloned()
    }
}

impl PageStore for MemoryPages {
    async fn put_item_page(&self, sku: &Sku) -> PortResult<()> {
        let html = render_item(sku, "/")?;
        self.pages.lock().expect("pages").insert(sku.id.clone(), html);
        Ok(())
    }

    async fn remove_item_page(&self, sku_id: &str) -> PortResult<()> {
        self.pages.lock().expect("pages").remove(sku_id);
        Ok(())
    }
}

/// A published SKU named `name`, on sale on 2026-11-11 from noon for an
/// hour: what a page is rendered from.
pub fn published_sku(id: &str, name: &str) -> Sku {
    let begin = Utc.with_ymd_and_hms(2026, 11, 11, 12, 0, 0).unwrap();
    Sku {
        id: id.into(),
        fields: SkuFields::new(name, (199_900, 99_000), 5, (begin, begin + chrono::Duration::hours(1))),
        status: SkuStatus::Seckill,
        sale_num: 0,
        comment_num: 0,
        create_time: begin,
        update_time: begin,
        published_at: Some(begin),
        shards: None,
    }
}
