//! Settings, read once per cold start from the environment. Every
//! setting of the project, read here or elsewhere, is in [`SETTINGS`].

mod settings;

use std::time::Duration;

pub use settings::{Applies, SETTINGS, Setting};

pub use crate::secrets::Secret;
use crate::{
    domain::{
        admission::{Action, Limits},
        hot::HotSettings,
        warm::WarmSettings,
    },
    gate::ReplicaWait,
    ledger::LISTING_LAG,
    pages::FolderPages,
    payments::{AlipayKeys, StripeKeys, StripeShop, WechatKeys, alipay},
    ports::Rate,
    secrets::SecretsManager,
};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `REDIS_URL`, e.g. `redis://127.0.0.1:6379` or `rediss://user@…`
    /// with TLS, and the password `REDIS_PASSWORD` (or the secret
    /// `REDIS_PASSWORD_ARN`) put into it.
    pub redis_url: String,
    /// `REDIS_CLUSTER=true` for Redis Cluster (ElastiCache cluster mode).
    pub redis_cluster: bool,
    /// `REDIS_WAIT_REPLICAS` (default 0, off) and `REDIS_WAIT_TIMEOUT_MS`
    /// (default 100): after every script the gate waits until this many
    /// replicas have its writes, and fails the call if they do not in time.
    pub redis_wait: Option<ReplicaWait>,
    /// `REDIS_KEY_PREFIX`, prepended to every key; empty by default.
    pub redis_key_prefix: String,
    /// `DYNAMODB_ENDPOINT`, set only for DynamoDB Local.
    pub dynamodb_endpoint: Option<String>,
    /// `TABLE_PREFIX`, prepended to every table's logical name.
    pub table_prefix: String,
    /// `ORDER_LISTING_LAG_MS`: how long after a grab's order write began
    /// it surely shows in a SKU's order listing (the write's timeout plus
    /// the index's propagation; see `ledger::LISTING_LAG`). A rebuild of a
    /// SKU the gate lost waits this long before reading the ledger.
    pub order_listing_lag: Duration,
    /// `JWT_SECRET` (or the secret `JWT_SECRET_ARN`), at least 32 bytes;
    /// signs every bearer token.
    pub jwt_secret: Secret,
    /// `TOKEN_TTL_SECONDS`, how long a login lasts (default 2 hours).
    pub token_ttl: Duration,
    /// `SOLD_OUT_MEMO_MS` (default 1000, at most 1000; 0 turns it off):
    /// how long an instance answers a sale it saw sold out (or a rain it
    /// saw exhausted) from memory before asking the gate again, which is
    /// also how late a unit given back may be for its shoppers.
    pub sold_out_memo: Duration,
    /// `RATE_LIMIT_<ACTION>` (`RATE_LIMIT_GRAB=5/1s`, `…=off`): how often
    /// each client may do each counted action (see `domain::admission`).
    pub limits: Limits,
    /// `SLOT_UTC_OFFSET`, the time zone the timetable's times of day are in
    /// (default `+08:00`, China Standard Time, as the seed's timetable).
    pub slot_utc_offset: chrono::FixedOffset,
    /// `HOT_RATE` (requests a second over 10 s, default 200) and
    /// `HOT_SHARDS` (default: the cache's masters): when a SKU is hot, and
    /// over how many shards its stock is then split (see `domain::hot`).
    pub hot: HotSettings,
    /// With `WARM_LIMIT` (the cloud, where instances are warmed): the most
    /// places a second any waiting room calls, what those instances serve
    /// (`WarmSettings::room_rate`). None locally.
    pub room_rate_cap: Option<u32>,
    /// Where the rendered item pages go: a folder the local server serves
    /// (it makes one per run); none in the cloud, where the edge function
    /// renders them (`PAGES_BUCKET`, [`pages_bucket`]).
    pub pages: Option<FolderPages>,
    /// `EDGE_KEY` (or the secret `EDGE_KEY_ARN`): the edge in front of the
    /// API, whose word on the viewer's address is taken ([`EDGE_KEY`]);
    /// none, and every request's address is its own peer's.
    pub edge_key: Option<Secret>,
    /// `SANDBOX_PAYMENTS`: whether new payments may go to the sandbox,
    /// which approves without moving money.
    pub sandbox_payments: bool,
    /// `STRIPE_SECRET_KEY` and `STRIPE_WEBHOOK_SECRET` (or their `_ARN`
    /// secrets), and `STRIPE_API_BASE`: Stripe is offered once both keys
    /// are given.
    pub stripe: Option<StripeKeys>,
    /// `ALIPAY_APP_ID`, `ALIPAY_PRIVATE_KEY` (or its `_ARN` secret),
    /// `ALIPAY_PUBLIC_KEY`, `ALIPAY_GATEWAY`, `ALIPAY_SELLER_ID` and
    /// `PUBLIC_API_URL`: Alipay is offered once its app id is given.
    pub alipay: Option<AlipayKeys>,
    /// `WECHATPAY_MCH_ID` and the rest of `WECHATPAY_*` (secrets by
    /// `_ARN` in the cloud) and `PUBLIC_API_URL`: WeChat Pay is offered
    /// once its merchant id is given.
    pub wechat: Option<WechatKeys>,
}

