//! `--html FILE`: one self-contained page (no network needed) with the run's verdict, criteria,
//! stats, failures and charts. The charts are inline SVG; a small script makes the stats table
//! sortable and marks the page ready once it has checked its charts, which the browser test
//! reads.

use std::fmt::Write;

use crate::finding::Evidence;
use crate::record::{percent, Latency, RunRecord};
use crate::svg::{self, escape, Chart, Series, XAxis};

const BLUE: &str = "#1f77b4";
const ORANGE: &str = "#ff7f0e";
const RED: &str = "#d62728";
const GREEN: &str = "#2ca02c";

/// Colours for monitored series, in turn.
const PALETTE: [&str; 6] = [
    "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
];

/// The run's charts, with a file-name stem each: throughput, latency, users, distribution,
/// the generator's own load, and monitored values when there are any.
pub fn charts(record: &RunRecord) -> Vec<(&'static str, Chart)> {
    let h = &record.history;
    let line = |label: &str, color, f: &dyn Fn(&crate::Point) -> Option<f64>| Series {
        label: label.to_string(),
        color,
        points: h.iter().filter_map(|p| f(p).map(|y| (p.t_s, y))).collect(),
    };
    let users_label = if record.model == "open" {
        "connections"
    } else {
        "users"
    };
    let mut monitored: Vec<&String> = h
        .iter()
        .flat_map(|p| p.sample.monitor.keys())
        // blast's own values and the host's CPU are context for the analysis, not the target.
        .filter(|k| !k.starts_with("blast.") && !k.starts_with("host."))
        .collect();
    monitored.sort();
    monitored.dedup();
    let monitored_series: Vec<Series> = monitored
        .iter()
        .zip(PALETTE.iter().cycle())
        .map(|(key, color)| Series {
            label: key.to_string(),
            color,
            points: h
                .iter()
                .filter_map(|p| p.sample.monitor.get(*key).map(|v| (p.t_s, *v)))
                .collect(),
        })
        .collect();
    let mut all = vec![
        (
            "throughput",
            Chart {
                title: "Requests and failures per second".into(),
                x_label: "seconds from start".into(),
                y_label: "per second".into(),
                x_axis: XAxis::Linear,
                series: vec![
                    line("requests/s", BLUE, &|p| Some(p.rps)),
                    line("failures/s", RED, &|p| Some(p.fails_per_s)),
                ],
            },
        ),
        (
            "latency",
            Chart {
                title: "Latency percentiles per interval".into(),
                x_label: "seconds from start".into(),
                y_label: "ms".into(),
                x_axis: XAxis::Linear,
                series: vec![
                    line("p50", BLUE, &|p| p.p50_ms),
                    line("p95", ORANGE, &|p| p.p95_ms),
                    line("p99", RED, &|p| p.p99_ms),
                ],
            },
        ),
        (
            "users",
            Chart {
                title: format!("{} over time", capitalise(users_label)),
                x_label: "seconds from start".into(),
                y_label: users_label.into(),
                x_axis: XAxis::Linear,
                series: vec![line(users_label, GREEN, &|p| Some(p.users as f64))],
            },
        ),
        (
            "distribution",
            Chart {
                title: "Latency by percentile (HDR)".into(),
                x_label: "percentile".into(),
                y_label: "ms".into(),
                x_axis: XAxis::Percentile,
                series: vec![Series {
                    label: "latency".into(),
                    color: BLUE,
                    points: record.percentiles.clone(),
                }],
            },
        ),
        (
            "generator",
            Chart {
                title: "Generator: busiest worker's CPU and event-loop lag".into(),
                x_label: "seconds from start".into(),
                y_label: "% of a core / ms".into(),
                x_axis: XAxis::Linear,
                series: vec![
                    line("worker CPU %", ORANGE, &|p| p.sample.worker_cpu_pct),
                    line("loop lag ms", RED, &|p| Some(p.sample.loop_lag_ms)),
                ],
            },
        ),
    ];
    if !monitored_series.is_empty() {
        all.push((
            "monitored",
            Chart {
                title: "Monitored".into(),
                x_label: "seconds from start".into(),
                y_label: "value".into(),
                x_axis: XAxis::Linear,
                series: monitored_series,
            },
        ));
    }
    all
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// The whole page.
pub fn render(record: &RunRecord) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = format!("blast: {}", record.target);
    let verdict = match (record.criteria.is_empty(), record.passed) {
        (true, _) => r#"<span class="badge none">no criteria</span>"#,
        (false, true) => r#"<span class="badge pass">PASS</span>"#,
        (false, false) => r#"<span class="badge fail">FAIL</span>"#,
    };
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; padding: 0 1rem; }}
h1 {{ font-size: 1.4rem; }} h2 {{ font-size: 1.1rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.85rem; }}
th, td {{ border-bottom: 1px solid #eee; padding: 4px 8px; text-align: right; }}
th {{ background: #f6f6f6; cursor: pointer; user-select: none; }}
td:first-child, th:first-child, td.text, #criteria th, #failures th {{ text-align: left; }}
.badge {{ padding: 2px 10px; border-radius: 4px; color: white; font-weight: bold; }}
.pass {{ background: #2ca02c; }} .fail {{ background: #d62728; }} .none {{ background: #888; }}
.facts span {{ display: inline-block; margin-right: 1.5rem; }}
.charts svg {{ max-width: 100%; height: auto; border: 1px solid #eee; margin: 0.5rem 0; }}
.evidence svg {{ width: 360px; max-width: 48%; height: auto; border: 1px solid #eee; margin: 0 0.5rem 0.5rem 0; }}
</style></head>
<body data-ready="no">
<h1>{} {verdict}</h1>
<p class="facts"><span>started {}</span><span>ended {}</span><span>{} s</span><span>{} threads ({})</span><span>{}</span></p>
"#,
        escape(&title),
        escape(&title),
        record.started_at,
        record.ended_at,
        crate::time::seconds(record.duration_s),
        record.threads,
        if record.pinned {
            "pinned"
        } else {
            "not pinned"
        },
        escape(&load_text(record)),
    );
    let latency = record.latency_ms.clone().unwrap_or_default();
    let _ = writeln!(
        out,
        r#"<p class="facts"><span><b>{}</b> requests</span><span><b>{:.1}</b> req/s</span><span><b>{}</b> failed ({:.2}%)</span><span><b>{}</b> cancelled at stop</span><span>p50 <b>{:.3}</b> ms</span><span>p99 <b>{:.3}</b> ms</span><span>max <b>{:.3}</b> ms</span></p>"#,
        record.requests,
        record.rps,
        record.failures,
        percent(record.failures, record.requests),
        record.cancelled,
        latency.p50,
        latency.p99,
        latency.max,
    );

    // A stalled or saturated generator is flagged: its latencies are partly blast's own.
    let generator_class = if record.generator.bound || record.generator.stalled {
        "fail"
    } else {
        "none"
    };
    let _ = writeln!(
        out,
        r#"<p id="generator"><span class="badge {generator_class}">generator</span> {}</p>"#,
        escape(&record.generator.evidence)
    );
    for g in &record.growth {
        let _ = writeln!(
            out,
            r#"<p><span class="badge fail">leak?</span> {}</p>"#,
            escape(g)
        );
    }
    // The analysis, each finding beside the series it read.
    let found: Vec<_> = crate::analysis::findings(record)
        .into_iter()
        .filter(|f| !f.action.is_empty())
        .collect();
    if !found.is_empty() {
        out.push_str("<h2>Findings</h2>\n<ol id=\"findings\">\n");
        for f in &found {
            let _ = write!(out, "<li><p>{}</p>", inline_markdown(&f.text));
            let evidence: Vec<_> = f.evidence.iter().filter(|e| !e.points.is_empty()).collect();
            if !evidence.is_empty() {
                out.push_str(r#"<div class="evidence">"#);
                for e in evidence {
                    // Not one of the page's charts, which its script counts.
                    let chart = svg::render(&evidence_chart(e));
                    out.push_str(&chart.replacen(
                        r#"class="chart""#,
                        r#"class="evidence-chart""#,
                        1,
                    ));
                }
                out.push_str("</div>");
            }
            out.push_str("</li>\n");
        }
        out.push_str("</ol>\n");
    }
    if !record.criteria.is_empty() {
        out.push_str("<h2>Criteria</h2>\n<table id=\"criteria\"><tr><th>result</th><th>criterion</th><th>measured</th></tr>\n");
        for c in &record.criteria {
            let badge = if c.pass {
                r#"<span class="badge pass">PASS</span>"#
            } else {
                r#"<span class="badge fail">FAIL</span>"#
            };
            let _ = writeln!(
                out,
                r#"<tr><td class="text">{badge}</td><td class="text">{}</td><td>{}</td></tr>"#,
                escape(&c.criterion),
                escape(&c.measured)
            );
        }
        out.push_str("</table>\n");
    }

    out.push_str("<h2>Requests</h2>\n<table id=\"stats\"><thead><tr><th>name</th><th>method</th><th>requests</th><th>failures</th><th>skipped</th><th>req/s</th><th>avg ms</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th><th>avg size B</th></tr></thead><tbody>\n");
    for n in &record.names {
        let l = n.latency_ms.clone();
        let cell =
            |f: fn(&Latency) -> f64| l.as_ref().map_or("-".into(), |l| format!("{:.3}", f(l)));
        let _ = writeln!(
            out,
            r#"<tr><td>{}</td><td class="text">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td></tr>"#,
            escape(&n.name),
            escape(&n.method),
            n.requests,
            n.failures,
            n.skipped,
            n.rps,
            cell(|l| l.mean),
            cell(|l| l.p50),
            cell(|l| l.p95),
            cell(|l| l.p99),
            cell(|l| l.max),
            n.avg_content_bytes,
        );
    }
    out.push_str("</tbody></table>\n");

    out.push_str("<h2>Failures</h2>\n");
    if record.failure_rows.is_empty() {
        out.push_str("<p>None.</p>\n");
    } else {
        out.push_str("<table id=\"failures\"><tr><th>name</th><th>method</th><th>error</th><th>occurrences</th><th>first seen</th><th>last seen</th></tr>\n");
        for f in &record.failure_rows {
            let _ = writeln!(
                out,
                r#"<tr><td>{}</td><td class="text">{}</td><td class="text">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                escape(&f.name),
                escape(&f.method),
                escape(&f.error),
                f.occurrences,
                f.first_seen,
                f.last_seen
            );
        }
        out.push_str("</table>\n");
    }

    out.push_str("<h2>Charts</h2>\n<div class=\"charts\">\n");
    let charts = charts(record);
    for (_, chart) in &charts {
        out.push_str(&svg::render(chart));
        out.push('\n');
    }
    let _ = write!(
        out,
        "</div>\n<p><small>blast {} · command: <code>{}</code></small></p>\n<script>\n{}</script>\n</body></html>\n",
        escape(&record.blast_version),
        escape(&record.command.join(" ")),
        SCRIPT.replace("CHARTS", &charts.len().to_string()),
    );
    out
}

/// Sorts the stats table by a clicked column, and marks the page ready (`data-ready="yes"`)
/// once every chart is in the DOM and drawn; CHARTS is replaced by the expected count.
const SCRIPT: &str = r##""use strict";
document.querySelectorAll("#stats th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var body = document.querySelector("#stats tbody");
    var rows = Array.prototype.slice.call(body.rows);
    var asc = th.dataset.order !== "asc";
    rows.sort(function (a, b) {
      var x = a.cells[col].textContent, y = b.cells[col].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var cmp = isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny;
      return asc ? cmp : -cmp;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    th.dataset.order = asc ? "asc" : "desc";
  });
});
var charts = document.querySelectorAll(".charts svg.chart");
var drawn = Array.prototype.every.call(charts, function (c) {
  return c.getBBox().width > 0 && c.querySelectorAll("polyline, text").length > 0;
});
document.body.dataset.ready = charts.length === CHARTS && drawn ? "yes" : "broken";
"##;

/// One series a finding read, as a small chart.
pub fn evidence_chart(e: &Evidence) -> Chart {
    Chart {
        title: e.label.clone(),
        x_label: "seconds".into(),
        y_label: String::new(),
        x_axis: XAxis::Linear,
        series: vec![Series {
            label: e.label.clone(),
            color: "#1f77b4",
            points: e.points.clone(),
        }],
    }
}

/// A finding's text as HTML: escaped, with its `**bold**` and `` `code` `` kept.
fn inline_markdown(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in escape(text).split("**").enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<strong>{part}</strong>");
        } else {
            for (j, piece) in part.split('`').enumerate() {
                match j % 2 {
                    1 => {
                        let _ = write!(out, "<code>{piece}</code>");
                    }
                    _ => out.push_str(piece),
                }
            }
        }
    }
    out
}

/// The load a run offered: "up to 1000 users (closed model)", "2000.0 requests/s planned
/// (open model)".
pub fn load_text(record: &RunRecord) -> String {
    match (record.users, record.target_rate) {
        (Some(users), _) => format!("up to {users} users (closed model)"),
        (None, Some(rate)) => format!("{rate:.1} requests/s planned (open model)"),
        _ => record.model.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{test_run, Point, Sample};

    #[test]
    fn each_finding_is_shown_beside_the_series_it_read() {
        let points = (1..=10)
            .map(|t| Point {
                start_s: t as f64 - 1.0,
                t_s: t as f64,
                users: 10,
                sample: Sample {
                    monitor: [("pid1.rss_mb".to_string(), 100.0 * t as f64)].into(),
                    ..Sample::default()
                },
                ..Point::default()
            })
            .collect();
        let mut run = test_run(points, &[("GET", "/")]);
        run.growth = vec!["pid1.rss_mb grew steadily by 900".into()];
        let page = render(&run);
        let findings = page
            .split(r#"<ol id="findings">"#)
            .nth(1)
            .expect("a findings list");
        let first = findings.split("</li>").next().unwrap();
        assert!(
            first.starts_with("\n<li><p><strong>Memory growth</strong>: pid1.rss_mb grew"),
            "{first}"
        );
        // Drawn, but not counted among the page's own charts.
        assert_eq!(
            first.matches(r#"class="evidence-chart""#).count(),
            1,
            "{first}"
        );
        assert!(first.contains(r#"aria-label="pid1.rss_mb""#), "{first}");
        assert!(!first.contains(r#"class="chart""#), "{first}");
    }
}
