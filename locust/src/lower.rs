//! The locustfile's syntax tree, lowered construct by construct into [`model`]: module
//! constants, user classes and their attributes, tasks, and the statements inside them. What
//! does not lower is recorded with its place, and the walk goes on, so every place is reported.

use rustpython_parser::ast::{self, Constant, Expr, Ranged, Stmt};
use std::collections::HashMap;

use crate::model::{Scenario, Task, UserClass};
use crate::value::{dotted, literal, Literal, Scope, Unsupported};
use crate::{Diagnostic, Lines, Note};

mod body;
mod events;
mod request;
mod shape;

use body::{is_lock, Lowered};

/// Locust's HTTP user classes, which blast's users are.
const HTTP_USERS: [&str; 2] = ["HttpUser", "FastHttpUser"];

type Methods<'a> = HashMap<String, &'a ast::StmtFunctionDef>;

/// One lowering of one file: the module's names, and what it could not lower.
pub(crate) struct Lowering<'a> {
    found: Found<'a>,
    /// Leave out tasks that do not translate instead of failing.
    lenient: bool,
    constants: HashMap<String, Literal>,
    functions: Methods<'a>,
    /// Module lists that start empty: shared between users, they become pools.
    pools: Vec<String>,
    /// Module locks guarding them (not needed: a pool hands each value to one user).
    locks: Vec<String>,
    /// Success criteria from a `quitting` listener.
    criteria: Vec<String>,
    /// A `LoadTestShape`'s stages.
    shape: Option<shape::Stages>,
}

/// What did not lower, and what was left out.
struct Found<'a> {
    lines: &'a Lines<'a>,
    diagnostics: Vec<Diagnostic>,
    notes: Vec<Note>,
}

impl<'a> Lowering<'a> {
    pub(crate) fn new(lines: &'a Lines<'a>, lenient: bool) -> Lowering<'a> {
        Lowering {
            lenient,
            found: Found {
                lines,
                diagnostics: Vec::new(),
                notes: Vec::new(),
            },
            constants: HashMap::new(),
            functions: HashMap::new(),
            pools: Vec::new(),
            locks: Vec::new(),
            criteria: Vec::new(),
            shape: None,
        }
    }

    /// What does not translate, and what was left out.
    pub(crate) fn finish(self) -> (Vec<Diagnostic>, Vec<Note>) {
        (self.found.diagnostics, self.found.notes)
    }
}

impl Found<'_> {
    fn unsupported(&mut self, node: &impl Ranged, message: impl Into<String>) {
        self.at(u32::from(node.range().start()) as usize, message.into());
    }

    fn at(&mut self, offset: usize, message: String) {
        let (line, column) = self.lines.at(offset);
        self.diagnostics.push(Diagnostic {
            line,
            column,
            message,
        });
    }

    fn report(&mut self, e: Unsupported) {
        self.at(e.offset, e.message);
    }

    fn line(&self, node: &impl Ranged) -> usize {
        self.lines.at(u32::from(node.range().start()) as usize).0
    }

    fn note(&mut self, node: &impl Ranged, message: &str) {
        if !self.notes.iter().any(|n| n.message == message) {
            let line = self.line(node);
            self.notes.push(Note {
                line,
                message: message.into(),
            });
        }
    }
}

