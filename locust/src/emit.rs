//! The scenario as a TOML file a person can read and edit: one table per class, task and
//! request, each with a comment naming its line in the locustfile.

use std::fmt::Write;

use crate::model::{Kind, Request, Scenario, Sequence, UserClass};

/// The scenario file for `scenario`, translated from the locustfile `file`.
pub(crate) fn toml(scenario: &Scenario, file: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Translated by blast from {file}: edit it, then run it with blast -f."
    );
    line(&mut out, "name", &text(&scenario.name));
    if let Some(host) = &scenario.host {
        line(&mut out, "host", &text(host));
    }
    if !scenario.criteria.is_empty() {
        let criteria = scenario
            .criteria
            .iter()
            .map(|c| toml::Value::String(c.clone()))
            .collect();
        line(
            &mut out,
            "criteria",
            &toml::Value::Array(criteria).to_string(),
        );
    }
    if let Some((stages, run_time)) = &scenario.stages {
        let _ = writeln!(
            out,
            "\n[load] # the LoadTestShape's tick(), evaluated each second"
        );
        line(&mut out, "stages", &text(stages));
        line(&mut out, "run_time", &text(&format!("{run_time}s")));
    }
    for class in &scenario.users {
        let _ = writeln!(
            out,
            "\n[[user]] # {file}:{} class {}",
            class.line, class.name
        );
        line(&mut out, "class", &text(&class.name));
        if let Some(w) = class.weight {
            line(&mut out, "weight", &w.to_string());
        }
        if let Some(n) = class.fixed_count {
            line(&mut out, "fixed_count", &n.to_string());
        }
        holder(&mut out, "user", class, file);
    }
    for set in &scenario.tasksets {
        let _ = writeln!(
            out,
            "\n[[taskset]] # {file}:{} class {}",
            set.line, set.name
        );
        line(&mut out, "name", &text(&set.name));
        if set.kind == (Kind::TaskSet { sequential: true }) {
            line(&mut out, "sequential", "true");
        }
        holder(&mut out, "taskset", set, file);
    }
    out
}

/// What a user class and a task set share: wait time, headers, on-start, tasks, on-stop.
fn holder(out: &mut String, table: &str, class: &UserClass, file: &str) {
    if let Some(w) = &class.wait_time {
        line(out, "wait_time", &text(w));
    }
    if !class.headers.is_empty() {
        line(out, "headers", &table_of(&class.headers));
    }
    sequence(out, &format!("{table}.on_start"), &class.on_start, file);
    for task in &class.tasks {
        let what = match &task.taskset {
            Some(_) => "class",
            None => "def",
        };
        let _ = writeln!(
            out,
            "\n[[{table}.task]] # {file}:{} {what} {}",
            task.line, task.name
        );
        line(out, "task", &text(&task.name));
        if task.weight != 1 {
            line(out, "weight", &task.weight.to_string());
        }
        if !task.take.is_empty() {
            line(out, "take", &table_of(&task.take));
        }
        if !task.tags.is_empty() {
            let tags = task.tags.iter().map(|t| toml::Value::String(t.clone()));
            line(out, "tags", &toml::Value::Array(tags.collect()).to_string());
        }
        if let Some(set) = &task.taskset {
            line(out, "taskset", &text(set));
        }
        if let Some(reschedule) = task.interrupt {
            line(out, "interrupt", "true");
            if !reschedule {
                line(out, "reschedule", "false");
            }
        }
        match (task.steps.pause_first, task.steps.requests.as_slice()) {
            (None, [only]) => request(out, only),
            (Some(p), []) => line(out, "pause", &seconds(p)),
            _ => sequence(out, &format!("{table}.task.step"), &task.steps, file),
        }
    }
    sequence(out, &format!("{table}.on_stop"), &class.on_stop, file);
}

/// Requests in order as `[[TABLE]]`s, a pause that opens them first.
fn sequence(out: &mut String, table: &str, steps: &Sequence, file: &str) {
    // on_start and on_stop stand apart from the tables before them; a task's steps do not.
    if !table.ends_with(".step") && (steps.pause_first.is_some() || !steps.requests.is_empty()) {
        out.push('\n');
    }
    if let Some(p) = steps.pause_first {
        let _ = writeln!(out, "[[{table}]]");
        line(out, "pause", &seconds(p));
    }
    for r in &steps.requests {
        let _ = writeln!(out, "[[{table}]] # {file}:{}", r.line);
        request(out, r);
    }
}

/// Seconds as a duration blast reads: `"1500ms"`.
fn seconds(s: f64) -> String {
    text(&format!("{}ms", (s * 1000.0).round()))
}

fn request(out: &mut String, r: &Request) {
    line(out, "request", &text(&format!("{} {}", r.method, r.path)));
    if let Some(name) = &r.name {
        line(out, "name", &text(name));
    }
    if !r.headers.is_empty() {
        line(out, "headers", &table_of(&r.headers));
    }
    if let Some(json) = &r.json {
        line(out, "json", &json.to_string());
    }
    if let Some(body) = &r.body {
        line(out, "body", &text(body));
    }
    if !r.form.is_empty() {
        line(out, "form", &table_of(&r.form));
    }
    if let Some(t) = &r.timeout {
        line(out, "timeout", &text(t));
    }
    if let Some(f) = r.follow_redirects {
        line(out, "follow_redirects", &f.to_string());
    }
    if !r.success.is_empty() {
        let statuses = r.success.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        line(out, "success", &format!("[{}]", statuses.join(", ")));
    }
    if r.contains.is_some() || !r.expect_json.is_empty() {
        let mut expect = toml::map::Map::new();
        if let Some(text) = &r.contains {
            expect.insert("contains".into(), toml::Value::String(text.clone()));
        }
        if !r.expect_json.is_empty() {
            let json = r.expect_json.iter().cloned().collect();
            expect.insert("json".into(), toml::Value::Table(json));
        }
        line(out, "expect", &toml::Value::Table(expect).to_string());
    }
    if !r.capture.is_empty() {
        line(out, "capture", &table_of(&r.capture));
    }
    if !r.to_pool.is_empty() {
        line(out, "to_pool", &table_of(&r.to_pool));
    }
    if !r.failure.is_empty() {
        line(out, "failure", &table_of(&r.failure));
    }
    if let Some(when) = &r.when {
        line(out, "when", &text(when));
    }
    if let Some(p) = r.pause {
        line(out, "pause", &seconds(p));
    }
}

fn line(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "{key} = {value}");
}

/// A TOML string, quoted and escaped.
fn text(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// An inline table of strings, in order.
fn table_of(pairs: &[(String, String)]) -> String {
    let mut map = toml::map::Map::new();
    for (k, v) in pairs {
        map.insert(k.clone(), toml::Value::String(v.clone()));
    }
    toml::Value::Table(map).to_string()
}
