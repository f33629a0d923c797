//! `local-server`: the whole system on localhost. See the README and docs/.

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use local_server::{
    JobPeriods,
    alipay::AlipayStandIn,
    edge::Edge,
    services::{LocalStripe, Stack},
    stripe_js::StripeJsStandIn,
    wechat::WechatStandIn,
};
use shared::App;

#[derive(Parser)]
#[command(about = "Serve the flash-sale API on localhost with real Redis and DynamoDB Local")]
struct Args {
    /// Port of the API on 127.0.0.1.
    #[arg(long, env = "PORT", default_value_t = 3000)]
    port: u16,
    /// Password of the seeded operator `admin` (local runs only).
    #[arg(long, env = "ADMIN_PASSWORD", default_value = "admin", hide_env_values = true)]
    admin_password: String,
    /// Seconds between runs of the order-timeout job.
    #[arg(long, env = "TIMEOUT_SWEEP_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_sweep_seconds: u64,
    /// Seconds between runs of the red-packet payout job.
    #[arg(long, env = "PAYOUT_SWEEP_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    payout_sweep_seconds: u64,
    /// Seconds between runs of the reconciliation job.
    #[arg(long, env = "RECONCILE_SWEEP_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    reconcile_sweep_seconds: u64,
    /// Seconds between runs of the payments job (lost charge answers,
    /// refunds owed).
    #[arg(long, env = "PAYMENTS_SWEEP_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    payments_sweep_seconds: u64,
    /// Seconds between runs of the hot-item discovery job, 1 to 60 as in
    /// the cloud.
    #[arg(long, env = "HOT_SWEEP_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    hot_sweep_seconds: u64,
    /// Run the gate on a local Redis Cluster of three masters, as in the
    /// cloud (ElastiCache Serverless is cluster mode).
    #[arg(long, env = "REDIS_CLUSTER")]
    redis_cluster: bool,
    /// Token signing key; a random one per run if unset.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
}

fn random_secret() -> String {
    rand::random::<[u8; 32]>().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::setup_tracing();
    shared::metrics::record_for_prometheus()?;
    let args = Args::parse();

    let stack = Stack::start(args.redis_cluster)?;
    let mut config = stack.config(args.jwt_secret.unwrap_or_else(random_secret));
    let vars = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    config.limits = shared::config::limits_from(&vars, config.limits)?;
    config.hot = shared::config::hot_from(&vars, config.hot)?;
    config.sandbox_payments = shared::config::sandbox_payments_in(&vars)?;
    config.stripe = shared::config::stripe_from(&vars, None).await?;
    // Stripe as configured, else localstripe standing in for it.
    let webhook_secret = format!("whsec_{}", random_secret());
    let local_stripe = match config.stripe {
        Some(_) => None,
        None => LocalStripe::start()
            .inspect_err(|error| eprintln!("Stripe not offered: {error}"))
            .ok(),
    };
    // Its shop pays through a Stripe.js stand-in, which localstripe lacks.
    let mut stripe_js = None;
    if let Some(stripe) = &local_stripe {
        let mut keys = stripe.keys(&webhook_secret);
        let standin = StripeJsStandIn::start(&keys.api_base, &keys.secret_key.0).await?;
        keys.shop = Some(standin.shop());
        config.stripe = Some(keys);
        stripe_js = Some(standin);
    }
    // Alipay as configured, else a stand-in speaking its protocol.
    let address = SocketAddr::from(([127, 0, 0, 1], args.port));
    config.alipay = shared::config::alipay_from(&vars, None).await?;
    let alipay_standin = match config.alipay {
        Some(_) => None,
        None => {
            let (standin, mut keys) =
                AlipayStandIn::with_app(&format!("http://{address}/payments/alipay/notify")).await?;
            // Paid, the cashier sends the shopper back to the console.
            keys.return_url = vars("SHOP_URL").or_else(|| Some(format!("http://{address}/console/")));
            config.alipay = Some(keys);
            Some(standin)
        }
    };
    // WeChat Pay as configured, else a stand-in speaking its protocol.
    config.wechat = shared::config::wechat_from(&vars, None).await?;
    let wechat_standin = match config.wechat {
        Some(_) => None,
        None => {
            let (standin, keys) =
                WechatStandIn::with_merchant(&format!("http://{address}/payments/wechat/notify")).await?;
            config.wechat = Some(keys);
            Some(standin)
        }
    };
    // The rendered item pages, served at /items/ as the edge would.
    let pages = tempfile::tempdir()?;
    // Linked by path, so a page works from the API's port and the edge's.
    config.pages = Some(shared::pages::FolderPages {
        root: pages.path().to_owned(),
        shop: "/console/".into(),
    });
    // The key nginx proves itself with, so the API takes its word on each
    // viewer's address (per-address limits count viewers, not the edge).
    let edge_key = random_secret();
    config.edge_key = Some(shared::config::Secret(edge_key.clone()));
    let app = App::connect(&config).await?;
    local_server::create_tables(&app, &config.table_prefix).await?;
    let seeded = local_server::seed(&app, &args.admin_password).await?;
    local_server::schedule_jobs(
        &app,
        JobPeriods {
            order_timeout: Duration::from_secs(args.timeout_sweep_seconds),
            payout: Duration::from_secs(args.payout_sweep_seconds),
            reconcile: Duration::from_secs(args.reconcile_sweep_seconds),
            payments: Duration::from_secs(args.payments_sweep_seconds),
            hot_sweep: Duration::from_secs(args.hot_sweep_seconds),
        },
    );

    let listener = tokio::net::TcpListener::bind(address).await?;
    // nginx where CloudFront stands: the pages as files, stock documents
    // kept as long as they say.
    let edge = Edge::start(address, pages.path(), &edge_key)
        .inspect_err(|error| eprintln!("no local edge: {error}"))
        .ok();
    let mode = if stack.redis.is_cluster() {
        "redis cluster    "
    } else {
        "redis-server     "
    };
    for node in stack.redis.nodes() {
        println!("{mode}{}", node.url());
    }
    println!("DynamoDB Local   {}", stack.dynamo.endpoint());
    if let Some(stripe) = &local_stripe {
        stripe
            .send_webhooks_to(&format!("http://{address}/payments/stripe/notify"), &webhook_secret)
            .await?;
        println!("localstripe      {}  (Stripe's stand-in)", stripe.api_base());
    }
    if let Some(standin) = &stripe_js {
        println!("Stripe.js stand-in {}", standin.shop().js);
    }
    if let Some(standin) = &alipay_standin {
        println!("Alipay stand-in  {}", standin.gateway());
    }
    if let Some(standin) = &wechat_standin {
        println!("WeChat Pay stand-in {}", standin.api_base());
    }
    println!("operator         admin / {}  (local only)", args.admin_password);
    println!("demo flash sale  sku {}", seeded.sku_id);
    println!("demo red packets campaign {}", seeded.campaign_id);
    println!("metrics          http://{address}/metrics  (Prometheus text)");
    println!("web console      http://{address}/console/  (shoppers; operators at /console/#/admin)");
    println!("item pages       http://{address}/items/<sku_id>.html  (rendered at publish)");
    if let Some(edge) = &edge {
        println!(
            "edge (nginx)     http://{}  (pages, stock documents cached a second; the API behind it)",
            edge.address
        );
    }
    println!("API              http://{address}  (Ctrl-C stops everything)");
    // The peer's address is the client address the limits count.
    axum::serve(
        listener,
        local_server::api(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