impl<'a> Lowering<'a> {
    /// The whole file; `None` when it holds no user class to run.
    pub(crate) fn module(&mut self, suite: &'a [Stmt], name: String) -> Option<Scenario> {
        let mut classes: Vec<UserClass> = Vec::new();
        let mut methods: HashMap<String, Methods<'a>> = HashMap::new();
        for stmt in suite {
            match stmt {
                Stmt::Import(_) | Stmt::ImportFrom(_) | Stmt::Pass(_) => {}
                Stmt::Expr(e) if matches!(e.value.as_ref(), Expr::Constant(_)) => {}
                Stmt::Assign(a) => match (a.targets.as_slice(), literal(&a.value, &self.constants)) {
                    ([Expr::Name(n)], Some(Literal::List(items))) if items.is_empty() => {
                        self.pools.push(n.id.to_string());
                    }
                    ([Expr::Name(n)], Some(value)) => {
                        self.constants.insert(n.id.to_string(), value);
                    }
                    ([Expr::Name(n)], None) if is_lock(&a.value) => {
                        self.locks.push(n.id.to_string());
                        self.found.note(stmt, "locks are left out: a pool hands each value to exactly one user");
                    }
                    _ => self.found.unsupported(stmt, "only module constants (text, numbers, lists, dicts) translate at module level"),
                },
                Stmt::FunctionDef(f) => {
                    let listens = |event: &str| f.decorator_list.iter().any(|d| dotted(decorator_name(d)).is_some_and(|n| n.starts_with(event)));
                    if listens("events.quitting") {
                        self.quitting(f);
                    } else if listens("events.") {
                        self.found.note(stmt, &format!("event listener {} is not run", f.name));
                    } else {
                        self.functions.insert(f.name.to_string(), f);
                    }
                }
                Stmt::ClassDef(c) => {
                    if let Some((class, own)) = self.class(c, &classes, &methods) {
                        methods.insert(class.name.clone(), own);
                        classes.push(class);
                    }
                }
                Stmt::If(i) if dotted(test_left(&i.test)).as_deref() == Some("__name__") => {}
                Stmt::Expr(e) if dotted(call_func(&e.value)).is_some_and(|n| n.starts_with("events.")) => {
                    self.found.note(stmt, "event listeners are not run");
                }
                _ => self.found.unsupported(stmt, "this statement does not translate: a locustfile's module holds imports, constants, functions and classes"),
            }
        }
        let users: Vec<UserClass> = classes.into_iter().filter(|c| !c.abstract_class).collect();
        if users.is_empty() {
            if self.found.diagnostics.is_empty() {
                self.found.at(0, "no User class to run: define a class that extends HttpUser (or FastHttpUser), not abstract".into());
            }
            return None;
        }
        let hosts: Vec<&String> = users.iter().filter_map(|u| u.host.as_ref()).collect();
        if hosts.windows(2).any(|w| w[0] != w[1]) {
            self.found.at(0, "the user classes set different hosts: blast runs a scenario against one host (give it with --host)".into());
        }
        let host = hosts.first().map(|h| h.to_string());
        Some(Scenario {
            name,
            host,
            criteria: std::mem::take(&mut self.criteria),
            stages: self.shape.take().map(|s| (s.text, s.run_time)),
            users,
        })
    }