/// China Standard Time, the seed data's zone.
pub fn default_slot_offset() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset")
}

pub const MIN_SECRET_BYTES: usize = 32;

/// The longest a sold-out answer may be repeated from memory: a unit given
/// back must be on sale again for every shopper within a second.
pub const MAX_SOLD_OUT_MEMO: Duration = Duration::from_secs(1);

/// Locally every client is 127.0.0.1, so limits per address would count
/// every shopper of a rehearsal as one; the rest are as deployed.
fn local_limits() -> Limits {
    [Action::Register, Action::Login, Action::AdminLogin]
        .into_iter()
        .fold(Limits::defaults(), |limits, action| limits.with(action, None))
}

/// `base`, with each action's `RATE_LIMIT_<ACTION>` setting over it.
pub fn limits_from(vars: Vars<'_>, base: Limits) -> Result<Limits, ConfigError> {
    let mut limits = base;
    for (action, name) in Action::ALL.into_iter().zip(RATE_LIMIT_SETTINGS) {
        if let Some(value) = vars(name) {
            let rate = rate_setting(&value).map_err(|reason| ConfigError::Invalid { name, reason })?;
            limits = limits.with(action, rate);
        }
    }
    Ok(limits)
}

/// The setting of each [`Action`], in the order of [`Action::ALL`].
pub const RATE_LIMIT_SETTINGS: [&str; 8] = [
    "RATE_LIMIT_GRAB",
    "RATE_LIMIT_CLAIM",
    "RATE_LIMIT_PAY",
    "RATE_LIMIT_REGISTER",
    "RATE_LIMIT_LOGIN",
    "RATE_LIMIT_ADMIN_LOGIN",
    "RATE_LIMIT_FAILED_LOGIN",
    "RATE_LIMIT_ACCOUNT_LOGIN",
];

/// `off`, or `<count>/<period>` with the period in s, m or h: `5/1s`,
/// `20/1h`.
fn rate_setting(value: &str) -> Result<Option<Rate>, String> {
    if value == "off" {
        return Ok(None);
    }
    let invalid = || format!("`{value}` is neither `off` nor `<count>/<period>` like `5/1s`, `20/1h`");
    let (count, period) = value.split_once('/').ok_or_else(invalid)?;
    let unit = match period.chars().last() {
        Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3600,
        _ => return Err(invalid()),
    };
    let count: u32 = count.parse().map_err(|_| invalid())?;
    let amount: u64 = period[..period.len() - 1].parse().map_err(|_| invalid())?;
    if count == 0 || amount == 0 {
        return Err(invalid());
    }
    Ok(Some(Rate {
        count,
        period: Duration::from_secs(amount.saturating_mul(unit)),
    }))
}

/// `HOT_RATE` and `HOT_SHARDS` over `base`.
pub fn hot_from(vars: Vars<'_>, base: HotSettings) -> Result<HotSettings, ConfigError> {
    let rate: f64 = parse(vars, "HOT_RATE", base.rate)?;
    if !(rate.is_finite() && rate > 0.0) {
        return Err(ConfigError::Invalid {
            name: "HOT_RATE",
            reason: "must be a number of requests a second above 0".into(),
        });
    }
    let shards = match vars("HOT_SHARDS") {
        None => base.shards,
        Some(_) => Some(parse(vars, "HOT_SHARDS", 1u32)?),
    };
    if shards.is_some_and(|shards| !(1..=MAX_HOT_SHARDS).contains(&shards)) {
        return Err(ConfigError::Invalid {
            name: "HOT_SHARDS",
            reason: format!("must be between 1 and {MAX_HOT_SHARDS}"),
        });
    }
    Ok(HotSettings { rate, shards })
}

/// More shards than this spread a SKU no further on any cache worth having
/// and make every sold-out answer of a shard probe them all.
const MAX_HOT_SHARDS: u32 = 64;

fn sold_out_memo(millis: u64) -> Result<Duration, ConfigError> {
    let memo = Duration::from_millis(millis);
    if memo > MAX_SOLD_OUT_MEMO {
        return Err(ConfigError::Invalid {
            name: "SOLD_OUT_MEMO_MS",
            reason: format!("must be at most {}", MAX_SOLD_OUT_MEMO.as_millis()),
        });
    }
    Ok(memo)
}

