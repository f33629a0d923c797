//! [`PageStore`] in memory: each page as the folder adapter would render
//! it, so a test can read what a shopper would.

use std::{collections::BTreeMap, sync::Mutex};

use crate::{
    model::Sku,
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
