//! The P4.3 results report (`reports/P4-LOAD-TESTING-RESULTS.md`), written from the records of
//! several runs: the plan's baseline table filled in, a section per scenario, a bottleneck
//! analysis computed from the data and the top optimisation opportunities.

use blast_engine::{PhaseKind, Schedule};
use blast_report::html::{charts, evidence_chart, load_text};
use blast_report::{findings, seconds, svg, Finding, RunRecord};
use std::fmt::Write;
use std::time::Duration;

use crate::profiles::{profile, PROFILES};

/// A scenario of the plan as its built-in profile defines it: the profile's criteria are the
/// plan's targets and its load is the plan's load, so nothing here restates them.
struct Planned {
    profile: &'static str,
    title: String,
    criteria: Vec<String>,
    /// Peak users of the profile's load.
    users: f64,
    run_time: Duration,
    /// When the profile's load first reaches its peak.
    ramp_up: Duration,
}

impl Planned {
    /// The plan's scenarios, in the order of the built-in profiles.
    fn all() -> Vec<Planned> {
        PROFILES
            .iter()
            .map(|(name, _)| {
                let scenario = profile(name).expect("built-in profiles compile");
                let (schedule, run_time) = (scenario.load)
                    .resolve(None, 0)
                    .expect("built-in profiles have a load");
                let phases = schedule.phases(run_time);
                let ramp_up = phases
                    .iter()
                    .find(|(kind, _, _)| *kind == PhaseKind::RampUp)
                    .map_or(Duration::ZERO, |(_, _, end)| *end);
                let users = match &schedule {
                    Schedule::Closed { users } => users.peak(),
                    Schedule::Open { rate, .. } => rate.peak(),
                };
                // "P4.3 scenario 2: 50 CAB approvers ..." titles its section "Scenario 2: ...".
                let description = scenario.description.trim_end_matches('.');
                let title = match description.strip_prefix("P4.3 scenario") {
                    Some(rest) => format!("Scenario{rest}"),
                    None => format!("Profile {name}: {description}"),
                };
                Planned {
                    profile: name,
                    title,
                    criteria: scenario.criteria.iter().map(|c| c.to_string()).collect(),
                    users,
                    run_time,
                    ramp_up,
                }
            })
            .collect()
    }

    /// How `run`'s load differs from the plan's (users, duration, ramp-up), if it does: its
    /// figures then say nothing about the plan's targets.
    fn differs(&self, run: &RunRecord) -> Option<String> {
        let mut out = Vec::new();
        if run.interrupted {
            out.push("it was stopped early".to_string());
        }
        match run.users {
            Some(users) if users == self.users => {}
            Some(users) => out.push(format!("{users} users, the plan {}", self.users)),
            None => out.push(format!("an open-model rate, the plan {} users", self.users)),
        }
        let close = |a: f64, b: f64| (a - b).abs() <= (0.05 * b).max(1.0);
        let planned = self.run_time.as_secs_f64();
        // The run time is the sending window, not the drain of in-flight requests after it.
        if !close(run.sending_s, planned) {
            out.push(format!(
                "{} s, the plan {} s",
                seconds(run.sending_s),
                seconds(planned)
            ));
        }
        let ramp = run
            .phases
            .iter()
            .find(|p| p.phase == PhaseKind::RampUp.as_str())
            .map_or(0.0, |p| p.end_s);
        let planned_ramp = self.ramp_up.as_secs_f64();
        if !close(ramp, planned_ramp) {
            out.push(format!(
                "a ramp-up of {} s, the plan {} s",
                seconds(ramp),
                seconds(planned_ramp)
            ));
        }
        (!out.is_empty()).then(|| out.join("; "))
    }
}

