//! What the crowd saw, per endpoint: how many requests, their outcomes (by
//! status and problem `code`) and an HDR histogram of their latencies.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::api::Reply;

/// The endpoints the crowd calls, in the order the report lists them: the
/// sale and the rain's, then a waiting room's (`line`; `blind` are grabs
/// without a ticket).
pub const ENDPOINTS: [&str; 9] = [
    "grab",
    "claim",
    "pay",
    "cancel",
    "queue",
    "room",
    "challenge",
    "ticket",
    "blind",
];

pub struct Tally {
    started: Instant,
    endpoints: BTreeMap<&'static str, Endpoint>,
    timeline: Vec<Event>,
}

/// One answer on the timeline, for the report's charts.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Event {
    /// Milliseconds from the crowd's start to the answer.
    pub at_ms: u64,
    pub endpoint: &'static str,
    /// `ok` (2xx), `refused` (4xx) or `failed` (5xx, or no answer).
    pub class: &'static str,
}

struct Endpoint {
    outcomes: BTreeMap<String, u64>,
    /// Microseconds, 1 µs to 60 s at three significant figures.
    latency: Histogram<u64>,
}

/// One endpoint's figures, as printed and as written to the report.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub endpoint: &'static str,
    pub requests: u64,
    pub per_second: f64,
    pub outcomes: BTreeMap<String, u64>,
    /// p50, p90, p99, p99.9 and max, in milliseconds.
    pub latency_ms: BTreeMap<&'static str, f64>,
    /// (percentile, milliseconds) along the whole distribution.
    pub distribution: Vec<(f64, f64)>,
}

impl Tally {
    pub fn new() -> Self {
        let endpoints = ENDPOINTS
            .into_iter()
            .map(|name| {
                let latency = Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
                (
                    name,
                    Endpoint {
                        outcomes: BTreeMap::new(),
                        latency,
                    },
                )
            })
            .collect();
        Tally {
            started: Instant::now(),
            endpoints,
            timeline: Vec::new(),
        }
    }

    pub fn record(&mut self, endpoint: &'static str, reply: &Reply) {
        let entry = self.endpoints.get_mut(endpoint).expect("a known endpoint");
        *entry.outcomes.entry(reply.outcome()).or_default() += 1;
        let micros = u64::try_from(reply.took.as_micros()).unwrap_or(u64::MAX).max(1);
        entry.latency.saturating_record(micros);
        let class = match reply.status {
            200..=299 => "ok",
            400..=499 => "refused",
            _ => "failed",
        };
        self.timeline.push(Event {
            at_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            endpoint,
            class,
        });
    }

    pub fn timeline(&self) -> &[Event] {
        &self.timeline
    }

    pub fn requests(&self) -> u64 {
        self.endpoints.values().map(|e| e.latency.len()).sum()
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The commonest outcomes over every endpoint, most first.
    pub fn commonest(&self, how_many: usize) -> Vec<(u64, String)> {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for (endpoint, e) in &self.endpoints {
            for (outcome, n) in &e.outcomes {
                *counts.entry(format!("{endpoint} {outcome}")).or_default() += n;
            }
        }
        let mut ranked: Vec<(u64, String)> = counts.into_iter().map(|(o, n)| (n, o)).collect();
        ranked.sort_by(|a, b| b.cmp(a));
        ranked.truncate(how_many);
        ranked
    }

    pub fn figures(&self, over: Duration) -> Vec<Figures> {
        let seconds = over.as_secs_f64().max(f64::EPSILON);
        self.endpoints
            .iter()
            .filter(|(_, e)| !e.latency.is_empty())
            .map(|(&endpoint, e)| {
                let ms = |micros: u64| micros as f64 / 1000.0;
                let latency_ms = [
                    ("p50", e.latency.value_at_quantile(0.50)),
                    ("p90", e.latency.value_at_quantile(0.90)),
                    ("p99", e.latency.value_at_quantile(0.99)),
                    ("p99.9", e.latency.value_at_quantile(0.999)),
                    ("max", e.latency.max()),
                ]
                .into_iter()
                .map(|(name, micros)| (name, ms(micros)))
                .collect();
                let distribution = e
                    .latency
                    .iter_quantiles(4)
                    .map(|step| (step.quantile_iterated_to() * 100.0, ms(step.value_iterated_to())))
                    .collect();
                Figures {
                    endpoint,
                    requests: e.latency.len(),
                    per_second: e.latency.len() as f64 / seconds,
                    outcomes: e.outcomes.clone(),
                    latency_ms,
                    distribution,
                }
            })
            .collect()
    }
}

/// The summary table, one row per endpoint.
pub fn print_table(figures: &[Figures]) {
    println!(
        "{:<8} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}  outcomes",
        "endpoint", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    for row in figures {
        let outcomes: Vec<String> = row.outcomes.iter().map(|(o, n)| format!("{n}× {o}")).collect();
        let at = |q: &str| row.latency_ms.get(q).copied().unwrap_or(0.0);
        println!(
            "{:<8} {:>8} {:>9.0} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}  {}",
            row.endpoint,
            row.requests,
            row.per_second,
            at("p50"),
            at("p90"),
            at("p99"),
            at("p99.9"),
            at("max"),
            outcomes.join(", ")
        );
    }
}
