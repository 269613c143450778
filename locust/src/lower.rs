//! The locustfile's syntax tree, lowered construct by construct into [`model`]: module
//! constants, user classes and their attributes, tasks, and the statements inside them. What
//! does not lower is recorded with its place, and the walk goes on, so every place is reported.

use rustpython_parser::ast::{self, Constant, Expr, Ranged, Stmt};
use std::collections::HashMap;

use crate::model::{Kind, Scenario, Task, UserClass};
use crate::value::{dotted, literal, Literal, Scope, Unsupported};
use crate::{Diagnostic, Lines, Note};

mod body;
mod events;
mod imports;
mod request;
mod shape;

use body::{is_lock, Lowered};

type Methods<'a> = HashMap<String, &'a ast::StmtFunctionDef>;

/// A task as a class body names it: (function or task set, weight, tags, line).
type TaskEntry = (String, i64, Vec<String>, usize);

/// A name as a class body means it: a nested class's qualified name, else the name itself.
fn resolve(name: &str, nested: &[(String, String)]) -> String {
    nested
        .iter()
        .find(|(local, _)| local == name)
        .map_or_else(|| name.to_string(), |(_, q)| q.clone())
}

/// The task sets `tasks` enter, directly or through other sets, each once.
fn reached<'s>(tasks: &[Task], sets: &'s [UserClass]) -> impl Iterator<Item = &'s UserClass> {
    let mut found: Vec<&UserClass> = Vec::new();
    let mut queue: Vec<&str> = tasks.iter().filter_map(|t| t.taskset.as_deref()).collect();
    while let Some(name) = queue.pop() {
        if let Some(set) = sets.iter().find(|s| s.name == name) {
            if !found.iter().any(|f| f.name == name) {
                found.push(set);
                queue.extend(set.tasks.iter().filter_map(|t| t.taskset.as_deref()));
            }
        }
    }
    found.into_iter()
}

/// One lowering of one file: the module's names, and what it could not lower.
pub(crate) struct Lowering<'a> {
    found: Found<'a>,
    /// The locustfile's folder, where its local modules are.
    dir: Option<std::path::PathBuf>,
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
    /// User and task set classes lowered so far (a nested one under `Outer.Inner`), with
    /// their methods, for subclasses and for tasks that enter a set.
    classes: Vec<UserClass>,
    methods: HashMap<String, Methods<'a>>,
}

/// What did not lower, and what was left out.
struct Found<'a> {
    lines: &'a Lines<'a>,
    diagnostics: Vec<Diagnostic>,
    notes: Vec<Note>,
}