/// `name` (a record's scenario, so untrusted) as part of a file name: no separators, `..`,
/// control or other characters a shell or a file system treats specially.
fn file_stem(name: &str) -> String {
    let kept: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
            _ => '_',
        })
        .take(64)
        .collect();
    match kept.trim_matches('_') {
        "" => "run".to_string(),
        _ => kept,
    }
}

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
    let plan = Planned::all();
    let chosen: Vec<(&Planned, Option<&RunRecord>)> = plan
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
        "The targets are the profiles' own criteria (`blast --print-profile NAME`), judged by each scenario's latest run. A run whose load differs from the profile's is not comparable to the plan, whatever its figures.\n"
    );
    let _ = writeln!(
        md,
        "| Scenario | Target | Measured | Result |\n| --- | --- | --- | --- |"
    );
    for (plan, run) in &chosen {
        let Some(run) = run else {
            let _ = writeln!(md, "| {} | - | not run | - |", plan.title);
            continue;
        };
        if let Some(how) = plan.differs(run) {
            let _ = writeln!(
                md,
                "| {} | - | {} | not comparable to the plan ({how}) |",
                plan.title,
                load_text(run)
            );
            continue;
        }
        for criterion in &plan.criteria {
            let verdict = run.criteria.iter().find(|v| &v.criterion == criterion);
            let (measured, result) = match verdict {
                Some(v) => (v.measured.as_str(), verdict_text(v.pass)),
                None => ("-", "not judged by the run"),
            };
            let _ = writeln!(
                md,
                "| {} | `{criterion}` | {measured} | {result} |",
                plan.title
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
        let stem = file_stem(&stem);
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
        let _ = writeln!(md, "Nothing needs attention in these runs. To find the limits, push further: `blast --profile burst --peak N` with a larger N, or `--stages` that ramp beyond the plan.");
    }
    for (i, (title, f)) in ranked.iter().take(3).enumerate() {
        let _ = writeln!(md, "{}. **{}** ({title})", i + 1, f.action);
    }
    (md, files)
}

fn verdict_text(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "FAIL"
    }
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
        "Result: **{result}**. Run `{}`: started {}, {} s, {}, {} requests ({:.1}/s), {} failed, {} threads{}.\n",
        run.command.join(" "),
        run.started_at,
        seconds(run.sending_s),
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
                verdict_text(c.pass)
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
    for (i, f) in found.iter().enumerate() {
        // The series a finding read, drawn beside the report for the reader to check.
        let links: Vec<String> = (f.evidence.iter().filter(|e| !e.points.is_empty()))
            .enumerate()
            .map(|(k, e)| {
                let file = format!("{stem}-finding{}-{}.svg", i + 1, k + 1);
                files.push((file.clone(), svg::render(&evidence_chart(e))));
                format!("[{}]({charts_dir}/{file})", e.label)
            })
            .collect();
        match links.is_empty() {
            true => {
                let _ = writeln!(md, "- {}", f.text);
            }
            false => {
                let _ = writeln!(md, "- {} Evidence: {}.", f.text, links.join(", "));
            }
        }
    }
    if found.is_empty() {
        let _ = writeln!(
            md,
            "- Nothing stands out: latency flat, throughput following the users, no errors."
        );
    }
    md.push('\n');
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_from_records_make_plain_file_names() {
        use super::file_stem;
        assert_eq!(file_stem("burst"), "burst");
        assert_eq!(file_stem("../../etc/passwd"), "______etc_passwd");
        assert_eq!(file_stem("a/b\\c\n"), "a_b_c_");
        assert_eq!(file_stem(".."), "run");
        assert_eq!(file_stem(""), "run");
        assert_eq!(file_stem(&"x".repeat(300)).len(), 64);
    }

    use super::*;

    /// A record of the cab profile: `users` at their peak after `ramp_s`, for `duration_s`,
    /// with every criterion of the profile passing.
    fn cab_run(users: f64, ramp_s: f64, sending_s: f64) -> RunRecord {
        // In-flight requests drain for a while after sending stops, longer on a busy machine.
        let duration_s = sending_s + 0.08;
        let plan = Planned::all();
        let cab = plan.iter().find(|p| p.profile == "cab").unwrap();
        let criteria: Vec<serde_json::Value> = cab
            .criteria
            .iter()
            .map(|c| serde_json::json!({"criterion": c, "measured": "1 ms", "pass": true}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "blast_version": "0", "command": ["blast"], "target": "t", "host": "h",
            "profile": "cab", "started_at": "2026-11-28T00:00:00Z", "ended_at": "",
            "duration_s": duration_s, "sending_s": sending_s, "threads": 2, "pinned": true, "interrupted": false,
            "model": "closed", "users": users, "requests": 1000, "failures": 0,
            "failures_by_class": {}, "cancelled": 0, "skipped": 0, "rps": 100.0,
            "bytes_sent": 0, "bytes_received": 0, "connections": 50, "names": [],
            "failure_rows": [], "criteria": criteria, "passed": true, "history": [],
            "percentiles": [],
            "phases": [
                {"phase": "ramp-up", "start_s": 0.0, "end_s": ramp_s, "requests": 10,
                 "failures": 0, "rps": 1.0, "latency_ms": null},
                {"phase": "steady", "start_s": ramp_s, "end_s": sending_s, "requests": 990,
                 "failures": 0, "rps": 100.0, "latency_ms": null}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn the_baseline_judges_the_plans_load_by_the_profiles_own_criteria() {
        // The plan's load (50 users, 10/s for 5 s, 5 minutes): every criterion of the profile.
        let (md, _) = render(&[cab_run(50.0, 5.0, 300.2)], "charts");
        let title = "Scenario 2: 50 CAB approvers work through a backlog of 100+ pending approvals";
        for c in &profile("cab").unwrap().criteria {
            let row = format!("| {title} | `{c}` | 1 ms | PASS |");
            assert!(md.contains(&row), "{row:?} missing from:\n{md}");
        }
        assert!(md.contains("| Scenario 1: 100 users create, list and inspect deployments concurrently | - | not run | - |"), "{md}");
        // A 4-second run of 10 users is not the plan's load: not comparable, not FAIL.
        let (md, _) = render(&[cab_run(10.0, 1.0, 2.0)], "charts");
        assert!(md.contains(&format!("| {title} | - | up to 10 users (closed model) | not comparable to the plan (10 users, the plan 50; 2 s, the plan 300 s; a ramp-up of 1 s, the plan 5 s) |")), "{md}");
        assert!(md.contains(", 2 s, up to 10 users"), "{md}");
        assert!(!md.contains("| FAIL |"), "{md}");
        // Nothing wrong in the data: no recommendation.
        assert!(
            md.contains("Nothing needs attention in these runs."),
            "{md}"
        );
    }
}