/// `HOT_SWEEP_SECONDS` (default 10, from 1 to 60): how often the hot-sweep
/// function looks, within each minute its schedule starts it.
pub fn hot_sweep_period() -> Result<Duration, ConfigError> {
    hot_sweep_period_in(&env_var)
}

fn hot_sweep_period_in(vars: Vars<'_>) -> Result<Duration, ConfigError> {
    let seconds: u64 = parse(vars, "HOT_SWEEP_SECONDS", 10)?;
    if !(1..=60).contains(&seconds) {
        return Err(ConfigError::Invalid {
            name: "HOT_SWEEP_SECONDS",
            reason: "must be between 1 and 60".into(),
        });
    }
    Ok(Duration::from_secs(seconds))
}

/// The `WARM_*` settings (the warm-up job's).
pub fn warm_settings() -> Result<WarmSettings, ConfigError> {
    warm_from(&env_var)
}

fn warm_from(vars: Vars<'_>) -> Result<WarmSettings, ConfigError> {
    let base = WarmSettings::default();
    let minutes = |name: &'static str, minutes: i64| {
        if (0..=120).contains(&minutes) {
            Ok(chrono::Duration::minutes(minutes))
        } else {
            Err(ConfigError::Invalid {
                name,
                reason: "must be between 0 and 120 minutes".into(),
            })
        }
    };
    let lead = minutes(
        "WARM_LEAD_MINUTES",
        parse(vars, "WARM_LEAD_MINUTES", base.lead.num_minutes())?,
    )?;
    let hold = minutes(
        "WARM_HOLD_MINUTES",
        parse(vars, "WARM_HOLD_MINUTES", base.hold.num_minutes())?,
    )?;
    let seconds_per_request: f64 = parse(vars, "WARM_SECONDS_PER_REQUEST", base.seconds_per_request)?;
    if !(seconds_per_request > 0.0 && seconds_per_request <= 30.0) {
        return Err(ConfigError::Invalid {
            name: "WARM_SECONDS_PER_REQUEST",
            reason: "must be a number of seconds above 0, at most 30".into(),
        });
    }
    Ok(WarmSettings {
        lead,
        hold,
        seconds_per_request,
        crowd: parse(vars, "WARM_CROWD", base.crowd)?,
        limit: parse(vars, "WARM_LIMIT", base.limit)?,
    })
}

/// With `WARM_LIMIT` above 0 (instances are warmed), the most places a
/// second a waiting room calls: what they serve. None otherwise (locally,
/// or with warming off, nothing holds the operator's rate).
fn room_rate_cap(vars: Vars<'_>) -> Result<Option<u32>, ConfigError> {
    if vars("WARM_LIMIT").is_none() {
        return Ok(None);
    }
    let warm = warm_from(vars)?;
    Ok((warm.limit > 0).then(|| warm.room_rate()))
}

/// `TABLE_PREFIX`, for a binary that needs the ledger's names alone.
pub fn table_prefix() -> String {
    table_prefix_in(&env_var)
}

fn table_prefix_in(vars: Vars<'_>) -> String {
    vars("TABLE_PREFIX").unwrap_or_default()
}

/// A setting's value by name: the environment, or a test's own map.
pub type Vars<'a> = &'a (dyn Fn(&str) -> Option<String> + Sync);

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A setting that must be present and non-empty.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    required_in(&env_var, name)
}

fn required_in(vars: Vars<'_>, name: &'static str) -> Result<String, ConfigError> {
    vars(name).ok_or(ConfigError::Missing(name))
}

/// A secret setting: its value in `name` (local runs), or the Secrets
/// Manager secret whose ARN is in `arn` (the cloud; see `secrets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretSetting {
    pub name: &'static str,
    pub arn: &'static str,
}

/// Signs every bearer token; at least [`MIN_SECRET_BYTES`].
pub const JWT_SECRET: SecretSetting = SecretSetting {
    name: "JWT_SECRET",
    arn: "JWT_SECRET_ARN",
};
/// The password of the functions' cache user, put into `REDIS_URL`.
pub const REDIS_PASSWORD: SecretSetting = SecretSetting {
    name: "REDIS_PASSWORD",
    arn: "REDIS_PASSWORD_ARN",
};
/// The first operator's password (`seed-admin`).
pub const ADMIN_PASSWORD: SecretSetting = SecretSetting {
    name: "ADMIN_PASSWORD",
    arn: "ADMIN_PASSWORD_ARN",
};
/// The key the edge (CloudFront; nginx locally) proves itself with in a
/// header only it sets on its requests to the API, so that the viewer's
/// address it passes on is believed (`http::ClientAddress`); at least
/// [`MIN_SECRET_BYTES`].
pub const EDGE_KEY: SecretSetting = SecretSetting {
    name: "EDGE_KEY",
    arn: "EDGE_KEY_ARN",
};
/// Stripe's API key (`sk_…`).
pub const STRIPE_SECRET_KEY: SecretSetting = SecretSetting {
    name: "STRIPE_SECRET_KEY",
    arn: "STRIPE_SECRET_KEY_ARN",
};
/// The secret Stripe signs our webhooks with (`whsec_…`).
pub const STRIPE_WEBHOOK_SECRET: SecretSetting = SecretSetting {
    name: "STRIPE_WEBHOOK_SECRET",
    arn: "STRIPE_WEBHOOK_SECRET_ARN",
};

