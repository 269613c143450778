//! The scenario as a TOML file a person can read and edit: one table per class, task and
//! request, each with a comment naming its line in the locustfile.

use std::fmt::Write;

use crate::model::{Request, Scenario};

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
        if let Some(w) = &class.wait_time {
            line(&mut out, "wait_time", &text(w));
        }
        if !class.headers.is_empty() {
            line(&mut out, "headers", &table(&class.headers));
        }
        for r in &class.on_start {
            let _ = writeln!(out, "\n[[user.on_start]] # {file}:{}", r.line);
            request(&mut out, r);
        }
        for task in &class.tasks {
            let _ = writeln!(
                out,
                "\n[[user.task]] # {file}:{} def {}",
                task.line, task.name
            );
            line(&mut out, "task", &text(&task.name));
            if task.weight != 1 {
                line(&mut out, "weight", &task.weight.to_string());
            }
            if !task.take.is_empty() {
                line(&mut out, "take", &table(&task.take));
            }
            if !task.tags.is_empty() {
                let tags = toml::Value::Array(
                    task.tags
                        .iter()
                        .map(|t| toml::Value::String(t.clone()))
                        .collect(),
                );
                line(&mut out, "tags", &tags.to_string());
            }
            match task.requests.as_slice() {
                [only] => request(&mut out, only),
                steps => {
                    for r in steps {
                        let _ = writeln!(out, "[[user.task.step]] # {file}:{}", r.line);
                        request(&mut out, r);
                    }
                }
            }
        }
    }
    out
}

fn request(out: &mut String, r: &Request) {
    line(out, "request", &text(&format!("{} {}", r.method, r.path)));
    if let Some(name) = &r.name {
        line(out, "name", &text(name));
    }
    if !r.headers.is_empty() {
        line(out, "headers", &table(&r.headers));
    }
    if let Some(json) = &r.json {
        line(out, "json", &json.to_string());
    }
    if let Some(body) = &r.body {
        line(out, "body", &text(body));
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
        line(out, "capture", &table(&r.capture));
    }
    if !r.to_pool.is_empty() {
        line(out, "to_pool", &table(&r.to_pool));
    }
    if let Some(p) = r.pause {
        line(out, "pause", &text(&format!("{}ms", (p * 1000.0).round())));
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
fn table(pairs: &[(String, String)]) -> String {
    let mut map = toml::map::Map::new();
    for (k, v) in pairs {
        map.insert(k.clone(), toml::Value::String(v.clone()));
    }
    toml::Value::Table(map).to_string()
}
