//! Hot-item discovery (热点数据发现): traffic is enormous but the items
//! that draw it are few, so the system finds them and handles them apart.
//!
//! * Counting: every instance counts item-detail views and grab attempts
//!   per SKU (and claims per campaign), and each grab's and claim's answer
//!   for the live boards (see `board`), in memory ([`Hits`]) and adds them,
//!   at most once a second and off the request's path, to per-second
//!   buckets all instances share ([`HotItems`]).
//! * Discovery: a scheduled job ([`sweep`]) reads the last minute of
//!   buckets and marks a SKU hot when its rate over 10 s reaches the
//!   threshold; a SKU it marked cools once its 10 s rate is below half the
//!   threshold and its 60 s rate below the threshold, so it does not flap
//!   on traffic around the threshold or between the bursts of a sale. Operators mark a SKU
//!   ahead of a sale ([`mark`]) and only they unmark it ([`unmark`]).
//! * Handling: a hot SKU's stock is split over the cache's masters
//!   ([`StockGate::split`]); the storefront serves its page from a longer
//!   lived cache a CDN may share (see `storefront`).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Mutex, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    error::Error,
    ports::{HotItems, HotMark, HotReason, PortError, Ports, SkuStore, StockGate},
};

/// How often an instance adds its counts to the shared buckets.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The windows rates are taken over, in seconds.
const SHORT_WINDOW: i64 = 10;
const LONG_WINDOW: i64 = 60;

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hit {
    /// `GET /seckill/items/{id}`
    View,
    /// `POST /seckill/items/{id}/grab`
    Grab,
    /// `POST /red-packets/{id}/claim`
    Claim,
}

impl Hit {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Hit::View => "view",
            Hit::Grab => "grab",
            Hit::Claim => "claim",
        }
    }

    /// The bucket field of its count on item `id`, all answers or one.
    pub(crate) fn field(self, answer: Option<&str>, id: &str) -> String {
        match answer {
            None => format!("{}:{id}", self.name()),
            Some(code) => format!("{}={code}:{id}", self.name()),
        }
    }
}

/// One count an instance keeps per item: the requests of a kind
/// (`grab:<id>`, what discovery reads), or those of them answered with one
/// code (`grab=SOLD_OUT:<id>`, what a sale's live board reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Tally {
    hit: Hit,
    answer: Option<&'static str>,
}

/// One instance's counts since it last flushed them, and the hot SKUs as
/// it last learned them.
pub struct Hits {
    /// Per [`Tally`], item → count: a tap on an item already counted this
    /// second allocates nothing.
    counts: Mutex<HashMap<Tally, HashMap<String, u64>>>,
    last_flush: Mutex<Option<Instant>>,
    flush_pending: AtomicBool,
    hot: RwLock<BTreeMap<String, HotMark>>,
}

impl Default for Hits {
    fn default() -> Self {
        Hits {
            counts: Mutex::new(HashMap::new()),
            last_flush: Mutex::new(None),
            flush_pending: AtomicBool::new(false),
            hot: RwLock::new(BTreeMap::new()),
        }
    }
}

impl Hits {
    /// A request arrived.
    pub fn count(&self, hit: Hit, id: &str) {
        self.add(Tally { hit, answer: None }, id);
    }

    /// A request was answered with `code` (`CREATED`, `SOLD_OUT`, …).
    pub fn answered(&self, hit: Hit, id: &str, code: &'static str) {
        self.add(
            Tally {
                hit,
                answer: Some(code),
            },
            id,
        );
    }

    fn add(&self, tally: Tally, id: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let items = counts.entry(tally).or_default();
        match items.get_mut(id) {
            Some(count) => *count += 1,
            None => {
                items.insert(id.to_owned(), 1);
            }
        }
    }