/// A setting's value refused, and why.
fn invalid(name: &'static str) -> impl Fn(String) -> ConfigError {
    move |reason| ConfigError::Invalid { name, reason }
}

/// `SANDBOX_PAYMENTS`, on unless turned off.
pub fn sandbox_payments_in(vars: Vars<'_>) -> Result<bool, ConfigError> {
    parse(vars, "SANDBOX_PAYMENTS", true)
}

/// Where `provider` sends its notifications: `PUBLIC_API_URL`'s route.
fn notify_url(vars: Vars<'_>, provider: &str) -> Result<String, ConfigError> {
    let api = required_in(vars, "PUBLIC_API_URL")?;
    Ok(format!("{}/payments/{provider}/notify", api.trim_end_matches('/')))
}

/// The app's private key of Alipay's open platform.
pub const ALIPAY_PRIVATE_KEY: SecretSetting = SecretSetting {
    name: "ALIPAY_PRIVATE_KEY",
    arn: "ALIPAY_PRIVATE_KEY_ARN",
};

/// Alipay's settings, if its app id is given; then the rest are required.
pub async fn alipay_from(vars: Vars<'_>, secrets: Option<&SecretsManager>) -> Result<Option<AlipayKeys>, ConfigError> {
    let Some(app_id) = vars("ALIPAY_APP_ID") else {
        return Ok(None);
    };
    let app_key = ALIPAY_PRIVATE_KEY.required(vars, secrets).await?;
    Ok(Some(AlipayKeys {
        app_id,
        app_key: alipay::private_key(&app_key.0).map_err(invalid(ALIPAY_PRIVATE_KEY.name))?,
        alipay_key: alipay::public_key(&required_in(vars, "ALIPAY_PUBLIC_KEY")?)
            .map_err(invalid("ALIPAY_PUBLIC_KEY"))?,
        gateway: vars("ALIPAY_GATEWAY").unwrap_or_else(|| "https://openapi.alipay.com/gateway.do".into()),
        seller_id: vars("ALIPAY_SELLER_ID"),
        notify_url: notify_url(vars, "alipay")?,
        return_url: vars("SHOP_URL"),
    }))
}

/// The merchant API certificate's private key of WeChat Pay.
pub const WECHATPAY_PRIVATE_KEY: SecretSetting = SecretSetting {
    name: "WECHATPAY_PRIVATE_KEY",
    arn: "WECHATPAY_PRIVATE_KEY_ARN",
};
/// WeChat Pay's APIv3 key (32 bytes): decrypts its notifications.
pub const WECHATPAY_API_V3_KEY: SecretSetting = SecretSetting {
    name: "WECHATPAY_API_V3_KEY",
    arn: "WECHATPAY_API_V3_KEY_ARN",
};