    /// A class: a user class with its own methods, or nothing (reported when unsupported).
    fn class(
        &mut self,
        c: &'a ast::StmtClassDef,
        known: &[UserClass],
        known_methods: &HashMap<String, Methods<'a>>,
    ) -> Option<(UserClass, Methods<'a>)> {
        let bases: Vec<String> = c.bases.iter().filter_map(dotted).collect();
        let base = bases
            .iter()
            .map(|b| b.rsplit('.').next().unwrap_or(b))
            .find_map(|b| {
                if HTTP_USERS.contains(&b) {
                    Some(None)
                } else {
                    known.iter().find(|k| k.name == b).map(Some)
                }
            });
        let Some(parent) = base else {
            let message = match bases.iter().map(|b| b.rsplit('.').next().unwrap_or(b)).next() {
                Some("HttpLocust" | "Locust") => "HttpLocust is Locust's API before 1.0: it became HttpUser (task_set became tasks, min_wait/max_wait became wait_time = between(...))".to_string(),
                Some("User") => format!("class {} extends User, which has no HTTP client: blast runs HttpUser and FastHttpUser classes", c.name),
                Some(kind @ ("TaskSet" | "SequentialTaskSet")) => format!("{kind} is not supported yet: write its tasks on the user class with @task"),
                Some("LoadTestShape") => match (shape::stages(c), &self.shape) {
                    (Ok(_), Some(_)) => "a second LoadTestShape: Locust runs one shape; keep one".to_string(),
                    (Ok(stages), None) => {
                        self.shape = Some(stages);
                        return None;
                    }
                    (Err(why), _) => format!("LoadTestShape {}: {why}; give the shape as --stages instead", c.name),
                },
                _ => return None,
            };
            self.found.unsupported(c, message);
            return None;
        };
        let mut class = parent.cloned().unwrap_or_default();
        let mut methods = parent
            .and_then(|p| known_methods.get(&p.name))
            .cloned()
            .unwrap_or_default();
        class.name = c.name.to_string();
        class.line = self.found.line(c);
        class.abstract_class = false;
        let mut tasks: Vec<(String, i64, Vec<String>, usize)> = Vec::new();
        for stmt in &c.body {
            match stmt {
                Stmt::Assign(a) => match a.targets.as_slice() {
                    [Expr::Name(n)] => self.attribute(&mut class, &mut tasks, n.id.as_str(), &a.value),
                    _ => self.found.unsupported(stmt, "only simple class attributes translate"),
                },
                Stmt::FunctionDef(f) => {
                    methods.insert(f.name.to_string(), f);
                    if let Some((weight, tags)) = self.task_decorators(f) {
                        tasks.retain(|t| t.0 != f.name.as_str());
                        tasks.push((f.name.to_string(), weight, tags, self.found.line(f)));
                    }
                }
                Stmt::Pass(_) => {}
                Stmt::Expr(e) if matches!(e.value.as_ref(), Expr::Constant(_)) => {}
                Stmt::ClassDef(inner) => self.found.unsupported(inner, "a nested class (a TaskSet) is not supported yet: write its tasks on the user class with @task"),
                _ => self.found.unsupported(stmt, "this statement does not translate in a user class"),
            }
        }
        let before = self.found.diagnostics.len();
        if let Some(on_stop) = methods.get("on_stop") {
            self.found.unsupported(
                *on_stop,
                "on_stop is not supported yet: blast ends users without a last request",
            );
        }
        if let Some(on_start) = methods.get("on_start").copied() {
            let lowered = self.method(on_start, &methods);
            if !lowered.take.is_empty() {
                self.found.unsupported(
                    on_start,
                    "on_start cannot take from a shared list: take in a task",
                );
            }
            class.on_start = lowered.requests;
            merge_headers(&mut class.headers, lowered.headers);
        }
        for (name, weight, tags, line) in tasks {
            let task_start = self.found.diagnostics.len();
            let Some(f) = methods
                .get(&name)
                .copied()
                .or_else(|| self.functions.get(&name).copied())
            else {
                self.found.at(
                    0,
                    format!(
                        "task {name} of class {} is not a method or a module function",
                        class.name
                    ),
                );
                continue;
            };
            let Lowered {
                requests,
                headers,
                take,
            } = self.method(f, &methods);
            if self.lenient && self.found.diagnostics.len() > task_start {
                let first = self.found.diagnostics.drain(task_start..).next();
                let why = first.map_or(String::new(), |d| {
                    format!(" (line {}: {})", d.line, d.message)
                });
                self.found.notes.push(Note {
                    line,
                    message: format!("task {name} of class {} is left out{why}", class.name),
                });
                continue;
            }
            merge_headers(&mut class.headers, headers);
            if requests.is_empty() {
                if self.found.diagnostics.len() == before {
                    self.found
                        .unsupported(f, format!("task {name} sends no request"));
                }
                continue;
            }
            class.tasks.retain(|t| t.name != name);
            class.tasks.push(Task {
                name,
                line,
                weight,
                tags,
                take,
                requests,
            });
        }
        if class.tasks.is_empty() && !class.abstract_class && self.found.diagnostics.len() == before
        {
            self.found.unsupported(
                c,
                format!(
                    "class {} has no task: give it @task methods or tasks = [...]",
                    c.name
                ),
            );
        }
        Some((class, methods))
    }

    /// A class attribute Locust reads.
    fn attribute(
        &mut self,
        class: &mut UserClass,
        tasks: &mut Vec<(String, i64, Vec<String>, usize)>,
        name: &str,
        value: &Expr,
    ) {
        let scope = Scope {
            user: "self",
            constants: &self.constants,
            captured: &[],
        };
        match name {
            "wait_time" => match wait_time(value, &scope) {
                Ok(w) => class.wait_time = Some(w),
                Err(e) => self.found.report(e),
            },
            "weight" => match scope.json(value) {
                Ok(toml::Value::Integer(w)) if w > 0 => class.weight = Some(w),
                _ => self
                    .found
                    .unsupported(value, "weight must be a whole number from 1"),
            },
            "host" => match scope.template(value) {
                Ok(h) => class.host = Some(h),
                Err(e) => self.found.report(e),
            },
            "abstract" => {
                class.abstract_class = matches!(
                    value,
                    Expr::Constant(ast::ExprConstant {
                        value: Constant::Bool(true),
                        ..
                    })
                )
            }
            "tasks" => {
                let entries: Vec<(&Expr, i64)> = match value {
                    Expr::List(l) => l.elts.iter().map(|e| (e, 1)).collect(),
                    Expr::Dict(d) => {
                        let mut entries = Vec::new();
                        for (k, v) in d.keys.iter().zip(&d.values) {
                            match (k, scope.json(v)) {
                                (Some(k), Ok(toml::Value::Integer(w))) if w > 0 => {
                                    entries.push((k, w))
                                }
                                _ => self.found.unsupported(
                                    v,
                                    "a tasks dict maps each task to a whole-number weight",
                                ),
                            }
                        }
                        entries
                    }
                    _ => {
                        self.found
                            .unsupported(value, "tasks must be a list or a dict of task functions");
                        return;
                    }
                };
                for (e, weight) in entries {
                    match e {
                        Expr::Name(n) => {
                            let line = self.found.line(e);
                            tasks.push((n.id.to_string(), weight, Vec::new(), line));
                        }
                        _ => self.found.unsupported(e, "a task in tasks = ... must be a function's name (a TaskSet is not supported yet)"),
                    }
                }
            }
            "fixed_count" => self.found.unsupported(
                value,
                "fixed_count is not supported yet: share users with weight",
            ),
            _ => self.found.unsupported(
                value,
                format!("the class attribute {name} does not translate"),
            ),
        }
    }

