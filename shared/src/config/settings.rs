//! Every setting the project reads from the environment, in one table:
//! its name, default, where it applies and what it means. The functions
//! read theirs through [`super::Config`]; the local server, the scripts and
//! the test suites read the rest, named here. `docs/configuration.md` is
//! this table, and `tests/tests/configuration.rs` fails if the code reads a
//! setting that is not here, if one here is read nowhere, or if the page
//! and the table disagree.

/// Where a setting is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    /// The deployed functions (and `sam local`).
    Cloud,
    /// The local server (`scripts/dev.sh`).
    Local,
    /// Both.
    Both,
    /// The scripts of `scripts/`.
    Scripts,
    /// The test suites.
    Tests,
}

impl Applies {
    pub fn name(self) -> &'static str {
        match self {
            Applies::Cloud => "cloud",
            Applies::Local => "local",
            Applies::Both => "both",
            Applies::Scripts => "scripts",
            Applies::Tests => "tests",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub name: &'static str,
    pub default: &'static str,
    pub applies: Applies,
    pub meaning: &'static str,
}

const fn setting(name: &'static str, default: &'static str, applies: Applies, meaning: &'static str) -> Setting {
    Setting {
        name,
        default,
        applies,
        meaning,
    }
}

use Applies::{Both, Cloud, Local, Scripts, Tests};

pub const SETTINGS: &[Setting] = &[
    // The gate.
    setting(
        "REDIS_URL",
        "required",
        Cloud,
        "the cache: `redis://host:port`, or `rediss://` for TLS (the local server starts its own)",
    ),
    setting(
        "REDIS_CLUSTER",
        "`false`",
        Both,
        "`true` for Redis Cluster: every engine the template deploys; locally, three masters on loopback",
    ),
    setting(
        "REDIS_PASSWORD",
        "none",
        Cloud,
        "the cache user's password, put into `REDIS_URL` (a `sam local` run; in the cloud, `REDIS_PASSWORD_ARN`)",
    ),
    setting(
        "REDIS_PASSWORD_ARN",
        "none",
        Cloud,
        "the Secrets Manager secret holding the cache user's password, read once per cold start",
    ),
    setting(
        "REDIS_WAIT_REPLICAS",
        "`0` (off)",
        Cloud,
        "after every script, wait until this many replicas have its writes, else answer 503 (the template sets 1 on a node-based cache)",
    ),
    setting("REDIS_WAIT_TIMEOUT_MS", "`100`", Cloud, "how long that wait may take"),
    setting("REDIS_KEY_PREFIX", "empty", Cloud, "prepended to every Redis key"),
    // The ledger.
    setting(
        "DYNAMODB_ENDPOINT",
        "AWS's",
        Cloud,
        "DynamoDB Local's address, for `sam local` and `seed-admin` there (the local server starts its own)",
    ),
    setting(
        "TABLE_PREFIX",
        "empty",
        Cloud,
        "prepended to every table name (`shared/src/ledger/tables.rs` lists the tables)",
    ),
    setting(
        "ORDER_LISTING_LAG_MS",
        "`7000` (local server: 1000)",
        Cloud,
        "how long after an order write began a SKU's order listing surely shows it (the write's 5 s timeout plus index propagation); a rebuild of a SKU the gate lost waits this long",
    ),
    // Tokens and operators.
    setting(
        "JWT_SECRET",
        "required (local server: random per run)",
        Both,
        "the token signing key itself, at least 32 bytes (local runs; in the cloud, `JWT_SECRET_ARN`)",
    ),
    setting(
        "JWT_SECRET_ARN",
        "none",
        Cloud,
        "the Secrets Manager secret holding the token signing key, read once per cold start",
    ),
    setting("TOKEN_TTL_SECONDS", "`7200`", Cloud, "how long a login lasts"),
    // The edge and the item pages.
    setting(
        "EDGE_KEY",
        "none",
        Cloud,
        "the key the edge in front of the API proves itself with (header `x-flashsale-edge`), at least 32 bytes; with it, the viewer address the edge passes on (`CloudFront-Viewer-Address`) is what per-address limits count (a `sam local` run; in the cloud, `EDGE_KEY_ARN`; the local server makes one per run for its nginx)",
    ),
    setting(
        "EDGE_KEY_ARN",
        "none",
        Cloud,
        "the Secrets Manager secret holding the edge's key, read once per cold start (the accounts function)",
    ),
    setting(
        "PAGES_BUCKET",
        "required (the edge function)",
        Cloud,
        "the S3 bucket the edge function renders item pages into (`items/<sku_id>.html`)",
    ),
    setting(
        "TICKET_LIST",
        "required (the edge function)",
        Cloud,
        "the CloudFront KeyValueStore the edge function lists the sales that ask tickets in, with the ticket key, for the Function in front of grab and claim",
    ),
    setting(
        "ADMIN_LOGIN",
        "required",
        Cloud,
        "the first operator's login name, which `seed-admin` creates",
    ),
    setting(
        "ADMIN_PASSWORD",
        "`admin` (local server)",
        Both,
        "the first operator's password (local runs and the rehearsal; in the cloud, `ADMIN_PASSWORD_ARN`)",
    ),
    setting(
        "ADMIN_PASSWORD_ARN",
        "none",
        Cloud,
        "the Secrets Manager secret holding the first operator's password, read by `seed-admin`",
    ),
    // Payment providers.
    setting(
        "SANDBOX_PAYMENTS",
        "`true`",
        Both,
        "whether the sandbox, which approves without moving money, is offered; `false` where money is real (the template turns it off with any provider)",
    ),
    setting(
        "STRIPE_SECRET_KEY",
        "none (Stripe not offered)",
        Both,
        "Stripe's API key `sk_…` (local runs: `./scripts/dev.sh` gives localstripe's; in the cloud, `STRIPE_SECRET_KEY_ARN`)",
    ),
    setting(
        "STRIPE_SECRET_KEY_ARN",
        "none",
        Cloud,
        "the Secrets Manager secret holding Stripe's API key, read once per cold start",
    ),
    setting(
        "STRIPE_WEBHOOK_SECRET",
        "none (Stripe not offered)",
        Both,
        "the `whsec_…` secret Stripe signs our webhooks with (in the cloud, `STRIPE_WEBHOOK_SECRET_ARN`)",
    ),
    setting(
        "STRIPE_WEBHOOK_SECRET_ARN",
        "none",
        Cloud,
        "the Secrets Manager secret holding Stripe's webhook signing secret",
    ),
    setting(
        "STRIPE_API_BASE",
        "`https://api.stripe.com/`",
        Both,
        "where Stripe's API is: a stand-in's address locally (localstripe)",
    ),
    setting(
        "STRIPE_PUBLISHABLE_KEY",
        "none (the shop offers no card form)",
        Both,
        "Stripe's publishable key `pk_…`, which the shop's card form (Stripe.js) pays with (local runs: `./scripts/dev.sh` gives its Stripe.js stand-in's)",
    ),
    setting(
        "STRIPE_JS_URL",
        "`https://js.stripe.com/v3/`",
        Local,
        "where the shop loads Stripe.js from: a stand-in's address locally (`./scripts/dev.sh` starts one beside localstripe)",
    ),
    setting(
        "ALIPAY_APP_ID",
        "none (Alipay not offered)",
        Both,
        "the app's id on Alipay's open platform (local runs: `./scripts/dev.sh` runs a stand-in when unset)",
    ),
    setting(
        "ALIPAY_PRIVATE_KEY",
        "required with `ALIPAY_APP_ID`",
        Both,
        "the app's RSA private key, PKCS #8 or #1, PEM or bare base64 (in the cloud, `ALIPAY_PRIVATE_KEY_ARN`)",
    ),
    setting(
        "ALIPAY_PRIVATE_KEY_ARN",
        "none",
        Cloud,
        "the Secrets Manager secret holding the app's Alipay private key",
    ),
    setting(
        "ALIPAY_PUBLIC_KEY",
        "required with `ALIPAY_APP_ID`",
        Both,
        "Alipay's public key (bare base64 as its console shows it, or PEM): verifies its answers and notifications",
    ),
    setting(
        "ALIPAY_GATEWAY",
        "`https://openapi.alipay.com/gateway.do`",
        Both,
        "Alipay's gateway: the sandbox's (`https://openapi-sandbox.dl.alipaydev.com/gateway.do`) or a stand-in's",
    ),
    setting(
        "ALIPAY_SELLER_ID",
        "none (not checked)",
        Both,
        "the merchant's Alipay account; notifications for another are refused",
    ),
    setting(
        "WECHATPAY_MCH_ID",
        "none (WeChat Pay not offered)",
        Both,
        "the merchant id (`mchid`) of WeChat Pay API v3 (local runs: `./scripts/dev.sh` runs a stand-in when unset)",
    ),
    setting(
        "WECHATPAY_APP_ID",
        "required with `WECHATPAY_MCH_ID`",
        Both,
        "the `appid` the merchant pays under (an official account's or an app's)",
    ),
    setting(
        "WECHATPAY_PRIVATE_KEY",
        "required with `WECHATPAY_MCH_ID`",
        Both,
        "the merchant API certificate's private key, `apiclient_key.pem` (in the cloud, `WECHATPAY_PRIVATE_KEY_ARN`)",
    ),
    setting(
        "WECHATPAY_PRIVATE_KEY_ARN",
        "none",
        Cloud,
        "the Secrets Manager secret holding the merchant API private key",
    ),
    setting(
        "WECHATPAY_MERCHANT_SERIAL",
        "required with `WECHATPAY_MCH_ID`",
        Both,
        "the merchant API certificate's serial, sent with every signed request",
    ),
    setting(
        "WECHATPAY_API_V3_KEY",
        "required with `WECHATPAY_MCH_ID`",
        Both,
        "the 32-byte APIv3 key that decrypts notifications (in the cloud, `WECHATPAY_API_V3_KEY_ARN`)",
    ),
    setting(
        "WECHATPAY_API_V3_KEY_ARN",
        "none",
        Cloud,
        "the Secrets Manager secret holding the APIv3 key",
    ),
    setting(
        "WECHATPAY_PUBLIC_KEY_ID",
        "none",
        Both,
        "the id (`PUB_KEY_ID_…`) of WeChat Pay's public key; with `WECHATPAY_PUBLIC_KEY`, its PEM",
    ),
    setting(
        "WECHATPAY_PUBLIC_KEY",
        "required with `WECHATPAY_PUBLIC_KEY_ID`",
        Both,
        "WeChat Pay's public key (PEM): verifies what is signed under `WECHATPAY_PUBLIC_KEY_ID`",
    ),
    setting(
        "WECHATPAY_PLATFORM_SERIAL",
        "none",
        Both,
        "a platform certificate's serial, for merchants still on certificates; with `WECHATPAY_PLATFORM_KEY`, its public key",
    ),
    setting(
        "WECHATPAY_PLATFORM_KEY",
        "required with `WECHATPAY_PLATFORM_SERIAL`",
        Both,
        "that certificate's public key (PEM, `openssl x509 -pubkey -noout`); during a migration set both kinds",
    ),
    setting(
        "WECHATPAY_API_BASE",
        "`https://api.mch.weixin.qq.com`",
        Both,
        "where WeChat Pay's API is: a stand-in's address locally",
    ),
    setting(
        "PUBLIC_API_URL",
        "required with `ALIPAY_APP_ID` or `WECHATPAY_MCH_ID`",
        Both,
        "where providers reach the API, for the notify URLs they are given (`<url>/payments/<provider>/notify`)",
    ),
    setting(
        "SHOP_URL",
        "none",
        Both,
        "the shop's page (the console) a provider's cashier sends the shopper back to (Alipay's `return_url`)",
    ),
    // Admission.
    setting(
        "SOLD_OUT_MEMO_MS",
        "`1000`",
        Cloud,
        "how long an instance repeats a sold-out or exhausted answer from memory (at most 1000, 0 off)",
    ),
    setting(
        "RATE_LIMIT_GRAB",
        "`5/1s`",
        Both,
        "grabs per shopper: `<count>/<period>` (period in s, m or h) or `off`",
    ),
    setting("RATE_LIMIT_CLAIM", "`10/1s`", Both, "claims per shopper"),
    setting("RATE_LIMIT_PAY", "`10/60s`", Both, "payments per shopper"),
    setting(
        "RATE_LIMIT_REGISTER",
        "`20/3600s` (local server: off)",
        Both,
        "registrations per client address",
    ),
    setting(
        "RATE_LIMIT_LOGIN",
        "`30/60s` (local server: off)",
        Both,
        "shopper sign-ins per client address",
    ),
    setting(
        "RATE_LIMIT_ADMIN_LOGIN",
        "`10/60s` (local server: off)",
        Both,
        "operator sign-ins per client address",
    ),
    setting(
        "RATE_LIMIT_FAILED_LOGIN",
        "`5/900s`",
        Both,
        "failed sign-ins in a row per account and address; over it, that address waits",
    ),
    setting(
        "RATE_LIMIT_ACCOUNT_LOGIN",
        "`20/900s`",
        Both,
        "sign-ins per account from every address; over it, a sign-in must bring a solved challenge",
    ),
    setting(
        "SLOT_UTC_OFFSET",
        "`+08:00`",
        Cloud,
        "the time zone of the daily timetable's times of day",
    ),
    // Hot items.
    setting(
        "HOT_RATE",
        "`200`",
        Both,
        "requests a second (views and grabs, over 10 s) that make a SKU hot",
    ),
    setting(
        "HOT_SHARDS",
        "the cache's masters",
        Both,
        "shards a hot SKU's stock is split over (a serverless cache shows one master: set it there)",
    ),
    setting(
        "HOT_SWEEP_SECONDS",
        "`10` (local server: 5)",
        Both,
        "seconds between two looks of the hot-item discovery job, 1 to 60",
    ),
    // The warm-up job (shared/src/domain/warm.rs).
    setting(
        "WARM_LEAD_MINUTES",
        "`10`",
        Cloud,
        "how long before a sale or rain opens its crowd function's instances are asked for (provisioning takes minutes), 0 to 120",
    ),
    setting(
        "WARM_HOLD_MINUTES",
        "`15`",
        Cloud,
        "how long after it opens (or until it ends, if sooner) they are kept, 0 to 120",
    ),
    setting(
        "WARM_SECONDS_PER_REQUEST",
        "`0.02`",
        Cloud,
        "one request's share of an instance: the crowd functions' p99 duration, from the dashboard",
    ),
    setting(
        "WARM_CROWD",
        "`0`",
        Cloud,
        "requests a second a sale without a waiting room is warmed for (0: such sales are not warmed; a room's rate sizes its own)",
    ),
    setting(
        "WARM_LIMIT",
        "`100`",
        Cloud,
        "the most instances kept warm per crowd function: a share of the account's concurrency quota; above 0, no waiting room calls more places a second than they serve (`WARM_LIMIT / (4 × WARM_SECONDS_PER_REQUEST)`)",
    ),
    setting(
        "GRAB_FUNCTION",
        "required (the warm-up job)",
        Cloud,
        "the grab function's name, whose `live` alias is warmed",
    ),
    setting(
        "CLAIM_FUNCTION",
        "required (the warm-up job)",
        Cloud,
        "the claim function's name, whose `live` alias is warmed",
    ),
    // The local server.
    setting("PORT", "`3000`", Local, "the port it listens on, on 127.0.0.1"),
    setting(
        "TIMEOUT_SWEEP_SECONDS",
        "`5`",
        Local,
        "seconds between runs of the order-timeout job (the template's `OrderTimeoutRate`)",
    ),
    setting(
        "PAYOUT_SWEEP_SECONDS",
        "`5`",
        Local,
        "seconds between runs of the payout job (`PayoutRate`)",
    ),
    setting(
        "RECONCILE_SWEEP_SECONDS",
        "`30`",
        Local,
        "seconds between runs of the reconciliation job (`ReconcileRate`)",
    ),
    setting(
        "PAYMENTS_SWEEP_SECONDS",
        "`30`",
        Local,
        "seconds between runs of the payments job (`PaymentsRate`)",
    ),
    setting(
        "DYNAMODB_LOCAL_DIR",
        "`~/.cache/flashsale/dynamodb-local/package/emulator`",
        Local,
        "where DynamoDB Local's jar is (the local server and the test suites start it from there)",
    ),
    // The scripts.
    setting(
        "FLASHSALE_CACHE",
        "`~/.cache/flashsale`",
        Scripts,
        "where the scripts keep DynamoDB Local, screenshots and other downloads",
    ),
    setting(
        "CARGO_TARGET_DIR",
        "`~/.cache/flashsale/target`",
        Scripts,
        "Cargo's build directory, outside the clone",
    ),
    setting(
        "SCREENSHOTS",
        "`$FLASHSALE_CACHE/console-screenshots`",
        Scripts,
        "where `browser-test.sh` saves the console's screenshots",
    ),
    setting(
        "FUZZ_EXAMPLES",
        "`50`",
        Scripts,
        "cases per operation and pass of `fuzz.sh`",
    ),
    setting("FUZZ_SEED", "`1`", Scripts, "the seed of `fuzz.sh`, for another sample"),
    setting(
        "STACK",
        "`flashsale`",
        Scripts,
        "the stack `deploy-console.sh` uploads the console to",
    ),
    // The tests.
    setting(
        "SIM_SEEDS",
        "`2000`",
        Tests,
        "seeds the simulation runs (more is a soak)",
    ),
    setting(
        "SIM_SEED",
        "none",
        Tests,
        "one seed of the simulation, replayed with its steps printed",
    ),
    setting(
        "DIFFERENTIAL_SEEDS",
        "`12`",
        Tests,
        "seeds the differential test runs per mode",
    ),
];
