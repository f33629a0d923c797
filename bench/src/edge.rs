//! Through the edge: a crowd viewing the rendered item pages and polling
//! their stock documents, sent by `wrk` once through the local edge (nginx,
//! where CloudFront stands) and once straight at the API, counting what
//! reaches the functions each time. The target (issue 25): about one stock
//! read per item per second through the edge, and no function for a view.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{extract::Request, middleware::Next};
use chrono::Utc;
use local_server::edge::Edge;
use shared::{
    App, BoxError,
    config::Config,
    domain::{catalog, flash_sale, storefront},
    pages::FolderPages,
};

use crate::{http, sku_fields};

/// What reached the functions.
#[derive(Default)]
struct Reached {
    stock_reads: AtomicU64,
    page_views: AtomicU64,
}

impl Reached {
    fn take(&self) -> (u64, u64) {
        (
            self.stock_reads.swap(0, Ordering::Relaxed),
            self.page_views.swap(0, Ordering::Relaxed),
        )
    }
}

/// The crowd: each request a page view (one in four) or a stock poll, of
/// one of the items at random.
fn crowd(items: &[String]) -> String {
    let ids: Vec<String> = items.iter().map(|id| format!("\"{id}\"")).collect();
    format!(
        r#"local items = {{ {} }}
math.randomseed(os.time())
request = function()
  local id = items[math.random(#items)]
  if math.random() < 0.25 then
    return wrk.format("GET", "/items/" .. id .. ".html")
  end
  return wrk.format("GET", "/seckill/items/" .. id .. "/stock")
end
"#,
        ids.join(", ")
    )
}

pub async fn figures(config: &Config, load: http::Load, items: usize) -> Result<(), BoxError> {
    let folder = tempfile::tempdir()?;
    let app: Arc<App> = App::connect(&Config {
        pages: Some(FolderPages {
            root: folder.path().to_owned(),
            shop: "/console/".into(),
        }),
        ..config.clone()
    })
    .await?;
    let now = Utc::now();
    let mut ids = Vec::new();
    for _ in 0..items {
        let sku = catalog::create_sku(&app.ledger, sku_fields(1_000), now).await?;
        let published = flash_sale::publish(app.ports(), &sku.id, now).await?;
        storefront::refresh_item_page(&app.pages, &published.sku).await?;
        ids.push(sku.id);
    }
    let reached = Arc::new(Reached::default());
    let counting = {
        let reached = reached.clone();
        local_server::api(app).layer(axum::middleware::from_fn(move |request: Request, next: Next| {
            let path = request.uri().path();
            if path.ends_with("/stock") {
                reached.stock_reads.fetch_add(1, Ordering::Relaxed);
            } else if path.starts_with("/items/") {
                reached.page_views.fetch_add(1, Ordering::Relaxed);
            }
            next.run(request)
        }))
    };
    let api: SocketAddr = http::serve(counting)?;
    let edge = Edge::start(api, folder.path(), "unused: nothing here counts addresses")?;
    let script = crowd(&ids);
    let seconds = load.duration.as_secs_f64();
    println!(
        "through the edge: wrk, {} connections for {seconds:.0} s, a crowd on {items} items \
         (a page view in four, stock polls the rest)",
        load.connections
    );
    for (name, base) in [("straight at the API", api), ("through the edge (nginx)", edge.address)] {
        reached.take();
        let run = http::wrk_script(load, &format!("http://{base}/"), &script).await?;
        let (reads, views) = reached.take();
        println!(
            "{name:<26} {:>9} requests {:>8.0} req/s   reached the functions: {reads:>7} stock reads \
             ({:>6.2} per item per second), {views} page views",
            run.requests,
            run.per_second,
            reads as f64 / items as f64 / seconds,
        );
        assert_eq!(run.refused, 0, "{name}: every answer a 2xx");
    }
    Ok(())
}