    /// Reserves the next flush: how long to wait before it may go (a
    /// second after the last one), or `None` if one is already on its way,
    /// which will carry this count too. So every count goes out within
    /// about a second, and an instance flushes at most once a second.
    pub fn reserve_flush(&self) -> Option<Duration> {
        // Read first: on a busy instance a flush is nearly always pending,
        // and a load leaves the shared flag's cache line unwritten.
        if self.flush_pending.load(Ordering::Acquire) || self.flush_pending.swap(true, Ordering::AcqRel) {
            return None;
        }
        let last = self.last_flush.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Some(last.map_or(Duration::ZERO, |last| FLUSH_EVERY.saturating_sub(last.elapsed())))
    }

    /// Takes the counts for the reserved flush.
    pub fn take(&self) -> Vec<(String, u64)> {
        *self.last_flush.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now());
        // Cleared before the counts are taken: a count that comes after
        // this reserves the next flush instead of being left behind.
        self.flush_pending.store(false, Ordering::Release);
        let mut counts = self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut taken = Vec::new();
        for (tally, items) in counts.iter_mut() {
            taken.extend(
                items
                    .drain()
                    .map(|(id, count)| (tally.hit.field(tally.answer, &id), count)),
            );
        }
        taken
    }

    /// Whether the SKU was hot when this instance last looked.
    pub fn is_hot(&self, sku_id: &str) -> bool {
        self.hot
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains_key(sku_id)
    }

    fn learn(&self, marks: BTreeMap<String, HotMark>) {
        *self.hot.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = marks;
    }
}

/// Adds `counts` (taken from `hits`) to the shared buckets and
/// learns which SKUs are hot. Counting is best effort: counts that fail to
/// go out are dropped, not retried.
pub async fn flush(hot: &impl HotItems, hits: &Hits, counts: Vec<(String, u64)>, now: DateTime<Utc>) {
    if let Err(error) = hot.add_hits(now.timestamp(), &counts).await {
        tracing::debug!(%error, "hit counts dropped");
    }
    match hot.hot_marks().await {
        Ok(marks) => hits.learn(marks),
        Err(error) => tracing::debug!(%error, "hot SKUs not refreshed"),
    }
}

/// When a SKU is hot, and over how many shards its stock is split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HotSettings {
    /// Requests a second (views and grabs) over 10 s that make a SKU hot
    /// (`HOT_RATE`).
    pub rate: f64,
    /// Shards a hot SKU's stock is split over (`HOT_SHARDS`); `None`: one
    /// per master of the cache.
    pub shards: Option<u32>,
}

impl Default for HotSettings {
    fn default() -> Self {
        HotSettings {
            rate: 200.0,
            shards: None,
        }
    }
}

/// One item in `GET /admin/hot-items`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HotItem {
    /// `sku` or `campaign`.
    pub kind: &'static str,
    pub id: String,
    /// Requests a second over the last 10 s and the last 60 s.
    pub rate_10s: f64,
    pub rate_60s: f64,
    pub hot: bool,
    #[serde(with = "crate::ts::option", skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<HotReason>,
}

