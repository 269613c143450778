//! The P4.3 results report (`reports/P4-LOAD-TESTING-RESULTS.md`), written from the records of
//! several runs: the plan's baseline table filled in, a section per scenario, a bottleneck
//! analysis computed from the data and the top optimisation opportunities.

use blast_scenarios::best_window_rate;
use std::fmt::Write;
use std::time::Duration;

use crate::analysis::{findings, Finding};
use crate::html::{charts, load_text};
use crate::record::RunRecord;
use crate::svg;

/// The plan's four scenarios: profile, title, expected throughput, latency targets (ms).
struct Planned {
    profile: &'static str,
    title: &'static str,
    /// Expected requests/s: a band, or (minimum held for a minute, None).
    rps: (f64, Option<f64>),
    p50_ms: f64,
    p99_ms: f64,
    success_pct: f64,
}

const PLAN: [Planned; 4] = [
    Planned {
        profile: "deployments",
        title: "Scenario 1: concurrent deployments",
        rps: (50.0, Some(100.0)),
        p50_ms: 200.0,
        p99_ms: 500.0,
        success_pct: 100.0,
    },
    Planned {
        profile: "cab",
        title: "Scenario 2: CAB approval backlog",
        rps: (80.0, Some(120.0)),
        p50_ms: 200.0,
        p99_ms: 500.0,
        success_pct: 99.0,
    },
    Planned {
        profile: "connectors",
        title: "Scenario 3: connector publishing to five execution planes",
        rps: (150.0, Some(200.0)),
        p50_ms: 200.0,
        p99_ms: 500.0,
        success_pct: 99.0,
    },
    Planned {
        profile: "burst",
        title: "Scenario 4: burst",
        rps: (10_000.0, None),
        p50_ms: 500.0,
        p99_ms: 1000.0,
        success_pct: 98.0,
    },
];

/// The report's Markdown, and its charts as (file name, SVG) to write into `charts_dir`.
pub fn render(runs: &[RunRecord], charts_dir: &str) -> (String, Vec<(String, String)>) {
    let mut md = String::new();
    let mut files = Vec::new();
    let _ = writeln!(md, "# P4 load testing results\n");
    let _ = writeln!(
        md,
        "Written by `blast report` (blast {}) from {} run record(s). Every figure below comes from the runs' own data; the analysis sections are computed, not written by hand.\n",
        env!("CARGO_PKG_VERSION"),
        runs.len()
    );

    // Latest run of each planned scenario.
    let chosen: Vec<(&Planned, Option<&RunRecord>)> = PLAN
        .iter()
        .map(|p| {
            let run = runs
                .iter()
                .filter(|r| {
                    r.profile.as_deref() == Some(p.profile)
                        || r.scenario.as_deref() == Some(p.profile)
                })
                .max_by(|a, b| a.started_at.cmp(&b.started_at));
            (p, run)
        })
        .collect();

    let _ = writeln!(md, "## Performance baseline targets\n");
    let _ = writeln!(
        md,
        "| Scenario | Metric | Target | Measured | Result |\n| --- | --- | --- | --- | --- |"
    );
    for (plan, run) in &chosen {
        let Some(run) = run else {
            let _ = writeln!(md, "| {} | - | - | not run | - |", plan.title);
            continue;
        };
        for (metric, target, measured, pass) in baseline_cells(plan, run) {
            let _ = writeln!(
                md,
                "| {} | {metric} | {target} | {measured} | {} |",
                plan.title,
                verdict(pass)
            );
        }
    }
    md.push('\n');

    let mut all_findings: Vec<(String, Finding)> = Vec::new();
    let others: Vec<&RunRecord> = runs
        .iter()
        .filter(|r| {
            !chosen
                .iter()
                .any(|(_, c)| c.is_some_and(|c| std::ptr::eq(c, *r)))
        })
        .collect();
    let sections = chosen
        .iter()
        .filter_map(|(p, r)| r.map(|r| (p.title.to_string(), p.profile.to_string(), r)))
        .chain(others.iter().enumerate().map(|(i, r)| {
            let name = r
                .scenario
                .clone()
                .unwrap_or_else(|| format!("run-{}", i + 1));
            (format!("Other run: {}", r.target), name, *r)
        }));
    for (title, stem, run) in sections {
        let found = findings(run);
        section(&mut md, &title, &stem, run, &found, charts_dir, &mut files);
        all_findings.extend(found.into_iter().map(|f| (title.clone(), f)));
    }

    let _ = writeln!(md, "## Bottleneck analysis\n");
    if all_findings.iter().all(|(_, f)| f.action.is_empty()) {
        let _ = writeln!(md, "No bottleneck shows in the data: latency stayed flat as users grew, throughput followed the users, and no errors were recorded.\n");
    }
    for (title, f) in all_findings.iter().filter(|(_, f)| !f.action.is_empty()) {
        let _ = writeln!(md, "- {title}: {}", f.text);
    }
    md.push('\n');

    let _ = writeln!(md, "## Top optimisation opportunities\n");
    let mut ranked: Vec<&(String, Finding)> = all_findings
        .iter()
        .filter(|(_, f)| !f.action.is_empty())
        .collect();
    ranked.sort_by(|a, b| b.1.weight.total_cmp(&a.1.weight));
    ranked.dedup_by(|a, b| a.1.action == b.1.action);
    if ranked.is_empty() {
        let _ = writeln!(md, "None found in these runs. To find the limits, push further: `blast --profile burst --peak N` with a larger N, or `--stages` that ramp beyond the plan.");
    }
    for (i, (title, f)) in ranked.iter().take(3).enumerate() {
        let _ = writeln!(md, "{}. **{}** ({title})", i + 1, f.action);
    }
    (md, files)
}

