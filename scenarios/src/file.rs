//! Scenario files (TOML) compiled into the model; every error names the file, line and column.
//! The format is documented in `docs/scenarios.md`.

use blast_engine::Name;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

use crate::capture::JsonPath;
use crate::criteria::Criterion;
use crate::load::{parse_duration, parse_rate, parse_stages, Load};
use crate::model::{
    Capture, Destination, Expect, Pick, Scenario, Step, Success, Task, UserClass, WaitTime,
};
use crate::template::{Place, Template, Vars};
use crate::ScenarioError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    description: Option<String>,
    host: Option<Spanned<String>>,
    #[serde(default)]
    load: FileLoad,
    #[serde(default)]
    criteria: Vec<Spanned<String>>,
    /// `[pool.NAME]` tables: how a pool hands out its values.
    #[serde(default)]
    pool: BTreeMap<String, Spanned<FilePool>>,
    #[serde(default)]
    user: Vec<Spanned<FileUser>>,
}

/// `[pool.ids] reuse = true`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePool {
    /// Hand values out in turn, any number of times, instead of each once.
    #[serde(default)]
    reuse: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileLoad {
    users: Option<Spanned<u64>>,
    spawn_rate: Option<Spanned<f64>>,
    run_time: Option<Spanned<String>>,
    stages: Option<Spanned<String>>,
    rate: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUser {
    class: String,
    #[serde(default = "one")]
    weight: u32,
    wait_time: Option<Spanned<String>>,
    #[serde(default)]
    headers: BTreeMap<String, Spanned<String>>,
    follow_redirects: Option<bool>,
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    on_start: Vec<Spanned<Entry>>,
    #[serde(default)]
    task: Vec<Spanned<Entry>>,
}

/// A `[[user.task]]`, `[[user.on_start]]` or `[[user.task.step]]` table. One shape serves all
/// three so that a one-request task can be written inline; the keys only a task may have
/// (`task`, `weight`, `take`, `step`) are checked by hand on the others.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// The task's label (Locust's task function name); documentation only.
    task: Option<String>,
    weight: Option<Spanned<u32>>,
    /// Locust's `@tag`: `--tags` and `--exclude-tags` select tasks by them.
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    take: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    step: Vec<Spanned<Entry>>,
    request: Option<Spanned<String>>,
    name: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, Spanned<String>>,
    json: Option<Spanned<toml::Value>>,
    body: Option<Spanned<String>>,
    success: Option<Vec<u16>>,
    expect: Option<Spanned<FileExpect>>,
    follow_redirects: Option<bool>,
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    capture: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    to_pool: BTreeMap<String, Spanned<String>>,
    /// A pause after the request, before the next one of the task (`"1s"`).
    pause: Option<Spanned<String>>,
}

/// `expect = { contains = "...", json = { "path" = value } }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileExpect {
    contains: Option<String>,
    #[serde(default)]
    json: BTreeMap<String, toml::Value>,
}

impl Entry {
    /// This table and its steps: every table that may describe a request.
    fn requests(&self) -> impl Iterator<Item = &Entry> {
        std::iter::once(self).chain(self.step.iter().map(Spanned::get_ref))
    }

    /// Refuses task-only keys on an on-start request or a step.
    fn request_only(entry: &Spanned<Entry>) -> Result<(), At> {
        let e = entry.get_ref();
        if e.task.is_some()
            || e.weight.is_some()
            || !e.take.is_empty()
            || !e.step.is_empty()
            || !e.tags.is_empty()
        {
            return at(
                entry.span(),
                "task, weight, tags, take and step belong to [[user.task]] tables only",
            );
        }
        Ok(())
    }
}

fn one() -> u32 {
    1
}

/// An error at a byte range of the source, located later.
struct At(Range<usize>, String);

fn at<T>(span: Range<usize>, message: impl Into<String>) -> Result<T, At> {
    Err(At(span, message.into()))
}

/// Reads and compiles the scenario file at `path`.
pub fn read(path: &str) -> Result<Scenario, ScenarioError> {
    let source = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: path.to_string(),
        source,
    })?;
    parse(path, &source)
}