/// Each item's rates over the last 10 s and 60 s (the second under way is
/// left out: its counts are still coming in).
async fn rates(hot: &impl HotItems, now: DateTime<Utc>) -> Result<BTreeMap<(&'static str, String), (f64, f64)>, Error> {
    let current = now.timestamp();
    let buckets = hot.hits(current - LONG_WINDOW..current).await?;
    let mut counts: BTreeMap<(&'static str, String), (u64, u64)> = BTreeMap::new();
    let recent_from = usize::try_from(LONG_WINDOW - SHORT_WINDOW).unwrap_or_default();
    for (age, bucket) in buckets.into_iter().enumerate() {
        for (field, count) in bucket {
            let item = match field.split_once(':') {
                Some(("view" | "grab", id)) => ("sku", id.to_owned()),
                Some(("claim", id)) => ("campaign", id.to_owned()),
                _ => continue,
            };
            let (short, long) = counts.entry(item).or_default();
            *long += count;
            if age >= recent_from {
                *short += count;
            }
        }
    }
    Ok(counts
        .into_iter()
        .map(|(item, (short, long))| {
            (
                item,
                (short as f64 / SHORT_WINDOW as f64, long as f64 / LONG_WINDOW as f64),
            )
        })
        .collect())
}

/// `GET /admin/hot-items`: every item counted in the last minute and every
/// hot SKU, the busiest first.
pub async fn list(hot: &impl HotItems, now: DateTime<Utc>) -> Result<Vec<HotItem>, Error> {
    let mut rates = rates(hot, now).await?;
    let marks = hot.hot_marks().await?;
    for sku_id in marks.keys() {
        rates.entry(("sku", sku_id.clone())).or_default();
    }
    let mut items: Vec<HotItem> = rates
        .into_iter()
        .map(|((kind, id), (rate_10s, rate_60s))| {
            let mark = (kind == "sku").then(|| marks.get(&id)).flatten();
            HotItem {
                kind,
                rate_10s,
                rate_60s,
                hot: mark.is_some(),
                since: mark.map(|mark| mark.since),
                why: mark.map(|mark| mark.why),
                id,
            }
        })
        .collect();
    items.sort_by(|a, b| {
        b.rate_10s
            .total_cmp(&a.rate_10s)
            .then(b.rate_60s.total_cmp(&a.rate_60s))
            .then(a.id.cmp(&b.id))
    });
    Ok(items)
}

/// What a discovery run changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub became_hot: Vec<String>,
    pub cooled: Vec<String>,
}

/// The discovery job (`HOT_SWEEP_SECONDS`): marks SKUs whose rate reached
/// the threshold, cools those it marked whose traffic fell away, and makes
/// sure every hot SKU is handled as one (a split the last run could not
/// finish is tried again).
pub async fn sweep(
    ports: Ports<'_, impl StockGate + HotItems, impl SkuStore, impl Sync>,
    settings: HotSettings,
    now: DateTime<Utc>,
) -> Result<SweepReport, Error> {
    let hot = ports.gate;
    let rates = rates(hot, now).await?;
    let mut marks = hot.hot_marks().await?;
    let mut report = SweepReport::default();
    for ((kind, sku_id), (rate_10s, rate_60s)) in &rates {
        if *kind == "sku" && !marks.contains_key(sku_id) && *rate_10s >= settings.rate {
            let mark = HotMark {
                since: now,
                why: HotReason::Detected,
            };
            hot.set_hot_mark(sku_id, Some(mark)).await?;
            tracing::info!(sku_id, rate_10s, rate_60s, "SKU is hot: detected");
            marks.insert(sku_id.clone(), mark);
            report.became_hot.push(sku_id.clone());
        }
    }
    for (sku_id, mark) in &marks {
        let (rate_10s, rate_60s) = rates.get(&("sku", sku_id.clone())).copied().unwrap_or_default();
        if mark.why == HotReason::Detected && rate_10s < settings.rate / 2.0 && rate_60s < settings.rate {
            hot.set_hot_mark(sku_id, None).await?;
            tracing::info!(sku_id, rate_10s, rate_60s, "SKU cooled: no longer hot");
            report.cooled.push(sku_id.clone());
        } else if let Err(error) = split(ports, settings, sku_id).await {
            tracing::warn!(sku_id, %error, "hot SKU not split; the next run tries again");
        }
    }
    Ok(report)
}

/// `PUT /admin/hot-items/{sku_id}`: the SKU is hot, and its stock split
/// over `shards`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MarkedHot {
    pub sku_id: String,
    #[serde(flatten)]
    pub mark: HotMark,
    pub shards: u32,
}

/// An operator marks a SKU hot (ahead of its sale, say): it is handled as
/// hot at once, and stays hot until unmarked.
pub async fn mark(
    ports: Ports<'_, impl StockGate + HotItems, impl SkuStore, impl Sync>,
    settings: HotSettings,
    sku_id: &str,
    now: DateTime<Utc>,
) -> Result<MarkedHot, Error> {
    ports.ledger.get_sku(sku_id).await?.ok_or(Error::NotFound("sku"))?;
    let mark = match ports.gate.hot_marks().await?.get(sku_id) {
        Some(mark) if mark.why == HotReason::Marked => *mark,
        _ => HotMark {
            since: now,
            why: HotReason::Marked,
        },
    };
    ports.gate.set_hot_mark(sku_id, Some(mark)).await?;
    tracing::info!(sku_id, "SKU is hot: marked by an operator");
    let shards = split(ports, settings, sku_id).await?;
    Ok(MarkedHot {
        sku_id: sku_id.to_owned(),
        mark,
        shards,
    })
}