    /// `@task`, `@task(n)` and `@tag(...)`: the weight and tags, if the method is a task.
    fn task_decorators(&mut self, f: &ast::StmtFunctionDef) -> Option<(i64, Vec<String>)> {
        let mut weight = None;
        let mut tags = Vec::new();
        let scope = Scope {
            user: "self",
            constants: &self.constants,
            captured: &[],
        };
        for d in &f.decorator_list {
            let name = dotted(decorator_name(d)).unwrap_or_default();
            let args: &[Expr] = match d {
                Expr::Call(c) => &c.args,
                _ => &[],
            };
            match (name.rsplit('.').next().unwrap_or(""), args) {
                ("task", []) => weight = Some(1),
                ("task", [w]) => match scope.json(w) {
                    Ok(toml::Value::Integer(w)) if w > 0 => weight = Some(w),
                    _ => self
                        .found
                        .unsupported(w, "a task's weight must be a whole number from 1"),
                },
                ("tag", names) => {
                    for n in names {
                        match scope.template(n) {
                            Ok(t) => tags.push(t),
                            Err(e) => self.found.report(e),
                        }
                    }
                }
                _ => self
                    .found
                    .unsupported(d, format!("the decorator {name} does not translate")),
            }
        }
        weight.map(|w| (w, tags))
    }
}

/// Adds `new` headers over `into`, a later value replacing an earlier one of the same name.
fn merge_headers(into: &mut Vec<(String, String)>, new: Vec<(String, String)>) {
    for (name, value) in new {
        into.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        into.push((name, value));
    }
}

fn decorator_name(d: &Expr) -> &Expr {
    match d {
        Expr::Call(c) => &c.func,
        other => other,
    }
}

fn call_func(e: &Expr) -> &Expr {
    match e {
        Expr::Call(c) => &c.func,
        other => other,
    }
}

fn test_left(e: &Expr) -> &Expr {
    match e {
        Expr::Compare(c) => &c.left,
        other => other,
    }
}

/// `wait_time = between(1, 2)` and Locust's other wait functions, as blast writes them.
fn wait_time(expr: &Expr, scope: &Scope<'_>) -> crate::value::Result<String> {
    let bad = || {
        Err(Unsupported { offset: u32::from(expr.range().start()) as usize, message: "wait_time must be between(MIN, MAX), constant(S), constant_pacing(S) or constant_throughput(N) with numbers: a custom wait function does not translate".into() })
    };
    let Expr::Call(call) = expr else {
        return bad();
    };
    let name = dotted(&call.func).unwrap_or_default();
    let name = name.rsplit('.').next().unwrap_or_default();
    let args: Vec<String> = call
        .args
        .iter()
        .map(|a| match scope.json(a) {
            Ok(toml::Value::Integer(i)) => Ok(i.to_string()),
            Ok(toml::Value::Float(f)) => Ok(f.to_string()),
            _ => bad(),
        })
        .collect::<Result<_, _>>()?;
    match (name, args.len()) {
        ("between", 2) | ("constant" | "constant_pacing" | "constant_throughput", 1) => {
            Ok(format!("{name}({})", args.join(", ")))
        }
        _ => bad(),
    }
}
