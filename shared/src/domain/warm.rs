//! Warm capacity (预热): the crowd's functions' instances started before a
//! sale or rain opens and given back once its rush is over.
//!
//! A Lambda instance serves one request at a time, a function scales by
//! about 1,000 instances every 10 s, and each new instance pays a cold
//! start, so a crowd arriving at once is met by throttles and slow first
//! answers. The warm-up job runs every minute and asks, for each crowd
//! function, the instances every sale it is warming needs together: from
//! `lead` before its opening (provisioning takes minutes) until `hold`
//! after it (or its end, if sooner). Running on a schedule and asking the
//! total each time, it follows publishing, edits, deletions and sales
//! that overlap, and a missed run is made good by the next.
//!
//! A sale with a waiting room needs what its rate lets in: `rate`
//! shoppers a second, each making [`LINE_REQUESTS`] requests of the grab
//! function (which keeps every line) and one grab or claim, each taking
//! `seconds_per_request` of an instance. One without a room needs the
//! crowd the deployment is planned for (`crowd` requests a second; 0 warms
//! nothing). The total is capped at `limit`, the share of the account's
//! concurrency the deployment may hold (the README's capacity section
//! gives the arithmetic).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::{
    error::Error,
    model::Guard,
    ports::{CampaignStore, CrowdFunction, PortError, SaleSearch, SkuStore, WarmCapacity},
};

/// What a called shopper asks of the grab function before the grab or
/// claim itself: a place in the line (if they came late), a challenge and
/// a ticket. The waiting itself reads the edge's copy of the room.
pub const LINE_REQUESTS: f64 = 3.0;

/// How the crowd functions are warmed (`WARM_*` settings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmSettings {
    pub lead: Duration,
    pub hold: Duration,
    /// One request's share of an instance (p99 of the functions' duration).
    pub seconds_per_request: f64,
    /// Requests a second a sale without a waiting room is warmed for.
    pub crowd: u32,
    /// The most instances kept warm per function.
    pub limit: u32,
}

impl Default for WarmSettings {
    fn default() -> Self {
        WarmSettings {
            lead: Duration::minutes(10),
            hold: Duration::minutes(15),
            seconds_per_request: 0.02,
            crowd: 0,
            limit: 100,
        }
    }
}

/// Instances asked per crowd function.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Warm {
    pub grab: u32,
    pub claim: u32,
}

/// A sale (whose crowd only the grab function serves) or a rain (whose
/// claims the claim function serves, its line the grab function).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sale,
    Rain,
}

/// A sale or rain as warming sees it.
#[derive(Debug, Clone, Copy)]
pub struct Opening<'a> {
    pub kind: Kind,
    pub begin: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub guard: &'a Guard,
}

impl WarmSettings {
    fn warming(&self, opening: &Opening<'_>, now: DateTime<Utc>) -> bool {
        opening.begin - self.lead <= now && now < opening.end.min(opening.begin + self.hold)
    }

    /// The most places a second a waiting room may call: what `limit`
    /// instances serve, each shopper let in making [`LINE_REQUESTS`] and a
    /// grab (at least one a second).
    pub fn room_rate(&self) -> u32 {
        let rate = f64::from(self.limit) / ((LINE_REQUESTS + 1.0) * self.seconds_per_request);
        // Saturating: the room's own bound (100,000) is far below.
        (rate.floor() as u32).max(1)
    }

    fn instances(&self, requests: f64) -> u32 {
        // At most `u32::MAX`: the cast saturates, and the limit caps it.
        (requests * self.seconds_per_request).ceil() as u32
    }

    /// The instances one opening needs of each function while it is warmed.
    pub fn needs(&self, kind: Kind, guard: &Guard) -> Warm {
        let (line, taps) = if guard.has_waiting_room() {
            let rate = f64::from(guard.waiting_room_rate);
            (rate * LINE_REQUESTS, rate)
        } else {
            let crowd = f64::from(self.crowd);
            (if guard.needs_ticket() { crowd } else { 0.0 }, crowd)
        };
        match kind {
            Kind::Sale => Warm {
                grab: self.instances(line + taps),
                claim: 0,
            },
            Kind::Rain => Warm {
                grab: self.instances(line),
                claim: self.instances(taps),
            },
        }
    }