/// WeChat Pay's settings, if its merchant id is given; then the rest are
/// required, and at least one key of WeChat Pay's: its public key (with
/// its `PUB_KEY_ID_…`) or a platform certificate's (with the serial).
pub async fn wechat_from(vars: Vars<'_>, secrets: Option<&SecretsManager>) -> Result<Option<WechatKeys>, ConfigError> {
    let Some(mch_id) = vars("WECHATPAY_MCH_ID") else {
        return Ok(None);
    };
    let merchant_key = WECHATPAY_PRIVATE_KEY.required(vars, secrets).await?;
    let api_v3_key = WECHATPAY_API_V3_KEY.required(vars, secrets).await?;
    if api_v3_key.0.len() != 32 {
        return Err(invalid(WECHATPAY_API_V3_KEY.name)("must be 32 bytes".into()));
    }
    let public_key = match vars("WECHATPAY_PUBLIC_KEY_ID") {
        Some(id) => Some((id, required_in(vars, "WECHATPAY_PUBLIC_KEY")?, "WECHATPAY_PUBLIC_KEY")),
        None => None,
    };
    let certificate = match vars("WECHATPAY_PLATFORM_SERIAL") {
        Some(serial) => Some((
            serial,
            required_in(vars, "WECHATPAY_PLATFORM_KEY")?,
            "WECHATPAY_PLATFORM_KEY",
        )),
        None => None,
    };
    let mut platform_keys = Vec::new();
    for (serial, pem, name) in public_key.into_iter().chain(certificate) {
        platform_keys.push((serial, alipay::public_key(&pem).map_err(invalid(name))?));
    }
    if platform_keys.is_empty() {
        return Err(ConfigError::Missing("WECHATPAY_PUBLIC_KEY_ID"));
    }
    Ok(Some(WechatKeys {
        mch_id,
        app_id: required_in(vars, "WECHATPAY_APP_ID")?,
        merchant_key: alipay::private_key(&merchant_key.0).map_err(invalid(WECHATPAY_PRIVATE_KEY.name))?,
        merchant_serial: required_in(vars, "WECHATPAY_MERCHANT_SERIAL")?,
        api_v3_key,
        platform_keys,
        api_base: vars("WECHATPAY_API_BASE").unwrap_or_else(|| "https://api.mch.weixin.qq.com".into()),
        notify_url: notify_url(vars, "wechat")?,
    }))
}

/// Stripe's keys, if both are given; one without the other is a mistake.
pub async fn stripe_from(vars: Vars<'_>, secrets: Option<&SecretsManager>) -> Result<Option<StripeKeys>, ConfigError> {
    let secret_key = STRIPE_SECRET_KEY.read(vars, secrets).await?;
    let webhook_secret = STRIPE_WEBHOOK_SECRET.read(vars, secrets).await?;
    let (secret_key, webhook_secret) = match (secret_key, webhook_secret) {
        (None, None) => return Ok(None),
        (Some(secret_key), Some(webhook_secret)) => (secret_key, webhook_secret),
        (Some(_), None) => return Err(ConfigError::Missing(STRIPE_WEBHOOK_SECRET.name)),
        (None, Some(_)) => return Err(ConfigError::Missing(STRIPE_SECRET_KEY.name)),
    };
    // A placeholder (the template's secret before the key is put) is
    // refused at start rather than offered and failing every payment.
    if !["sk_", "rk_"].iter().any(|prefix| secret_key.0.starts_with(prefix)) {
        return Err(invalid(STRIPE_SECRET_KEY.name)(
            "not a Stripe key (sk_… or rk_…)".into(),
        ));
    }
    if !webhook_secret.0.starts_with("whsec_") {
        return Err(invalid(STRIPE_WEBHOOK_SECRET.name)(
            "not a webhook signing secret (whsec_…)".into(),
        ));
    }
    let mut api_base = vars("STRIPE_API_BASE").unwrap_or_else(|| "https://api.stripe.com/".into());
    if !api_base.ends_with('/') {
        api_base.push('/');
    }
    let shop = match vars("STRIPE_PUBLISHABLE_KEY") {
        Some(key) if !key.starts_with("pk_") => {
            return Err(invalid("STRIPE_PUBLISHABLE_KEY")("not a publishable key (pk_…)".into()));
        }
        Some(publishable_key) => Some(StripeShop {
            publishable_key,
            js: vars("STRIPE_JS_URL").unwrap_or_else(|| "https://js.stripe.com/v3/".into()),
        }),
        None => None,
    };
    Ok(Some(StripeKeys {
        secret_key,
        webhook_secret,
        api_base,
        shop,
    }))
}

impl SecretSetting {
    /// The value, if the setting is given either way.
    pub async fn read(self, vars: Vars<'_>, secrets: Option<&SecretsManager>) -> Result<Option<Secret>, ConfigError> {
        if let Some(value) = vars(self.name) {
            return Ok(Some(Secret(value)));
        }
        let Some(arn) = vars(self.arn) else {
            return Ok(None);
        };
        let secrets = secrets.ok_or(ConfigError::Invalid {
            name: self.arn,
            reason: "no Secrets Manager client to read it with".into(),
        })?;
        match secrets.value(&arn).await {
            Ok(secret) => Ok(Some(secret)),
            Err(error) => Err(ConfigError::Invalid {
                name: self.name,
                reason: error.to_string(),
            }),
        }
    }

    /// The value, which must be given one way or the other.
    pub async fn required(self, vars: Vars<'_>, secrets: Option<&SecretsManager>) -> Result<Secret, ConfigError> {
        self.read(vars, secrets).await?.ok_or(ConfigError::Missing(self.name))
    }

    /// The value from the environment, read from Secrets Manager if given
    /// by ARN; the setting is required.
    pub async fn from_env(self) -> Result<Secret, ConfigError> {
        let secrets = secrets_manager_for(&[self]).await;
        self.required(&env_var, secrets.as_ref()).await
    }
}

