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
    Capture, Destination, Expect, Messages, Pick, Scenario, Step, Success, Task, TaskSet, Then,
    UserClass, WaitTime,
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
    /// `[[taskset]]` tables, entered by tasks with `taskset = "NAME"`.
    #[serde(default)]
    taskset: Vec<Spanned<FileTaskSet>>,
}

/// A `[[taskset]]`: Locust's `TaskSet` or `SequentialTaskSet`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTaskSet {
    name: String,
    #[serde(default)]
    sequential: bool,
    wait_time: Option<Spanned<String>>,
    #[serde(default)]
    on_start: Vec<Spanned<Entry>>,
    #[serde(default)]
    task: Vec<Spanned<Entry>>,
    #[serde(default)]
    on_stop: Vec<Spanned<Entry>>,
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
    fixed_count: Option<Spanned<u32>>,
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
    /// Enter this `[[taskset]]` after the task's requests.
    taskset: Option<Spanned<String>>,
    /// Leave the task set after the task's requests (Locust's `self.interrupt()`).
    interrupt: Option<Spanned<bool>>,
    /// With `interrupt`: the enclosing set picks its next task at once (`true`, Locust's
    /// default) or rests first.
    reschedule: Option<bool>,
    request: Option<Spanned<String>>,
    /// Send only when a variable is set (`"token"`) or is not (`"not token"`).
    when: Option<Spanned<String>>,
    name: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, Spanned<String>>,
    json: Option<Spanned<toml::Value>>,
    body: Option<Spanned<String>>,
    /// A form body, `application/x-www-form-urlencoded`: `{ user = "a", pw = "b" }`.
    form: Option<Spanned<toml::map::Map<String, toml::Value>>>,
    success: Option<Vec<u16>>,
    /// The failure message of each kind of check, as Locust's `response.failure("...")`.
    failure: Option<FileMessages>,
    expect: Option<Spanned<FileExpect>>,
    follow_redirects: Option<bool>,
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    capture: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    to_pool: BTreeMap<String, Spanned<String>>,
    /// A pause after the request, before the next one of the task (`"1s"`); alone in a
    /// step table, a pause at that point of the task.
    pause: Option<Spanned<String>>,
}

/// `failure = { status = "...", contains = "...", json = "..." }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMessages {
    status: Option<String>,
    contains: Option<String>,
    json: Option<String>,
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
            || e.taskset.is_some()
            || e.interrupt.is_some()
        {
            return at(
                entry.span(),
                "task, weight, tags, take, step, taskset and interrupt belong to task tables only",
            );
        }
        Ok(())
    }

    /// A table with only `pause`: a pause at that point of a sequence.
    fn is_pause_only(&self) -> bool {
        self.request.is_none()
            && self.name.is_none()
            && self.headers.is_empty()
            && self.json.is_none()
            && self.body.is_none()
            && self.form.is_none()
            && self.success.is_none()
            && self.failure.is_none()
            && self.expect.is_none()
            && self.follow_redirects.is_none()
            && self.timeout.is_none()
            && self.capture.is_empty()
            && self.to_pool.is_empty()
            && self.when.is_none()
    }
}

impl FileTaskSet {
    /// Every table of the set.
    fn entries(&self) -> impl Iterator<Item = &Spanned<Entry>> {
        self.on_start.iter().chain(&self.task).chain(&self.on_stop)
    }
}

/// The `[[taskset]]` tables a class's `tasks` reach, directly or through other sets, as
/// indexes into `tasksets` in the order first met; a set that reaches itself is refused.
fn reachable_sets(
    tasks: &[Spanned<Entry>],
    tasksets: &[Spanned<FileTaskSet>],
) -> Result<Vec<usize>, At> {
    let find = |name: &Spanned<String>| {
        let found = tasksets
            .iter()
            .position(|t| t.get_ref().name == *name.get_ref());
        found.ok_or_else(|| {
            let there: Vec<&str> = tasksets.iter().map(|t| t.get_ref().name.as_str()).collect();
            At(
                name.span(),
                format!(
                    "no [[taskset]] named {:?} (there are: {})",
                    name.get_ref(),
                    if there.is_empty() {
                        "none".to_string()
                    } else {
                        there.join(", ")
                    }
                ),
            )
        })
    };
    let enters = |tasks: &[Spanned<Entry>]| -> Result<Vec<usize>, At> {
        tasks
            .iter()
            .filter_map(|t| t.get_ref().taskset.as_ref())
            .map(find)
            .collect()
    };
    let mut reached = Vec::new();
    let mut queue = enters(tasks)?;
    while let Some(i) = queue.pop() {
        if reached.contains(&i) {
            continue;
        }
        reached.push(i);
        queue.extend(enters(&tasksets[i].get_ref().task)?);
    }
    // A set that enters itself, directly or not, would nest without end.
    for &start in &reached {
        let mut seen = vec![];
        let mut stack = enters(&tasksets[start].get_ref().task)?;
        while let Some(i) = stack.pop() {
            if i == start {
                return at(
                    tasksets[start].span(),
                    format!(
                        "task set {:?} enters itself",
                        tasksets[start].get_ref().name
                    ),
                );
            }
            if !seen.contains(&i) {
                seen.push(i);
                stack.extend(enters(&tasksets[i].get_ref().task)?);
            }
        }
    }
    Ok(reached)
}