impl<'a> Lowering<'a> {
    pub(crate) fn new(
        lines: &'a Lines<'a>,
        lenient: bool,
        dir: Option<std::path::PathBuf>,
    ) -> Lowering<'a> {
        Lowering {
            lenient,
            dir,
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
            classes: Vec::new(),
            methods: HashMap::new(),
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
        for stmt in suite {
            match stmt {
                Stmt::Import(_) | Stmt::ImportFrom(_) => self.import(stmt),
                Stmt::Pass(_) => {}
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
                    self.class(c, None);
                }
                Stmt::If(i) if dotted(test_left(&i.test)).as_deref() == Some("__name__") => {}
                Stmt::Expr(e) if dotted(call_func(&e.value)).is_some_and(|n| n.starts_with("events.")) => {
                    let what = dotted(call_func(&e.value)).unwrap_or_default();
                    self.found.note(stmt, &format!("{what} listeners are not run"));
                }
                _ => self.found.unsupported(stmt, "this statement does not translate: a locustfile's module holds imports, constants, functions and classes"),
            }
        }
        let (sets, classes): (Vec<UserClass>, Vec<UserClass>) = std::mem::take(&mut self.classes)
            .into_iter()
            .filter(|c| !c.abstract_class)
            .partition(|c| c.kind != Kind::User);
        let mut users = classes;
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
        // The client is the user's: headers a set gives it hold for the user's every request.
        for user in &mut users {
            for set in reached(&user.tasks, &sets) {
                merge_headers(&mut user.headers, set.headers.clone());
            }
        }
        let mut tasksets: Vec<UserClass> = sets
            .iter()
            .filter(|s| {
                users
                    .iter()
                    .any(|u| reached(&u.tasks, &sets).any(|r| r.name == s.name))
            })
            .cloned()
            .collect();
        for set in &mut tasksets {
            set.headers.clear();
        }
        Some(Scenario {
            name,
            host,
            criteria: std::mem::take(&mut self.criteria),
            stages: self.shape.take().map(|s| (s.text, s.run_time)),
            users,
            tasksets,
        })
    }

    /// What a class's bases make it: a user class, a task set, or neither (reported when it
    /// matters). A known class's subclass starts from a copy of it.
    fn kind_of(&mut self, c: &'a ast::StmtClassDef) -> Option<(Kind, Option<String>)> {
        let bases: Vec<String> = c.bases.iter().filter_map(dotted).collect();
        for base in &bases {
            let last = base.rsplit('.').next().unwrap_or(base);
            match last {
                "HttpUser" | "FastHttpUser" => return Some((Kind::User, None)),
                "TaskSet" => return Some((Kind::TaskSet { sequential: false }, None)),
                "SequentialTaskSet" => return Some((Kind::TaskSet { sequential: true }, None)),
                _ => {}
            }
            if let Some(known) = self.classes.iter().find(|k| k.name == *base) {
                return Some((known.kind, Some(base.clone())));
            }
        }
        let message = match bases.iter().map(|b| b.rsplit('.').next().unwrap_or(b)).next() {
            Some("HttpLocust" | "Locust") => "HttpLocust is Locust's API before 1.0: it became HttpUser (task_set became tasks, min_wait/max_wait became wait_time = between(...))".to_string(),
            Some("User") => format!("class {} extends User, which has no HTTP client: blast runs HttpUser and FastHttpUser classes", c.name),
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
        None
    }

    /// A user class or task set, lowered and added to the known classes under its name
    /// (`Outer.Inner` when nested in `outer`); the name and its `@task` weight (a task set
    /// nested as a task), or `None` when it is neither.
    fn class(
        &mut self,
        c: &'a ast::StmtClassDef,
        outer: Option<&str>,
    ) -> Option<(String, Option<i64>)> {
        let (kind, parent) = self.kind_of(c)?;
        // Nested classes are known inside this class by their own name.
        let mut nested: Vec<(String, String)> = Vec::new();
        let (weight, tags) = self.decorators(&c.decorator_list);
        let qualified = match outer {
            Some(o) => format!("{o}.{}", c.name),
            None => c.name.to_string(),
        };
        let parent = parent.and_then(|p| self.classes.iter().find(|k| k.name == p).cloned());
        let mut methods = parent
            .as_ref()
            .and_then(|p| self.methods.get(&p.name))
            .cloned()
            .unwrap_or_default();
        let mut class = parent.unwrap_or_default();
        class.name = qualified.clone();
        class.line = self.found.line(c);
        class.kind = kind;
        class.abstract_class = false;
        let mut tasks: Vec<TaskEntry> = class
            .tasks
            .iter()
            .map(|t| (t.name.clone(), t.weight, t.tags.clone(), t.line))
            .collect();
        for stmt in &c.body {
            match stmt {
                Stmt::Assign(a) => match a.targets.as_slice() {
                    [Expr::Name(n)] => {
                        self.attribute(&mut class, &mut tasks, n.id.as_str(), &a.value)
                    }
                    _ => self
                        .found
                        .unsupported(stmt, "only simple class attributes translate"),
                },
                Stmt::FunctionDef(f) => {
                    methods.insert(f.name.to_string(), f);
                    if let (Some(weight), tags) = self.decorators(&f.decorator_list) {
                        tasks.retain(|t| t.0 != f.name.as_str());
                        tasks.push((f.name.to_string(), weight, tags, self.found.line(f)));
                    }
                }
                Stmt::Pass(_) => {}
                Stmt::Expr(e) if matches!(e.value.as_ref(), Expr::Constant(_)) => {}
                Stmt::ClassDef(inner) => {
                    if let Some((name, weight)) = self.class(inner, Some(&qualified)) {
                        nested.push((inner.name.to_string(), name));
                        if let Some(weight) = weight {
                            let line = self.found.line(inner);
                            tasks.push((inner.name.to_string(), weight, Vec::new(), line));
                        }
                    } else {
                        self.found.unsupported(
                            inner,
                            "a nested class translates when it is a TaskSet or SequentialTaskSet",
                        );
                    }
                }
                _ => self.found.unsupported(
                    stmt,
                    "this statement does not translate in a user class or task set",
                ),
            }
        }
        self.class_tasks(&mut class, tasks, &methods, &nested, c);
        // `@tag` on a task set tags every task in it, as Locust's decorator does.
        if kind != Kind::User {
            self.tag_set(&mut class, &tags);
        }
        self.methods.insert(qualified.clone(), methods);
        self.classes.retain(|k| k.name != qualified);
        self.classes.push(class);
        Some((qualified, weight))
    }

    /// Lowers the class's `on_start`, `on_stop` and tasks.
    fn class_tasks(
        &mut self,
        class: &mut UserClass,
        tasks: Vec<TaskEntry>,
        methods: &Methods<'a>,
        nested: &[(String, String)],
        c: &ast::StmtClassDef,
    ) {
        let before = self.found.diagnostics.len();
        let is_set = class.kind != Kind::User;
        if let Some(on_stop) = methods.get("on_stop").copied() {
            if is_set {
                let lowered = self.method(on_stop, methods);
                class.on_stop = lowered.steps;
                merge_headers(&mut class.headers, lowered.headers);
            } else {
                self.found.unsupported(
                    on_stop,
                    "a user's on_stop is not supported: blast ends users without a last request (a TaskSet's on_stop is)",
                );
            }
        }
        if let Some(on_start) = methods.get("on_start").copied() {
            let lowered = self.method(on_start, methods);
            if !lowered.take.is_empty() {
                self.found.unsupported(
                    on_start,
                    "on_start cannot take from a shared list: take in a task",
                );
            }
            if lowered.interrupt.is_some() {
                self.found
                    .unsupported(on_start, "on_start cannot interrupt: interrupt from a task");
            }
            class.on_start = lowered.steps;
            merge_headers(&mut class.headers, lowered.headers);
        }
        class.tasks.clear();
        for (name, weight, tags, line) in tasks {
            // A task set among the tasks: the task enters it.
            let set = resolve(&name, nested);
            if self
                .classes
                .iter()
                .any(|k| k.name == set && k.kind != Kind::User)
            {
                class.tasks.push(Task {
                    name,
                    line,
                    weight,
                    tags,
                    taskset: Some(set),
                    ..Task::default()
                });
                continue;
            }
            let task_start = self.found.diagnostics.len();
            let Some(f) = methods
                .get(&name)
                .copied()
                .or_else(|| self.functions.get(&name).copied())
            else {
                self.found.at(
                    0,
                    format!(
                        "task {name} of class {} is not a method, a module function or a TaskSet",
                        class.name
                    ),
                );
                continue;
            };
            let Lowered {
                steps,
                headers,
                take,
                interrupt,
            } = self.method(f, methods);
            if interrupt.is_some() && !is_set {
                self.found.unsupported(
                    f,
                    "self.interrupt() leaves a TaskSet: a user class's task has none to leave",
                );
            }
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
            if steps.requests.is_empty() && steps.pause_first.is_none() && interrupt.is_none() {
                if self.found.diagnostics.len() == before {
                    self.found
                        .unsupported(f, format!("task {name} sends no request"));
                }
                continue;
            }
            class.tasks.push(Task {
                name,
                line,
                weight,
                tags,
                take,
                steps,
                taskset: None,
                interrupt,
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
    }

    /// Adds `tags` to every task of `set`, and of the sets its tasks enter.
    fn tag_set(&mut self, set: &mut UserClass, tags: &[String]) {
        for task in &mut set.tasks {
            match &task.taskset {
                Some(inner) => {
                    if let Some(i) = self.classes.iter().position(|k| &k.name == inner) {
                        let mut inner = self.classes.remove(i);
                        self.tag_set(&mut inner, tags);
                        self.classes.insert(i, inner);
                    }
                }
                None => task.tags.extend(tags.iter().cloned()),
            }
        }
    }

    /// A class attribute Locust reads.
    fn attribute(
        &mut self,
        class: &mut UserClass,
        tasks: &mut Vec<TaskEntry>,
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
                        _ => self.found.unsupported(e, "a task in tasks = ... must be the name of a function or a TaskSet class"),
                    }
                }
            }
            "fixed_count" => match scope.json(value) {
                Ok(toml::Value::Integer(n)) if n > 0 => class.fixed_count = Some(n),
                _ => self
                    .found
                    .unsupported(value, "fixed_count must be a whole number from 1"),
            },
            _ => self.found.unsupported(
                value,
                format!("the class attribute {name} does not translate"),
            ),
        }
    }

    /// `@task`, `@task(n)` and `@tag(...)`: the weight (if it is a task) and the tags.
    fn decorators(&mut self, decorators: &[Expr]) -> (Option<i64>, Vec<String>) {
        let mut weight = None;
        let mut tags = Vec::new();
        let scope = Scope {
            user: "self",
            constants: &self.constants,
            captured: &[],
        };
        for d in decorators {
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
        (weight, tags)
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