/// A Secrets Manager client if the environment gives any of `settings` by
/// ARN; local runs, which give values, never build one.
async fn secrets_manager_for(settings: &[SecretSetting]) -> Option<SecretsManager> {
    if settings.iter().any(|setting| env_var(setting.arn).is_some()) {
        Some(SecretsManager::from_env().await)
    } else {
        None
    }
}

/// A key, refused if too short to be a real one.
fn long_enough(setting: SecretSetting, secret: Secret) -> Result<Secret, ConfigError> {
    if secret.0.len() < MIN_SECRET_BYTES {
        return Err(ConfigError::Invalid {
            name: setting.name,
            reason: format!("must be at least {MIN_SECRET_BYTES} bytes"),
        });
    }
    Ok(secret)
}

/// The signing key, refused if too short to be a real key.
fn signing_key(secret: Secret) -> Result<Secret, ConfigError> {
    long_enough(JWT_SECRET, secret)
}

/// `JWT_SECRET` (or `JWT_SECRET_ARN`), for a function that only verifies.
pub async fn jwt_secret() -> Result<Secret, ConfigError> {
    signing_key(JWT_SECRET.from_env().await?)
}

/// `REDIS_URL` with the password put in, if one is given.
fn redis_url_with(url: String, password: Option<Secret>) -> Result<String, ConfigError> {
    let Some(password) = password else {
        return Ok(url);
    };
    let invalid = |reason: String| ConfigError::Invalid {
        name: "REDIS_URL",
        reason,
    };
    let mut parsed = url::Url::parse(&url).map_err(|e| invalid(e.to_string()))?;
    parsed
        .set_password(Some(&password.0))
        .map_err(|()| invalid("a URL without a host cannot carry a password".into()))?;
    Ok(parsed.into())
}

fn parse<T: std::str::FromStr>(vars: Vars<'_>, name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    vars(name).map_or(Ok(default), |v| {
        v.parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            reason: e.to_string(),
        })
    })
}

impl Config {
    /// A local stack (local server, tests, benchmarks): DynamoDB Local and a
    /// loopback Redis, no prefixes, the given signing key.
    pub fn local(redis_url: String, dynamodb_endpoint: String, jwt_secret: String) -> Self {
        Config {
            redis_url,
            redis_cluster: false,
            redis_wait: None,
            redis_key_prefix: String::new(),
            dynamodb_endpoint: Some(dynamodb_endpoint),
            table_prefix: String::new(),
            // DynamoDB Local on loopback answers writes in milliseconds and
            // updates its indexes with the table.
            order_listing_lag: Duration::from_secs(1),
            jwt_secret: Secret(jwt_secret),
            token_ttl: Duration::from_secs(7200),
            slot_utc_offset: default_slot_offset(),
            sold_out_memo: MAX_SOLD_OUT_MEMO,
            limits: local_limits(),
            hot: HotSettings::default(),
            room_rate_cap: None,
            pages: None,
            edge_key: None,
            sandbox_payments: true,
            stripe: None,
            alipay: None,
            wechat: None,
        }
    }