/// Parses and compiles a scenario file; `path` is only used in error messages.
pub fn parse(path: &str, source: &str) -> Result<Scenario, ScenarioError> {
    let locate = |span: Range<usize>, message: String| {
        let before = &source[..span.start.min(source.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        ScenarioError::File {
            path: path.to_string(),
            line,
            col,
            message,
        }
    };
    let file: File = toml::from_str(source).map_err(|e| {
        // toml's messages can span lines ("invalid table header\nexpected ..."): keep one.
        let message = e.message().trim().lines().collect::<Vec<_>>().join(": ");
        locate(e.span().unwrap_or(0..0), message)
    })?;
    let fallback = path
        .rsplit('/')
        .next()
        .unwrap_or(path)
        .trim_end_matches(".toml")
        .to_string();
    compile(file, fallback).map_err(|At(span, message)| locate(span, message))
}

fn compile(file: File, fallback_name: String) -> Result<Scenario, At> {
    if file.user.is_empty() {
        return at(
            0..0,
            "no users: add at least one [[user]] table with a [[user.task]]",
        );
    }
    let mut c = Compiler::default();
    // Pools are shared by every class: collect the ones filled anywhere first.
    for user in &file.user {
        let user = user.get_ref();
        let entries = user.on_start.iter().chain(&user.task);
        for entry in entries.flat_map(|e| e.get_ref().requests()) {
            for name in entry.to_pool.keys() {
                if !c.pools.contains(name) {
                    c.pools.push(name.clone());
                }
            }
        }
    }
    let mut reuse_pools = Vec::new();
    for (name, pool) in &file.pool {
        if !c.pools.contains(name) {
            return at(
                pool.span(),
                format!(
                    "pool {name:?} is never filled: no request has to_pool = {{ {name} = ... }}"
                ),
            );
        }
        if pool.get_ref().reuse {
            reuse_pools.push(name.clone());
        }
    }
    let classes = file
        .user
        .into_iter()
        .map(|u| c.class(u))
        .collect::<Result<Vec<_>, At>>()?;
    let criteria = file
        .criteria
        .into_iter()
        .map(|s| {
            let span = s.span();
            Criterion::parse(s.get_ref()).or_else(|e| at(span, e))
        })
        .collect::<Result<Vec<_>, At>>()?;
    let host = match file.host {
        Some(h) if !h.get_ref().starts_with("http://") => {
            return at(
                h.span(),
                "host must be an http:// URL, e.g. http://127.0.0.1:8000",
            )
        }
        h => h.map(Spanned::into_inner),
    };
    let scenario = Scenario {
        name: file.name.unwrap_or(fallback_name),
        description: file.description.unwrap_or_default(),
        host,
        load: load(file.load)?,
        criteria,
        classes,
        names: c.names,
        pools: c.pools,
        reuse_pools,
    };
    for criterion in &scenario.criteria {
        criterion
            .check_names(&scenario.names)
            .or_else(|e| at(0..0, e))?;
    }
    Ok(scenario)
}

fn load(file: FileLoad) -> Result<Load, At> {
    let mut load = Load::default();
    if let Some(users) = file.users {
        if *users.get_ref() == 0 {
            return at(users.span(), "users must be at least 1");
        }
        load.users = Some(users.into_inner());
    }
    if let Some(rate) = file.spawn_rate {
        if !(rate.get_ref().is_finite() && *rate.get_ref() > 0.0) {
            return at(rate.span(), "spawn_rate must be above 0 users/s");
        }
        load.spawn_rate = Some(rate.into_inner());
    }
    if let Some(t) = file.run_time {
        load.run_time = Some(parse_duration(t.get_ref()).or_else(|e| at(t.span(), e))?);
    }
    if let Some(s) = file.stages {
        load.stages = Some(parse_stages(s.get_ref()).or_else(|e| at(s.span(), e))?);
    }
    if let Some(r) = file.rate {
        let text = match r.get_ref() {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(f) => f.to_string(),
            _ => return at(r.span(), "rate must be a number or a stage list string"),
        };
        load.rate = Some(parse_rate(&text).or_else(|e| at(r.span(), e))?);
    }
    if load.users.is_some() && load.stages.is_some() {
        return at(0..0, "[load] has both users and stages: keep one");
    }
    Ok(load)
}

#[derive(Default)]
struct Compiler {
    names: Vec<Name>,
    pools: Vec<String>,
}

/// The variables of one user class.
struct ClassVars(Vec<String>);

/// What a user class sets for all its requests.
struct ClassDefaults {
    headers: BTreeMap<String, Spanned<String>>,
    follow_redirects: bool,
    timeout: Option<Duration>,
}

/// A `timeout = "2s"` value.
fn timeout(value: &Spanned<String>) -> Result<Duration, At> {
    match parse_duration(value.get_ref()) {
        Ok(t) if !t.is_zero() => Ok(t),
        Ok(_) => at(value.span(), "timeout must be above zero"),
        Err(e) => at(value.span(), e),
    }
}

impl Vars for ClassVars {
    fn slot(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|v| v == name)
    }
}

impl Compiler {
    fn class(&mut self, user: Spanned<FileUser>) -> Result<UserClass, At> {
        let span = user.span();
        let user = user.into_inner();
        if user.task.is_empty() {
            return at(
                span,
                format!("user class {:?} has no [[user.task]]", user.class),
            );
        }
        if user.weight == 0 {
            return at(span, format!("user class {:?} has weight 0", user.class));
        }
        let wait = match &user.wait_time {
            Some(w) => WaitTime::parse(w.get_ref()).or_else(|e| at(w.span(), e))?,
            None => WaitTime::Constant(Default::default()),
        };
        // Every variable a class can read is captured or taken somewhere in the class.
        let mut vars = Vec::new();
        let mut add = |name: &String| {
            if !vars.contains(name) {
                vars.push(name.clone());
            }
        };
        for entry in user.on_start.iter().chain(&user.task) {
            let entry = entry.get_ref();
            entry.take.keys().for_each(&mut add);
            for e in entry.requests() {
                e.capture.keys().for_each(&mut add);
            }
        }
        let vars = ClassVars(vars);
        let class = ClassDefaults {
            headers: user.headers,
            // Locust's HttpUser follows redirects unless told not to.
            follow_redirects: user.follow_redirects.unwrap_or(true),
            timeout: user.timeout.as_ref().map(timeout).transpose()?,
        };
        let mut on_start = Vec::new();
        for entry in &user.on_start {
            Entry::request_only(entry)?;
            on_start.push(self.step(entry, &class, &vars)?);
        }
        let mut tasks = Vec::new();
        for t in user.task {
            tasks.push(self.task(t, &class, &vars)?);
        }
        let task_weights = crate::model::running_weights(&tasks);
        Ok(UserClass {
            name: user.class,
            weight: user.weight,
            wait,
            on_start,
            tasks,
            task_weights,
            vars: vars.0,
        })
    }

    fn task(
        &mut self,
        task: Spanned<Entry>,
        class: &ClassDefaults,
        vars: &ClassVars,
    ) -> Result<Task, At> {
        let t = task.get_ref();
        let weight = match &t.weight {
            Some(w) if *w.get_ref() == 0 => return at(w.span(), "task weight must be at least 1"),
            Some(w) => *w.get_ref(),
            None => 1,
        };
        let mut take = Vec::new();
        for (var, pool) in &t.take {
            let Some(p) = self.pools.iter().position(|n| n == pool.get_ref()) else {
                return at(
                    pool.span(),
                    format!(
                        "pool {:?} is never filled: no request has to_pool = {{ {} = ... }}",
                        pool.get_ref(),
                        pool.get_ref()
                    ),
                );
            };
            take.push((vars.slot(var).expect("take keys are class variables"), p));
        }
        let steps = match (&t.request, t.step.is_empty()) {
            (Some(request), false) => {
                return at(
                    request.span(),
                    "a task has either request = ... or [[user.task.step]] tables, not both",
                )
            }
            (Some(_), true) => vec![self.step(&task, class, vars)?],
            (None, true) => {
                return at(
                    task.span(),
                    "a task needs request = \"METHOD /path\" or [[user.task.step]] tables",
                )
            }
            (None, false) => {
                let mut steps = Vec::new();
                for entry in &t.step {
                    Entry::request_only(entry)?;
                    steps.push(self.step(entry, class, vars)?);
                }
                steps
            }
        };
        Ok(Task {
            weight,
            tags: t.tags.clone(),
            take,
            steps,
        })
    }

    fn step(
        &mut self,
        entry: &Spanned<Entry>,
        class: &ClassDefaults,
        vars: &ClassVars,
    ) -> Result<Step, At> {
        let s = entry.get_ref();
        let Some(request) = &s.request else {
            return at(entry.span(), "a request needs request = \"METHOD /path\"");
        };
        let span = request.span();
        let Some((method, path)) = request.get_ref().trim().split_once(' ') else {
            return at(
                span,
                "request must be \"METHOD /path\", e.g. \"GET /api/v1/deployments/\"",
            );
        };
        let path = path.trim();
        let method_ok = !method.is_empty() && method.bytes().all(|b| b.is_ascii_alphabetic());
        // Spaces are fine inside placeholders ({{random_int 1 5}}), nowhere else.
        let outside: String = path
            .split("{{")
            .map(|part| part.split_once("}}").map_or(part, |(_, rest)| rest))
            .collect();
        if !method_ok || !path.starts_with('/') || outside.contains(char::is_whitespace) {
            return at(
                span,
                "request must be \"METHOD /path\", e.g. \"GET /api/v1/deployments/\"",
            );
        }
        let method = method.to_ascii_uppercase();
        let template =
            Template::compile(path, Place::Url, vars).or_else(|e| at(span.clone(), e))?;
        let name = Name {
            method: method.clone(),
            name: s
                .name
                .clone()
                .unwrap_or_else(|| Template::display_name(path)),
        };
        let name = match self.names.iter().position(|n| *n == name) {
            Some(i) => i,
            None => {
                self.names.push(name);
                self.names.len() - 1
            }
        };
        let mut headers = Vec::new();
        // Step headers replace class headers of the same name.
        let merged = class
            .headers
            .iter()
            .filter(|(k, _)| !s.headers.keys().any(|h| h.eq_ignore_ascii_case(k)))
            .chain(s.headers.iter());
        for (key, value) in merged {
            if key.is_empty()
                || !key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b))
            {
                return at(value.span(), format!("invalid header name {key:?}"));
            }
            let t = Template::compile(value.get_ref(), Place::Text, vars)
                .or_else(|e| at(value.span(), e))?;
            headers.push((key.clone(), t));
        }
        let (body, content_type) = match (&s.json, &s.body) {
            (Some(_), Some(b)) => {
                return at(b.span(), "a request has json = ... or body = ..., not both")
            }
            (Some(j), None) => {
                let t = Template::compile_json(j.get_ref(), vars).or_else(|e| at(j.span(), e))?;
                (Some(t), Some("application/json"))
            }
            (None, Some(b)) => {
                let t = Template::compile(b.get_ref(), Place::Text, vars)
                    .or_else(|e| at(b.span(), e))?;
                (Some(t), None)
            }
            (None, None) => (None, None),
        };
        let expect = match &s.expect {
            None => None,
            Some(e) => {
                let mut json = Vec::new();
                for (path, value) in &e.get_ref().json {
                    let p = JsonPath::parse(path).or_else(|err| at(e.span(), err))?;
                    let v =
                        serde_json::to_value(value).or_else(|err| at(e.span(), err.to_string()))?;
                    json.push((p, v));
                }
                Some(Expect {
                    contains: e.get_ref().contains.clone(),
                    json,
                })
            }
        };
        let mut captures = Vec::new();
        for (var, path) in &s.capture {
            let text = path.get_ref().trim();
            let (pick, text) = match text.split_once(' ') {
                Some(("pick", rest)) => (Pick::Random, rest),
                Some(("all", rest)) => (Pick::All, rest),
                _ => (Pick::First, text),
            };
            let p = JsonPath::parse(text.trim()).or_else(|e| at(path.span(), e))?;
            let slot = vars.slot(var).expect("capture keys are class variables");
            captures.push(Capture {
                path: p,
                into: Destination::Var(slot, pick),
            });
        }
        for (pool, path) in &s.to_pool {
            let p = JsonPath::parse(path.get_ref()).or_else(|e| at(path.span(), e))?;
            let index = self
                .pools
                .iter()
                .position(|n| n == pool)
                .expect("pools collected first");
            captures.push(Capture {
                path: p,
                into: Destination::Pool(index),
            });
        }
        Ok(Step {
            name,
            method,
            path: template,
            headers,
            body,
            content_type,
            success: match &s.success {
                None => Success::Below400,
                Some(codes) => {
                    if let Some(bad) = codes.iter().find(|c| !(100..=599).contains(*c)) {
                        return at(
                            entry.span(),
                            format!(
                                "success lists {bad}, which is not an HTTP status (100 to 599)"
                            ),
                        );
                    }
                    Success::Only(codes.clone())
                }
            },
            expect,
            follow_redirects: s.follow_redirects.unwrap_or(class.follow_redirects),
            timeout: match &s.timeout {
                Some(t) => Some(timeout(t)?),
                None => class.timeout,
            },
            captures,
            pause: match &s.pause {
                Some(p) => match parse_duration(p.get_ref()) {
                    Ok(d) => Some(d),
                    Err(e) => return at(p.span(), e),
                },
                None => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `line:col: message` of a file that does not compile.
    fn error(source: &str) -> String {
        match parse("s.toml", source) {
            Ok(_) => panic!("compiled:\n{source}"),
            Err(e) => e.to_string(),
        }
    }

    const TASK: &str = "[[user]]\nclass = \"U\"\n[[user.task]]\nrequest = \"GET /\"\n";

    #[test]
    fn a_minimal_file_compiles_with_defaults() {
        let s = parse("dir/minimal.toml", TASK).unwrap();
        assert_eq!(s.name, "minimal");
        assert_eq!(s.names()[0].name, "/");
        assert_eq!(s.classes(), [("U", 1)]);
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let cases = [
            // TOML syntax.
            ("[[user]\n", "s.toml:1:"),
            // Unknown key, with what was expected.
            (
                &format!("{TASK}colour = \"red\"\n"),
                "s.toml:5:1: unknown field `colour`, expected one of",
            ),
            // Bad request line.
            (
                "[[user]]\nclass = \"U\"\n[[user.task]]\nrequest = \"FETCH\"\n",
                "s.toml:4:11: request must be",
            ),
            // Unknown variable in a template.
            (
                "[[user]]\nclass = \"U\"\n[[user.task]]\nrequest = \"GET /{{id}}\"\n",
                "s.toml:4:11: unknown variable {{id}}",
            ),
            // A success status that is not one.
            (
                "[[user]]\nclass = \"U\"\n[[user.task]]\nrequest = \"GET /\"\nsuccess = [201, 2011]\n",
                "s.toml:3:1: success lists 2011, which is not an HTTP status (100 to 599)",
            ),
            // Bad wait time.
            (
                "[[user]]\nclass = \"U\"\nwait_time = \"between(2, 1)\"\n[[user.task]]\nrequest = \"GET /\"\n",
                "s.toml:3:13: invalid wait_time",
            ),
            // A pool nobody fills.
            (
                "[[user]]\nclass = \"U\"\n[[user.task]]\ntake = { id = \"ids\" }\nrequest = \"GET /{{id}}\"\n",
                "s.toml:4:15: pool \"ids\" is never filled",
            ),
            // A pool declared but never filled, and an unknown pool setting.
            (
                &format!("[pool.ids]\nreuse = true\n{TASK}"),
                "s.toml:1:1: pool \"ids\" is never filled",
            ),
            (
                &format!("[pool.ids]\nshared = true\n{TASK}"),
                "unknown field `shared`, expected `reuse`",
            ),
            // Bad criterion.
            (
                &format!("criteria = [\"p99 < soon\"]\n{TASK}"),
                "s.toml:1:13: invalid criterion",
            ),
            // Criterion naming a request that does not exist.
            (
                &format!("criteria = [\"/nope:p99<1s\"]\n{TASK}"),
                "no request has",
            ),
            // Bad stages.
            (
                &format!("{TASK}[load]\nstages = \"1m:lots\"\n"),
                "s.toml:6:10: invalid stages",
            ),
            // No users at all.
            ("name = \"x\"\n", "s.toml:1:1: no users"),
            // Task-only keys on an on-start request.
            (
                &format!("{TASK}[[user.on_start]]\nweight = 2\nrequest = \"GET /\"\n"),
                "s.toml:5:1: task, weight, tags, take and step belong to [[user.task]] tables only",
            ),
            // Task with neither request nor steps.
            ("[[user]]\nclass = \"U\"\n[[user.task]]\nweight = 2\n", "a task needs request"),
        ];
        for (source, expected) in cases {
            let e = error(source);
            assert!(e.contains(expected), "expected {expected:?} in {e:?}");
            assert!(!e.contains('\n'), "one line: {e:?}");
        }
    }
}