    /// What every function needs now for these openings together.
    pub fn wanted(&self, openings: &[Opening<'_>], now: DateTime<Utc>) -> Warm {
        let total = openings
            .iter()
            .filter(|opening| self.warming(opening, now))
            .map(|opening| self.needs(opening.kind, opening.guard))
            .fold(Warm::default(), |total, needs| Warm {
                grab: total.grab.saturating_add(needs.grab),
                claim: total.claim.saturating_add(needs.claim),
            });
        Warm {
            grab: total.grab.min(self.limit),
            claim: total.claim.min(self.limit),
        }
    }
}

/// The warm-up job's run: reads the sales opening within `lead` or opened
/// within `hold`, and the rains not ended, and asks each function for what
/// they need together, where that differs from what it has.
pub async fn warm_up(
    ledger: &(impl SkuStore + CampaignStore),
    capacity: &impl WarmCapacity,
    settings: &WarmSettings,
    now: DateTime<Utc>,
) -> Result<Warm, Error> {
    let search = SaleSearch {
        starting: Some((now - settings.hold, now + settings.lead + Duration::seconds(1))),
        ..SaleSearch::default()
    };
    let mut skus = Vec::new();
    let mut cursor = None;
    loop {
        let page = ledger.skus_on_sale(&search, now, 100, cursor.as_deref()).await?;
        skus.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let campaigns = ledger.campaigns_ending_after(now).await?;
    let openings: Vec<Opening<'_>> = skus
        .iter()
        .map(|sku| Opening {
            kind: Kind::Sale,
            begin: sku.fields.seckill_begin,
            end: sku.fields.seckill_end,
            guard: &sku.fields.guard,
        })
        .chain(campaigns.iter().map(|campaign| Opening {
            kind: Kind::Rain,
            begin: campaign.begin,
            end: campaign.end,
            guard: &campaign.guard,
        }))
        .collect();
    let wanted = settings.wanted(&openings, now);
    // Each function on its own: one Lambda refuses does not hold back the
    // other's warming (or its release).
    let mut failed = Ok(());
    for (function, instances) in [(CrowdFunction::Grab, wanted.grab), (CrowdFunction::Claim, wanted.claim)] {
        let asked = async {
            if capacity.warm(function).await? != instances {
                tracing::info!(?function, instances, "warm capacity asked");
                capacity.set_warm(function, instances).await?;
            }
            Ok::<(), PortError>(())
        };
        if let Err(error) = asked.await {
            tracing::error!(?function, %error, "asking for warm capacity failed");
            failed = Err(error);
        }
    }
    failed?;
    Ok(wanted)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::{
        memory::{Memory, MemoryWarmCapacity, published_sku},
        ports::SkuStore,
    };

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 11, 12, 0, 0).unwrap() + Duration::minutes(minute)
    }

    fn settings() -> WarmSettings {
        WarmSettings {
            crowd: 1_000,
            ..WarmSettings::default()
        }
    }

    fn opening(kind: Kind, begin: i64, end: i64, guard: &Guard) -> Opening<'_> {
        Opening {
            kind,
            begin: at(begin),
            end: at(end),
            guard,
        }
    }

    #[test]
    fn a_sale_is_warm_from_its_lead_until_its_hold_or_end() {
        let plain = Guard::default();
        let settings = settings();
        let sale = [opening(Kind::Sale, 0, 60, &plain)];
        let grab_at = |minute| settings.wanted(&sale, at(minute)).grab;
        assert_eq!([grab_at(-11), grab_at(-10), grab_at(14), grab_at(15)], [0, 20, 20, 0]);
        let short = [opening(Kind::Sale, 0, 5, &plain)];
        assert_eq!(settings.wanted(&short, at(5)).grab, 0, "ended before its hold");
    }

    #[test]
    fn a_room_is_warmed_for_what_its_rate_lets_in_and_overlaps_add_up_to_the_limit() {
        let settings = settings();
        let room = Guard {
            waiting_room_rate: 500,
            ..Guard::default()
        };
        let plain = Guard::default();
        // 500 a second × (3 line requests + the grab) × 0.02 s = 40 instances.
        assert_eq!(settings.needs(Kind::Sale, &room), Warm { grab: 40, claim: 0 });
        // A rain's line is the grab function's, its claims the claim function's.
        assert_eq!(settings.needs(Kind::Rain, &room), Warm { grab: 30, claim: 10 });
        let all = [
            opening(Kind::Sale, 0, 60, &room),
            opening(Kind::Sale, 5, 60, &plain),
            opening(Kind::Rain, 0, 60, &plain),
        ];
        assert_eq!(settings.wanted(&all, at(1)), Warm { grab: 60, claim: 20 });
        let tight = WarmSettings { limit: 50, ..settings };
        assert_eq!(tight.wanted(&all, at(1)).grab, 50);
        let unplanned = WarmSettings { crowd: 0, ..settings };
        assert_eq!(unplanned.wanted(&all, at(1)), Warm { grab: 40, claim: 0 });
    }

    #[test]
    fn a_room_at_the_derived_rate_needs_no_more_than_the_limit() {
        let settings = settings();
        // 100 instances at 0.02 s, four requests a shopper: 1,250 a second.
        assert_eq!(settings.room_rate(), 1_250);
        let room = Guard {
            waiting_room_rate: settings.room_rate(),
            ..Guard::default()
        };
        assert_eq!(settings.needs(Kind::Sale, &room).grab, settings.limit);
    }

    #[tokio::test]
    async fn the_job_asks_for_what_the_ledgers_sales_need_and_gives_it_back_after() {
        let memory = Memory::default();
        let capacity = MemoryWarmCapacity::default();
        let mut sku = published_sku("a", "Phone");
        sku.fields.seckill_begin = at(0);
        sku.fields.seckill_end = at(60);
        memory.ledger.put_sku(&sku).await.unwrap();
        memory.ledger.mark_published("a", at(-30)).await.unwrap();
        let settings = settings();
        for (minute, grab) in [(-20, 0), (-5, 20), (10, 20), (20, 0)] {
            warm_up(&memory.ledger, &capacity, &settings, at(minute)).await.unwrap();
            assert_eq!(capacity.warm(CrowdFunction::Grab).await.unwrap(), grab, "at {minute}");
        }
        assert_eq!(capacity.changes(), 2, "asked once and given back once");
    }
}