    /// From the environment; secrets given by ARN are read from Secrets
    /// Manager, once.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let secrets = secrets_manager_for(&[
            JWT_SECRET,
            REDIS_PASSWORD,
            EDGE_KEY,
            STRIPE_SECRET_KEY,
            STRIPE_WEBHOOK_SECRET,
            ALIPAY_PRIVATE_KEY,
            WECHATPAY_PRIVATE_KEY,
            WECHATPAY_API_V3_KEY,
        ])
        .await;
        Self::from_vars(&env_var, secrets.as_ref()).await
    }

    pub async fn from_vars(vars: Vars<'_>, secrets: Option<&SecretsManager>) -> Result<Self, ConfigError> {
        // Every secret at once: a cold start waits for one round trip to
        // Secrets Manager, not one per secret.
        let (jwt_secret, redis_password, edge_key, stripe, alipay, wechat) = tokio::try_join!(
            JWT_SECRET.required(vars, secrets),
            REDIS_PASSWORD.read(vars, secrets),
            EDGE_KEY.read(vars, secrets),
            stripe_from(vars, secrets),
            alipay_from(vars, secrets),
            wechat_from(vars, secrets),
        )?;
        Ok(Config {
            redis_url: redis_url_with(required_in(vars, "REDIS_URL")?, redis_password)?,
            redis_cluster: parse(vars, "REDIS_CLUSTER", false)?,
            redis_wait: match parse(vars, "REDIS_WAIT_REPLICAS", 0)? {
                0 => None,
                replicas => Some(ReplicaWait {
                    replicas,
                    timeout: Duration::from_millis(parse(vars, "REDIS_WAIT_TIMEOUT_MS", 100)?),
                }),
            },
            redis_key_prefix: vars("REDIS_KEY_PREFIX").unwrap_or_default(),
            dynamodb_endpoint: vars("DYNAMODB_ENDPOINT"),
            table_prefix: table_prefix_in(vars),
            order_listing_lag: Duration::from_millis(parse(
                vars,
                "ORDER_LISTING_LAG_MS",
                u64::try_from(LISTING_LAG.as_millis()).unwrap_or(u64::MAX),
            )?),
            jwt_secret: signing_key(jwt_secret)?,
            token_ttl: Duration::from_secs(parse(vars, "TOKEN_TTL_SECONDS", 7200)?),
            slot_utc_offset: parse(vars, "SLOT_UTC_OFFSET", default_slot_offset())?,
            sold_out_memo: sold_out_memo(parse(vars, "SOLD_OUT_MEMO_MS", 1000)?)?,
            limits: limits_from(vars, Limits::defaults())?,
            hot: hot_from(vars, HotSettings::default())?,
            room_rate_cap: room_rate_cap(vars)?,
            pages: None,
            edge_key: edge_key.map(|key| long_enough(EDGE_KEY, key)).transpose()?,
            sandbox_payments: sandbox_payments_in(vars)?,
            stripe,
            alipay,
            wechat,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_action_has_its_setting() {
        for (action, setting) in Action::ALL.iter().zip(RATE_LIMIT_SETTINGS) {
            assert_eq!(setting, format!("RATE_LIMIT_{}", action.name().to_uppercase()));
        }
    }

    #[test]
    fn a_rate_setting_is_off_or_a_count_per_period() {
        let rate = |count, seconds| {
            Some(Rate {
                count,
                period: Duration::from_secs(seconds),
            })
        };
        assert_eq!(rate_setting("5/1s"), Ok(rate(5, 1)));
        assert_eq!(rate_setting("20/1h"), Ok(rate(20, 3600)));
        assert_eq!(rate_setting("3/90m"), Ok(rate(3, 5400)));
        assert_eq!(rate_setting("off"), Ok(None));
        for wrong in ["", "5", "5/", "5/s", "0/1s", "5/0s", "5/1d", "-1/1s", "five/1s"] {
            assert!(rate_setting(wrong).is_err(), "{wrong}");
        }
    }

    #[tokio::test]
    async fn a_stripe_key_that_is_not_one_is_refused_at_start() {
        // What the template's secrets hold until the operator puts the keys.
        let placeholder = |name: &str| match name {
            "STRIPE_SECRET_KEY" => Some("q8T2mZ0vR5xK1pL7nB3cW9yH4jD6fG0s".to_owned()),
            "STRIPE_WEBHOOK_SECRET" => Some("a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6".to_owned()),
            _ => None,
        };
        assert!(stripe_from(&placeholder, None).await.is_err());
        let keys = |name: &str| match name {
            "STRIPE_SECRET_KEY" => Some("sk_test_4eC39HqLyjWDarjtT1zdp7dc".to_owned()),
            "STRIPE_WEBHOOK_SECRET" => Some("whsec_0123456789abcdef".to_owned()),
            _ => None,
        };
        assert!(stripe_from(&keys, None).await.unwrap().is_some());
    }

    #[test]
    fn warm_settings_are_checked() {
        let none = |_: &str| None;
        assert_eq!(warm_from(&none).unwrap(), WarmSettings::default());
        let vars = |name: &str| match name {
            "WARM_LEAD_MINUTES" => Some("5".to_owned()),
            "WARM_SECONDS_PER_REQUEST" => Some("0.05".to_owned()),
            "WARM_CROWD" => Some("3000".to_owned()),
            _ => None,
        };
        let warm = warm_from(&vars).unwrap();
        assert_eq!(
            (warm.lead, warm.seconds_per_request, warm.crowd),
            (chrono::Duration::minutes(5), 0.05, 3000)
        );
        for (name, value) in [
            ("WARM_LEAD_MINUTES", "-1"),
            ("WARM_HOLD_MINUTES", "121"),
            ("WARM_SECONDS_PER_REQUEST", "0"),
            ("WARM_SECONDS_PER_REQUEST", "NaN"),
            ("WARM_CROWD", "-5"),
            ("WARM_LIMIT", "many"),
        ] {
            let vars = |asked: &str| (asked == name).then(|| value.to_owned());
            assert!(warm_from(&vars).is_err(), "{name}={value}");
        }
    }

    #[test]
    fn rooms_are_held_to_the_warm_instances_only_where_there_are_some() {
        let limit = |value: &'static str| move |name: &str| (name == "WARM_LIMIT").then(|| value.to_owned());
        assert_eq!(room_rate_cap(&|_: &str| None).unwrap(), None, "locally");
        assert_eq!(room_rate_cap(&limit("100")).unwrap(), Some(1_250));
        assert_eq!(room_rate_cap(&limit("0")).unwrap(), None, "warming off");
    }

    #[test]
    fn hot_settings_are_checked() {
        let vars = |name: &str| match name {
            "HOT_RATE" => Some("50".to_owned()),
            "HOT_SHARDS" => Some("3".to_owned()),
            _ => None,
        };
        let hot = hot_from(&vars, HotSettings::default()).unwrap();
        assert_eq!((hot.rate, hot.shards), (50.0, Some(3)));
        let none = |_: &str| None;
        assert_eq!(hot_from(&none, HotSettings::default()).unwrap(), HotSettings::default());
        for (name, value) in [
            ("HOT_RATE", "0"),
            ("HOT_RATE", "fast"),
            ("HOT_SHARDS", "0"),
            ("HOT_SHARDS", "65"),
        ] {
            let wrong = |asked: &str| (asked == name).then(|| value.to_owned());
            assert!(hot_from(&wrong, HotSettings::default()).is_err(), "{name}={value}");
        }
    }

    #[test]
    fn the_hot_sweep_looks_every_second_to_every_minute() {
        let none = |_: &str| None;
        assert_eq!(hot_sweep_period_in(&none).unwrap(), Duration::from_secs(10));
        for (value, ok) in [("1", true), ("60", true), ("0", false), ("61", false), ("soon", false)] {
            let vars = |_: &str| Some(value.to_owned());
            assert_eq!(hot_sweep_period_in(&vars).is_ok(), ok, "{value}");
        }
    }

    #[test]
    fn settings_override_the_defaults() {
        let vars = |name: &str| match name {
            "RATE_LIMIT_GRAB" => Some("2/1s".to_owned()),
            "RATE_LIMIT_LOGIN" => Some("off".to_owned()),
            _ => None,
        };
        let limits = limits_from(&vars, Limits::defaults()).unwrap();
        assert_eq!(limits.rate(Action::Grab).map(|rate| rate.count), Some(2));
        assert_eq!(limits.rate(Action::Login), None);
        assert_eq!(limits.rate(Action::Claim), Some(Action::Claim.default_rate()));
        let wrong = |name: &str| (name == "RATE_LIMIT_PAY").then(|| "lots".to_owned());
        assert!(limits_from(&wrong, Limits::defaults()).is_err());
    }

    /// A setting's default as `SETTINGS` states it: its first code span.
    fn stated_default(name: &str) -> String {
        let setting = SETTINGS.iter().find(|setting| setting.name == name).expect(name);
        setting.default.split('`').nth(1).unwrap_or(setting.default).to_owned()
    }

    #[tokio::test]
    async fn the_table_states_the_defaults_the_code_takes() {
        let vars = |name: &str| match name {
            "REDIS_URL" => Some("redis://127.0.0.1:6379".to_owned()),
            "JWT_SECRET" => Some("0123456789abcdef0123456789abcdef".to_owned()),
            _ => None,
        };
        let config = Config::from_vars(&vars, None).await.unwrap();
        let seconds = |name: &str| Duration::from_secs(stated_default(name).parse().unwrap());
        let millis = |name: &str| Duration::from_millis(stated_default(name).parse().unwrap());
        assert_eq!(config.token_ttl, seconds("TOKEN_TTL_SECONDS"));
        assert_eq!(config.sold_out_memo, millis("SOLD_OUT_MEMO_MS"));
        assert_eq!(config.order_listing_lag, millis("ORDER_LISTING_LAG_MS"));
        assert_eq!(config.redis_cluster.to_string(), stated_default("REDIS_CLUSTER"));
        assert!(config.redis_wait.is_none());
        assert_eq!(stated_default("REDIS_WAIT_REPLICAS"), "0");
        assert_eq!(config.slot_utc_offset.to_string(), stated_default("SLOT_UTC_OFFSET"));
        assert_eq!(config.hot.rate.to_string(), stated_default("HOT_RATE"));
        assert_eq!(hot_sweep_period_in(&vars).unwrap(), seconds("HOT_SWEEP_SECONDS"));
        for (action, name) in Action::ALL.into_iter().zip(RATE_LIMIT_SETTINGS) {
            let rate = config.limits.rate(action).expect("every action is counted by default");
            assert_eq!(
                format!("{}/{}s", rate.count, rate.period.as_secs()),
                stated_default(name)
            );
        }
    }
}