/// A `wait_time = "between(1, 2)"` value.
fn wait_time(value: Option<&Spanned<String>>) -> Result<Option<WaitTime>, At> {
    value
        .map(|w| WaitTime::parse(w.get_ref()).or_else(|e| at(w.span(), e)))
        .transpose()
}

/// A `pause = "1s"` value.
fn pause(value: Option<&Spanned<String>>) -> Result<Duration, At> {
    let p = value.expect("a pause is given");
    parse_duration(p.get_ref()).or_else(|e| at(p.span(), e))
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
    let user_entries = file
        .user
        .iter()
        .flat_map(|u| u.get_ref().on_start.iter().chain(&u.get_ref().task));
    let set_entries = file.taskset.iter().flat_map(|t| t.get_ref().entries());
    for entry in user_entries.chain(set_entries) {
        for entry in entry.get_ref().requests() {
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
        .map(|u| c.class(u, &file.taskset))
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

/// What the tables of one user class compile against.
struct Scope<'a> {
    class: &'a ClassDefaults,
    vars: &'a ClassVars,
    /// The names of the task sets the class reaches; set `i` here is the class's set `i + 1`.
    sets: Vec<&'a str>,
}

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
    fn class(
        &mut self,
        user: Spanned<FileUser>,
        tasksets: &[Spanned<FileTaskSet>],
    ) -> Result<UserClass, At> {
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
        if let Some(n) = user.fixed_count.as_ref().filter(|n| *n.get_ref() == 0) {
            return at(n.span(), "fixed_count must be at least 1");
        }
        let wait =
            wait_time(user.wait_time.as_ref())?.unwrap_or(WaitTime::Constant(Duration::ZERO));
        let reached = reachable_sets(&user.task, tasksets)?;
        // Every variable a class can read is captured or taken somewhere in the class.
        let mut vars = Vec::new();
        let mut add = |name: &String| {
            if !vars.contains(name) {
                vars.push(name.clone());
            }
        };
        let set_entries = reached
            .iter()
            .flat_map(|&i| tasksets[i].get_ref().entries());
        for entry in user.on_start.iter().chain(&user.task).chain(set_entries) {
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
        let scope = Scope {
            class: &class,
            vars: &vars,
            sets: (reached.iter())
                .map(|&i| tasksets[i].get_ref().name.as_str())
                .collect(),
        };
        let mut sets = vec![TaskSet {
            wait: None,
            sequential: false,
            on_start: self.sequence(&user.on_start, &scope)?,
            on_stop: Task::default(),
            tasks: Vec::new(),
            task_weights: Vec::new(),
        }];
        for t in &user.task {
            if let Some(i) = &t.get_ref().interrupt {
                return at(
                    i.span(),
                    "interrupt leaves a [[taskset]]; a user class's own tasks have none to leave",
                );
            }
            sets[0].tasks.push(self.task(t, &scope)?);
        }
        for &i in &reached {
            let file_set = tasksets[i].get_ref();
            let mut set = TaskSet {
                wait: wait_time(file_set.wait_time.as_ref())?,
                sequential: file_set.sequential,
                on_start: self.sequence(&file_set.on_start, &scope)?,
                on_stop: self.sequence(&file_set.on_stop, &scope)?,
                tasks: Vec::new(),
                task_weights: Vec::new(),
            };
            if file_set.task.is_empty() {
                return at(
                    tasksets[i].span(),
                    format!("task set {:?} has no [[taskset.task]]", file_set.name),
                );
            }
            for t in &file_set.task {
                set.tasks.push(self.task(t, &scope)?);
            }
            sets.push(set);
        }
        for set in &mut sets {
            set.task_weights = crate::model::running_weights(&set.tasks);
        }
        Ok(UserClass {
            name: user.class,
            weight: user.weight,
            fixed_count: user.fixed_count.map(Spanned::into_inner),
            wait,
            sets,
            vars: vars.0,
        })
    }

    fn task(&mut self, task: &Spanned<Entry>, scope: &Scope<'_>) -> Result<Task, At> {
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
            take.push((
                scope.vars.slot(var).expect("take keys are class variables"),
                p,
            ));
        }
        let then = match (&t.taskset, &t.interrupt) {
            (Some(_), Some(i)) => {
                return at(i.span(), "a task enters a taskset or interrupts, not both")
            }
            (Some(name), None) => {
                if !t.tags.is_empty() {
                    return at(
                        task.span(),
                        "tags of a task set go on its tasks: the set is kept while one is",
                    );
                }
                let index = scope.sets.iter().position(|n| n == name.get_ref());
                Then::Enter(1 + index.expect("reachable sets are collected first"))
            }
            (None, Some(i)) if *i.get_ref() => Then::Interrupt {
                reschedule: t.reschedule.unwrap_or(true),
            },
            (None, _) => Then::Done,
        };
        let (pause_first, steps) = match (&t.request, t.step.is_empty()) {
            (Some(request), false) => {
                return at(
                    request.span(),
                    "a task has either request = ... or [[user.task.step]] tables, not both",
                )
            }
            (Some(_), true) => (None, vec![self.step(task, scope)?]),
            (None, true) if t.pause.is_some() => (Some(pause(t.pause.as_ref())?), Vec::new()),
            (None, true) if then != Then::Done => (None, Vec::new()),
            (None, true) => {
                return at(
                    task.span(),
                    "a task needs request = \"METHOD /path\", [[user.task.step]] tables, a taskset to enter or interrupt = true",
                )
            }
            (None, false) => {
                let sequence = self.sequence(&t.step, scope)?;
                (sequence.pause_first, sequence.steps)
            }
        };
        Ok(Task {
            weight,
            tags: t.tags.clone(),
            take,
            pause_first,
            steps,
            then,
        })
    }

    /// Requests in order (on-start, on-stop or a task's steps); a table with only `pause`
    /// pauses at that point.
    fn sequence(&mut self, entries: &[Spanned<Entry>], scope: &Scope<'_>) -> Result<Task, At> {
        let mut task = Task {
            weight: 1,
            ..Task::default()
        };
        for entry in entries {
            Entry::request_only(entry)?;
            let e = entry.get_ref();
            if e.request.is_none() && e.pause.is_some() && e.is_pause_only() {
                let d = pause(e.pause.as_ref())?;
                let last = match task.steps.last_mut() {
                    Some(step) => &mut step.pause,
                    None => &mut task.pause_first,
                };
                *last = Some(last.unwrap_or_default() + d);
                continue;
            }
            task.steps.push(self.step(entry, scope)?);
        }
        Ok(task)
    }

    fn step(&mut self, entry: &Spanned<Entry>, scope: &Scope<'_>) -> Result<Step, At> {
        let (class, vars) = (scope.class, scope.vars);
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
        // A name is written to every output and served as a metrics label: no secret in it.
        let name = Name {
            method: method.clone(),
            name: blast_engine::redact::text(
                &s.name
                    .clone()
                    .unwrap_or_else(|| Template::display_name(path)),
            ),
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
        let (body, content_type) = match (&s.json, &s.body, &s.form) {
            (Some(j), None, None) => {
                let t = Template::compile_json(j.get_ref(), vars).or_else(|e| at(j.span(), e))?;
                (Some(t), Some("application/json"))
            }
            (None, Some(b), None) => {
                let t = Template::compile(b.get_ref(), Place::Text, vars)
                    .or_else(|e| at(b.span(), e))?;
                (Some(t), None)
            }
            (None, None, Some(f)) => {
                let mut fields = Vec::new();
                for (key, value) in f.get_ref() {
                    let value = match value {
                        toml::Value::String(s) => s.clone(),
                        toml::Value::Table(_) | toml::Value::Array(_) => {
                            return at(
                                f.span(),
                                format!("form field {key:?} must be text or a number"),
                            )
                        }
                        scalar => scalar.to_string(),
                    };
                    fields.push((key.as_str(), value));
                }
                let fields: Vec<(&str, &str)> =
                    fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let t = Template::compile_form(&fields, vars).or_else(|e| at(f.span(), e))?;
                (Some(t), Some("application/x-www-form-urlencoded"))
            }
            (None, None, None) => (None, None),
            _ => return at(entry.span(), "a request has one of json, body and form"),
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
            messages: s
                .failure
                .as_ref()
                .map_or_else(Messages::default, |m| Messages {
                    status: m.status.clone(),
                    contains: m.contains.clone(),
                    json: m.json.clone(),
                }),
            pause: s.pause.as_ref().map(|p| pause(Some(p))).transpose()?,
            when: match &s.when {
                None => None,
                Some(w) => {
                    let text = w.get_ref().trim();
                    let (name, set) = match text.strip_prefix("not ") {
                        Some(name) => (name.trim(), false),
                        None => (text, true),
                    };
                    match vars.slot(name) {
                        Some(slot) => Some((slot, set)),
                        None => {
                            return at(
                                w.span(),
                                format!(
                                "when names {name:?}, which is never captured or taken from a pool"
                            ),
                            )
                        }
                    }
                }
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
                "s.toml:5:1: task, weight, tags, take, step, taskset and interrupt belong to task tables only",
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