fn verdict(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "FAIL"
    }
}

/// The baseline cells of one scenario: (metric, target, measured, pass).
fn baseline_cells(plan: &Planned, run: &RunRecord) -> Vec<(String, String, String, bool)> {
    let latency = run.latency_ms.clone().unwrap_or_default();
    let success = if run.requests == 0 {
        0.0
    } else {
        (run.requests - run.failures) as f64 * 100.0 / run.requests as f64
    };
    let throughput = match plan.rps {
        (low, Some(high)) => (
            format!("{low:.0}-{high:.0} req/s"),
            format!("{:.1} req/s", run.rps),
            (low..=high).contains(&run.rps),
        ),
        (min, None) => {
            let held = best_minute(run);
            (
                format!("{min:.0}+ req/s held for 1 min"),
                held.map_or("run shorter than 1 min".into(), |r| {
                    format!("{r:.0} req/s (best minute)")
                }),
                held.is_some_and(|r| r >= min),
            )
        }
    };
    vec![
        (
            "Throughput".into(),
            throughput.0,
            throughput.1,
            throughput.2,
        ),
        (
            "p50".into(),
            format!("< {} ms", plan.p50_ms),
            format!("{:.2} ms", latency.p50),
            run.latency_ms.is_some() && latency.p50 < plan.p50_ms,
        ),
        (
            "p99".into(),
            format!("< {} ms", plan.p99_ms),
            format!("{:.2} ms", latency.p99),
            run.latency_ms.is_some() && latency.p99 < plan.p99_ms,
        ),
        (
            "Success".into(),
            format!(">= {}%", plan.success_pct),
            format!("{success:.2}%"),
            success >= plan.success_pct,
        ),
    ]
}

/// The best average rate over 60 s of consecutive intervals, as the criterion
/// `rps>=N for 1m` measures it.
fn best_minute(run: &RunRecord) -> Option<f64> {
    let mut previous = 0.0;
    let intervals: Vec<(Duration, f64)> = run
        .history
        .iter()
        .map(|p| {
            let requests = p.rps * (p.t_s - previous);
            previous = p.t_s;
            (Duration::from_secs_f64(p.t_s), requests)
        })
        .collect();
    best_window_rate(&intervals, Duration::from_secs(60))
}

fn section(
    md: &mut String,
    title: &str,
    stem: &str,
    run: &RunRecord,
    found: &[Finding],
    charts_dir: &str,
    files: &mut Vec<(String, String)>,
) {
    let _ = writeln!(md, "## {title}\n");
    let result = match (run.criteria.is_empty(), run.passed) {
        (true, _) => "no criteria",
        (false, true) => "PASS",
        (false, false) => "FAIL",
    };
    let _ = writeln!(
        md,
        "Result: **{result}**. Run `{}`: started {}, {:.0} s, {}, {} requests ({:.1}/s), {} failed, {} threads{}.\n",
        run.command.join(" "),
        run.started_at,
        run.duration_s,
        load_text(run),
        run.requests,
        run.rps,
        run.failures,
        run.threads,
        if run.interrupted { ", stopped early" } else { "" }
    );
    if !run.generator.evidence.is_empty() {
        let _ = writeln!(md, "Generator: {}\n", run.generator.evidence);
    }
    if !run.criteria.is_empty() {
        let _ = writeln!(md, "| Criterion | Measured | Result |\n| --- | --- | --- |");
        for c in &run.criteria {
            let _ = writeln!(
                md,
                "| `{}` | {} | {} |",
                c.criterion,
                c.measured,
                verdict(c.pass)
            );
        }
        md.push('\n');
    }
    let _ = writeln!(md, "| Request | Count | Failures | Skipped | req/s | p50 ms | p95 ms | p99 ms | max ms |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for n in &run.names {
        let l = n.latency_ms.clone().unwrap_or_default();
        let _ = writeln!(
            md,
            "| {} {} | {} | {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} |",
            n.method, n.name, n.requests, n.failures, n.skipped, n.rps, l.p50, l.p95, l.p99, l.max
        );
    }
    md.push('\n');
    for (kind, chart) in charts(run) {
        let file = format!("{stem}-{kind}.svg");
        let _ = writeln!(md, "![{}]({charts_dir}/{file})", chart.title);
        files.push((file, svg::render(&chart)));
    }
    md.push('\n');
    if run.failure_rows.is_empty() {
        let _ = writeln!(md, "Failures: none.\n");
    } else {
        let _ = writeln!(md, "| Failure | Request | Occurrences | First seen | Last seen |\n| --- | --- | --- | --- | --- |");
        for f in &run.failure_rows {
            let _ = writeln!(
                md,
                "| `{}` | {} {} | {} | {} | {} |",
                f.error, f.method, f.name, f.occurrences, f.first_seen, f.last_seen
            );
        }
        md.push('\n');
    }
    let _ = writeln!(md, "Findings:\n");
    for f in found {
        let _ = writeln!(md, "- {}", f.text);
    }
    if found.is_empty() {
        let _ = writeln!(
            md,
            "- Nothing stands out: latency flat, throughput following the users, no errors."
        );
    }
    md.push('\n');
}
