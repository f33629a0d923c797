//! [`PageStore`]: the item pages rendered from `item.html` (minijinja,
//! everything operators type escaped), each at [`item_key`] in a folder an
//! edge serves as static files (locally) or in the pages bucket behind
//! CloudFront (`bucket`, the cloud's edge function). The page loads the
//! shop's `js/item-page.js`, which asks only the stock document live.

mod bucket;

use std::path::PathBuf;

use minijinja::{AutoEscape, Environment, Value};
use serde::Serialize;

use crate::{
    model::Sku,
    ports::{PageStore, PortError, PortResult},
    ts,
};

pub use bucket::BucketPages;

const ITEM: &str = include_str!("item.html");

/// Where a SKU's page is, under the pages' root: the local edge's folder,
/// the bucket's keys, and so the URL path `/items/{sku_id}.html`.
pub fn item_key(sku_id: &str) -> String {
    format!("items/{sku_id}.html")
}

/// What the template is given: the SKU's fields as a page shows them.
#[derive(Serialize)]
struct ItemPage<'a> {
    id: &'a str,
    name: &'a str,
    price: String,
    seckill_price: String,
    image: Option<&'a str>,
    images: &'a [String],
    brand_name: Option<&'a str>,
    category: Option<&'a str>,
    spec: Option<&'a str>,
    /// Until the first poll answers: the window it was rendered with.
    window: String,
    begin: String,
    end: String,
    pay_minutes: u32,
    /// The sale's guard, for the page's script (tickets, challenges).
    guard: String,
    /// Where the shop (the console) is: its styles, script and pages. Our
    /// configuration, not operators' text, so written as it is (escaping
    /// would spell every `/` as `&#x2f;`).
    shop: Value,
}

fn yuan(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The SKU's detail page. Autoescaped as HTML: an item named `<script>`
/// shows as text.
pub fn render_item(sku: &Sku, shop: &str) -> PortResult<String> {
    let fields = &sku.fields;
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_template("item.html", ITEM)
        .map_err(|error| PortError::Unavailable(format!("the item template: {error}")))?;
    let page = ItemPage {
        id: &sku.id,
        name: &fields.name,
        price: yuan(fields.price),
        seckill_price: yuan(fields.seckill_price),
        image: fields.image.as_deref().or(fields.images.first().map(String::as_str)),
        images: fields.images.get(1..).unwrap_or_default(),
        brand_name: fields.brand_name.as_deref(),
        category: fields
            .category3_name
            .as_deref()
            .or(fields.category2_name.as_deref())
            .or(fields.category1_name.as_deref()),
        spec: fields.spec.as_deref(),
        window: format!(
            "{} – {} (UTC)",
            fields.seckill_begin.format("%Y-%m-%d %H:%M"),
            fields.seckill_end.format("%Y-%m-%d %H:%M")
        ),
        begin: ts::format(&fields.seckill_begin),
        end: ts::format(&fields.seckill_end),
        pay_minutes: fields.pay_timeout_seconds.div_ceil(60),
        guard: serde_json::to_string(&fields.guard).unwrap_or_default(),
        shop: Value::from_safe_string(shop.to_owned()),
    };
    env.get_template("item.html")
        .and_then(|template| template.render(page))
        .map_err(|error| PortError::Unavailable(format!("rendering {}: {error}", sku.id)))
}

/// Where a function that writes a SKU puts its page: a folder (locally,
/// served by the local server and its edge), or nowhere, because the
/// cloud's edge function renders each page from the SKUs table's stream
/// (whatever wrote the record) into the bucket, and only it links S3.
#[derive(Debug, Clone)]
pub enum Pages {
    Folder(FolderPages),
    FromTableStream,
}

impl PageStore for Pages {
    async fn put_item_page(&self, sku: &Sku) -> PortResult<()> {
        match self {
            Pages::Folder(folder) => folder.put_item_page(sku).await,
            Pages::FromTableStream => Ok(()),
        }
    }

    async fn remove_item_page(&self, sku_id: &str) -> PortResult<()> {
        match self {
            Pages::Folder(folder) => folder.remove_item_page(sku_id).await,
            Pages::FromTableStream => Ok(()),
        }
    }
}

/// Pages as files under `root` (`items/{sku_id}.html`), each replaced
/// whole (written aside, then renamed), so a reader never sees half a page.
#[derive(Debug, Clone)]
pub struct FolderPages {
    pub root: PathBuf,
    /// The shop's address the pages link to (`/console/` locally).
    pub shop: String,
}

impl FolderPages {
    fn item_path(&self, sku_id: &str) -> PathBuf {
        self.root.join(item_key(sku_id))
    }
}

fn io_failed(error: std::io::Error) -> PortError {
    PortError::Unavailable(format!("the page folder: {error}"))
}

impl PageStore for FolderPages {
    async fn put_item_page(&self, sku: &Sku) -> PortResult<()> {
        let html = render_item(sku, &self.shop)?;
        let path = self.item_path(&sku.id);
        let aside = path.with_extension(format!("html.{}", crate::ids::fresh()));
        tokio::fs::create_dir_all(self.root.join("items"))
            .await
            .map_err(io_failed)?;
        tokio::fs::write(&aside, html).await.map_err(io_failed)?;
        tokio::fs::rename(&aside, &path).await.map_err(io_failed)
    }

    async fn remove_item_page(&self, sku_id: &str) -> PortResult<()> {
        match tokio::fs::remove_file(self.item_path(sku_id)).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(io_failed(error)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::published_sku;

    fn sku(name: &str) -> Sku {
        published_sku("sku-1", name)
    }

    #[test]
    fn what_operators_type_shows_as_text() {
        let html = render_item(&sku("<script>alert(1)</script> & \"more\""), "/console/").unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; &quot;more&quot;"),
            "{html}"
        );
    }

    #[test]
    fn a_page_shows_the_prices_and_the_window_but_asks_the_stock() {
        let html = render_item(&sku("Phone"), "/console/").unwrap();
        assert!(html.contains("¥990.00") && html.contains("¥1999.00"), "{html}");
        assert!(html.contains("data-begin=\"2026-11-11T12:00:00.000Z\""), "{html}");
        assert!(html.contains("js/item-page.js\"></script>"), "{html}");
        assert!(!html.contains("remaining"), "the stock is asked live");
    }
}
