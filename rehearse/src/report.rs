//! `--report DIR`: the rehearsal's figures as `report.json`, and as
//! `report.html`, a page that reads offline (no script, font or image from
//! anywhere) with three charts drawn as inline SVG by plotters: the latency
//! distribution, requests per second over time, and outcomes over time.

use std::{fmt::Write as _, path::Path};

use plotters::prelude::*;
use serde::Serialize;

use crate::{
    api::Failure,
    audit::{Check, Verdict},
    tally::{ENDPOINTS, Event, Figures},
};

#[derive(Serialize)]
pub struct Report<'a> {
    pub api: &'a str,
    pub sku: Option<&'a str>,
    pub campaign: Option<&'a str>,
    pub shoppers: usize,
    pub requests: u64,
    pub seconds: f64,
    pub endpoints: &'a [Figures],
    /// (heading, checks) of each audit run.
    pub audits: &'a [(String, Vec<Check>)],
    pub timeline: &'a [Event],
}

pub fn write(dir: &Path, report: &Report<'_>) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(report)?)?;
    std::fs::write(dir.join("report.html"), html(report)?)?;
    Ok(())
}

/// One line of a chart; `color` picks from the palette, so an endpoint
/// keeps its colour from chart to chart.
struct Series {
    name: String,
    color: usize,
    points: Vec<(f64, f64)>,
}

fn color_of(endpoint: &str) -> usize {
    ENDPOINTS.iter().position(|e| *e == endpoint).unwrap_or(ENDPOINTS.len())
}

/// Percentiles drawn on a scale that spreads the tail: 0 at p0, 1 at p90,
/// 2 at p99, 3 at p99.9.
fn nines(percentile: f64) -> f64 {
    -(1.0 - (percentile / 100.0).min(0.9999)).log10()
}