/// An operator unmarks a SKU: it is not hot until traffic makes it so
/// again. A SKU whose stock was split keeps its shards for its sale.
pub async fn unmark(hot: &impl HotItems, sku_id: &str) -> Result<(), Error> {
    hot.set_hot_mark(sku_id, None).await?;
    tracing::info!(sku_id, "SKU unmarked by an operator: no longer hot");
    Ok(())
}

/// Splits a hot SKU's stock over the configured shards (one per master by
/// default), recording the split in the ledger first so a rebuild knows
/// it. A SKU not yet published is loaded split when it is. Returns its
/// shards.
pub async fn split(
    ports: Ports<'_, impl StockGate, impl SkuStore, impl Sync>,
    settings: HotSettings,
    sku_id: &str,
) -> Result<u32, Error> {
    let sku = ports.ledger.get_sku(sku_id).await?.ok_or(Error::NotFound("sku"))?;
    let shards = match sku.shards {
        Some(shards) => shards,
        None => {
            let wanted = match settings.shards {
                Some(shards) => shards,
                None => ports.gate.masters().await?,
            };
            if wanted <= 1 {
                return Ok(1);
            }
            match ports.ledger.set_sku_shards(sku_id, wanted).await {
                Ok(()) => wanted,
                // Another split recorded its count first: that one stands,
                // and the gate is split the same way.
                Err(PortError::ConditionFailed) => ports
                    .ledger
                    .get_sku(sku_id)
                    .await?
                    .and_then(|sku| sku.shards)
                    .ok_or(Error::NotFound("sku"))?,
                Err(error) => return Err(error.into()),
            }
        }
    };
    if sku.published_at.is_some() {
        ports.gate.split(sku_id, shards).await?;
    }
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::{
        domain::flash_sale::tests::{now, on_sale},
        memory::{Memory, Op},
    };

    const SETTINGS: HotSettings = HotSettings {
        rate: 10.0,
        shards: Some(3),
    };

    /// `per_second` hits of each kind on `id` in each of the `seconds`
    /// before `at`.
    async fn traffic(memory: &Memory, hit: Hit, id: &str, per_second: u64, seconds: i64, at: DateTime<Utc>) {
        for ago in 1..=seconds {
            let field = hit.field(None, id);
            memory
                .gate
                .add_hits(at.timestamp() - ago, &[(field, per_second)])
                .await
                .unwrap();
        }
    }

    #[test]
    fn an_instance_flushes_its_counts_at_most_once_a_second() {
        let hits = Hits::default();
        hits.count(Hit::View, "sku-1");
        hits.count(Hit::View, "sku-1");
        hits.count(Hit::Grab, "sku-1");
        assert_eq!(hits.reserve_flush(), Some(std::time::Duration::ZERO));
        assert_eq!(hits.reserve_flush(), None, "one flush is already on its way");
        let mut first = hits.take();
        first.sort();
        assert_eq!(first, [("grab:sku-1".to_owned(), 1), ("view:sku-1".to_owned(), 2)]);
        hits.count(Hit::View, "sku-1");
        let wait = hits.reserve_flush().unwrap();
        assert!(
            wait > std::time::Duration::from_millis(900),
            "the next flush waits out the second: {wait:?}"
        );
    }

    #[tokio::test]
    async fn answers_counted_for_the_live_board_are_not_traffic_to_discovery() {
        let memory = Memory::default();
        let hits = Hits::default();
        hits.answered(Hit::Grab, "sku-1", "SOLD_OUT");
        let second = now().timestamp() - 1;
        memory.gate.add_hits(second, &hits.take()).await.unwrap();
        assert_eq!(list(&memory.gate, now()).await.unwrap(), []);
    }

    #[tokio::test]
    async fn a_sku_over_the_threshold_is_marked_and_split_and_a_quiet_one_is_not() {
        let memory = Memory::default();
        let busy = on_sale(&memory, 100).await;
        traffic(&memory, Hit::Grab, &busy, 30, 10, now()).await;
        traffic(&memory, Hit::View, "quiet", 5, 10, now()).await;
        let report = sweep(memory.ports(), SETTINGS, now()).await.unwrap();
        assert_eq!(report.became_hot, std::slice::from_ref(&busy));
        let items = list(&memory.gate, now()).await.unwrap();
        assert_eq!(
            (items[0].id.as_str(), items[0].hot, items[0].why),
            (busy.as_str(), true, Some(HotReason::Detected))
        );
        assert_eq!((items[1].id.as_str(), items[1].hot), ("quiet", false));
        assert_eq!(items[0].rate_10s, 30.0);
        assert_eq!(memory.ledger.get_sku(&busy).await.unwrap().unwrap().shards, Some(3));
    }

    #[tokio::test]
    async fn a_detected_sku_stays_hot_until_its_traffic_falls_well_below_the_threshold() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 100).await;
        traffic(&memory, Hit::View, &sku, 20, 10, now()).await;
        sweep(memory.ports(), SETTINGS, now()).await.unwrap();
        // Ten seconds later at 6/s: under the threshold, not under half.
        let later = now() + Duration::seconds(10);
        traffic(&memory, Hit::View, &sku, 6, 10, later).await;
        assert_eq!(
            sweep(memory.ports(), SETTINGS, later).await.unwrap(),
            SweepReport::default()
        );
        // Quiet for a minute: cooled.
        let quiet = later + Duration::seconds(60);
        let report = sweep(memory.ports(), SETTINGS, quiet).await.unwrap();
        assert_eq!(report.cooled, [sku]);
    }

    #[tokio::test]
    async fn an_operator_mark_holds_without_traffic_until_unmarked() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 100).await;
        let marked = mark(memory.ports(), SETTINGS, &sku, now()).await.unwrap();
        assert_eq!((marked.mark.why, marked.shards), (HotReason::Marked, 3));
        let much_later = now() + Duration::hours(1);
        assert_eq!(
            sweep(memory.ports(), SETTINGS, much_later).await.unwrap(),
            SweepReport::default()
        );
        assert!(list(&memory.gate, much_later).await.unwrap()[0].hot);
        unmark(&memory.gate, &sku).await.unwrap();
        assert!(list(&memory.gate, much_later).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn marking_an_unknown_sku_is_not_found() {
        let memory = Memory::default();
        let error = mark(memory.ports(), SETTINGS, "nope", now()).await.unwrap_err();
        assert!(matches!(error, Error::NotFound("sku")));
    }

    #[tokio::test]
    async fn of_two_splits_at_once_with_other_shard_counts_the_first_recorded_wins() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 100).await;
        // Another instance, configured for two shards, records its split
        // between this one's read of the SKU and its own record.
        let other = memory.ledger.other_writer();
        let id = sku.clone();
        memory.ledger.faults.before(Op::SetSkuShards, 1, move || {
            other.change_sku(&id, |sku| sku.shards = Some(2))
        });
        assert_eq!(split(memory.ports(), SETTINGS, &sku).await.unwrap(), 2);
        assert_eq!(memory.ledger.get_sku(&sku).await.unwrap().unwrap().shards, Some(2));
        assert_eq!(memory.gate.split(&sku, 2).await.unwrap(), Some(2), "the gate agrees");
    }

    #[tokio::test]
    async fn one_shard_wanted_leaves_the_sku_whole() {
        let memory = Memory::default();
        let sku = on_sale(&memory, 100).await;
        let whole = HotSettings {
            shards: None,
            ..SETTINGS
        };
        assert_eq!(split(memory.ports(), whole, &sku).await.unwrap(), 1);
        assert_eq!(memory.ledger.get_sku(&sku).await.unwrap().unwrap().shards, None);
    }
}