fn chart(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
    x_label: &dyn Fn(&f64) -> String,
) -> Result<String, Failure> {
    let points = series.iter().flat_map(|s| s.points.iter());
    let x_max = points.clone().map(|p| p.0).fold(0.0_f64, f64::max).max(f64::EPSILON);
    let y_max = points.map(|p| p.1).fold(0.0_f64, f64::max).max(1.0) * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (780, 340)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(x_label)
            .draw()?;
        for line in series {
            let color = Palette99::pick(line.color).to_rgba();
            chart
                .draw_series(LineSeries::new(line.points.iter().copied(), color.stroke_width(2)))?
                .label(line.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// Counts per second of the events `keep` picks, in `buckets` slices.
fn per_second(timeline: &[Event], seconds: f64, keep: impl Fn(&Event) -> bool) -> Vec<(f64, f64)> {
    const BUCKETS: usize = 40;
    let width = (seconds / BUCKETS as f64).max(0.001);
    let mut counts = [0_u64; BUCKETS + 1];
    for event in timeline.iter().filter(|e| keep(e)) {
        let slot = ((event.at_ms as f64 / 1000.0) / width) as usize;
        counts[slot.min(BUCKETS)] += 1;
    }
    counts
        .iter()
        .enumerate()
        .map(|(slot, &count)| (slot as f64 * width, count as f64 / width))
        .collect()
}

fn charts(report: &Report<'_>) -> Result<Vec<String>, Failure> {
    let latency: Vec<Series> = report
        .endpoints
        .iter()
        .map(|figures| Series {
            name: figures.endpoint.to_owned(),
            color: color_of(figures.endpoint),
            points: figures.distribution.iter().map(|&(p, ms)| (nines(p), ms)).collect(),
        })
        .collect();
    let percentile = |x: &f64| match ((x - x.round()).abs() < 0.05).then(|| x.round() as i64) {
        Some(0) => "p0".to_owned(),
        Some(1) => "p90".to_owned(),
        Some(2) => "p99".to_owned(),
        Some(3) => "p99.9".to_owned(),
        _ => String::new(),
    };
    let seconds = report.seconds;
    let rates: Vec<Series> = ENDPOINTS
        .into_iter()
        .filter(|endpoint| report.timeline.iter().any(|e| e.endpoint == *endpoint))
        .map(|endpoint| Series {
            name: endpoint.to_owned(),
            color: color_of(endpoint),
            points: per_second(report.timeline, seconds, |e| e.endpoint == endpoint),
        })
        .collect();
    let outcomes: Vec<Series> = ["ok", "refused", "failed"]
        .into_iter()
        .enumerate()
        .map(|(color, class)| Series {
            color,
            name: format!(
                "{class} ({})",
                match class {
                    "ok" => "2xx",
                    "refused" => "4xx",
                    _ => "5xx or no answer",
                }
            ),
            points: per_second(report.timeline, seconds, |e| e.class == class),
        })
        .collect();
    let time = |x: &f64| format!("{x:.1} s");
    Ok(vec![
        chart("Latency distribution", "percentile", "ms", &latency, &percentile)?,
        chart(
            "Requests per second",
            "time since the first tap",
            "req/s",
            &rates,
            &time,
        )?,
        chart(
            "Outcomes over time",
            "time since the first tap",
            "answers/s",
            &outcomes,
            &time,
        )?,
    ])
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn html(report: &Report<'_>) -> Result<String, Failure> {
    let mut page = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Rehearsal report</title><style>\
         body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}\
         td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td.l,th.l{text-align:left}\
         .ok{color:#176b2c}.fail{color:#b00020;font-weight:bold}.due{color:#8a6d00}</style></head><body>",
    );
    writeln!(
        page,
        "<h1>Rehearsal report</h1><p>{} requests in {:.1} s against <code>{}</code>, {} shoppers; SKU <code>{}</code>, campaign <code>{}</code>.</p>",
        report.requests,
        report.seconds,
        escape(report.api),
        report.shoppers,
        escape(report.sku.unwrap_or("-")),
        escape(report.campaign.unwrap_or("-")),
    )?;
    page.push_str("<h2>Endpoints</h2><table><tr><th class=l>endpoint</th><th>requests</th><th>req/s</th>");
    for quantile in ["p50", "p90", "p99", "p99.9", "max"] {
        write!(page, "<th>{quantile} ms</th>")?;
    }
    page.push_str("<th class=l>outcomes</th></tr>");
    for row in report.endpoints {
        write!(
            page,
            "<tr><td class=l>{}</td><td>{}</td><td>{:.0}</td>",
            row.endpoint, row.requests, row.per_second
        )?;
        for quantile in ["p50", "p90", "p99", "p99.9", "max"] {
            write!(
                page,
                "<td>{:.1}</td>",
                row.latency_ms.get(quantile).copied().unwrap_or(0.0)
            )?;
        }
        let outcomes: Vec<String> = row
            .outcomes
            .iter()
            .map(|(o, n)| format!("{n}× {}", escape(o)))
            .collect();
        writeln!(page, "<td class=l>{}</td></tr>", outcomes.join(", "))?;
    }
    page.push_str("</table>");
    for (heading, checks) in report.audits {
        write!(page, "<h2>{}</h2><table>", escape(heading))?;
        for check in checks {
            let class = match check.verdict {
                Verdict::Holds => "ok",
                Verdict::Fails => "fail",
                Verdict::NotYetDue(_) => "due",
            };
            let mark = check.verdict.mark();
            writeln!(
                page,
                "<tr><td class=\"l {class}\">{mark}</td><td class=l>{}</td><td class=l>{}</td></tr>",
                escape(check.name),
                escape(&check.figures)
            )?;
        }
        page.push_str("</table>");
    }
    page.push_str("<h2>Charts</h2>");
    for svg in charts(report)? {
        writeln!(page, "<div>{svg}</div>")?;
    }
    page.push_str("</body></html>\n");
    Ok(page)
}
