//! The locustfile's syntax tree, lowered construct by construct into [`model`]: module
//! constants, user classes and their attributes, tasks, and the statements inside them. What
//! does not lower is recorded with its place, and the walk goes on, so every place is reported.

use rustpython_parser::ast::{self, Constant, Expr, Ranged, Stmt};
use std::collections::HashMap;

use crate::model::{Request, Scenario, Task, UserClass};
use crate::value::{dotted, literal, Literal, Scope, Unsupported};
use crate::{Diagnostic, Lines, Note};

/// Locust's HTTP user classes, which blast's users are.
const HTTP_USERS: [&str; 2] = ["HttpUser", "FastHttpUser"];
/// The `self.client` methods named after an HTTP method.
const VERBS: [&str; 7] = ["get", "post", "put", "patch", "delete", "head", "options"];
/// How deep helper methods may call each other.
const MAX_INLINE: usize = 8;

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
}

/// What a task's or `on_start`'s body lowered to.
struct Lowered {
    requests: Vec<Request>,
    headers: Vec<(String, String)>,
    take: Vec<(String, String)>,
}

/// What did not lower, and what was left out.
struct Found<'a> {
    lines: &'a Lines<'a>,
    diagnostics: Vec<Diagnostic>,
    notes: Vec<Note>,
}

/// Where statements are being lowered: a task's or `on_start`'s body.
struct Body<'a, 'b> {
    /// The user object's name (`self`, or a task function's parameter).
    user: String,
    methods: &'b Methods<'a>,
    /// Locals holding captured values.
    captured: Vec<String>,
    /// Locals holding a response: the index of its request.
    responses: HashMap<String, usize>,
    requests: Vec<Request>,
    /// Headers set on `self.client.headers`: they become the class's.
    headers: Vec<(String, String)>,
    /// Values taken from pools (`x = POOL.pop()`).
    take: Vec<(String, String)>,
    depth: usize,
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
                    if f.decorator_list.iter().any(|d| dotted(decorator_name(d)).is_some_and(|n| n.starts_with("events."))) {
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
        Some(Scenario { name, host, users })
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
                Some("LoadTestShape") => "LoadTestShape is not supported yet: give the shape as --stages or [load] stages".to_string(),
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
            let Lowered {
                requests,
                headers,
                take,
            } = match methods
                .get(&name)
                .copied()
                .or_else(|| self.functions.get(&name).copied())
            {
                Some(f) => self.method(f, &methods),
                None => {
                    self.found.at(
                        0,
                        format!(
                            "task {name} of class {} is not a method or a module function",
                            class.name
                        ),
                    );
                    continue;
                }
            };
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
                    let offset = f_offset(
                        methods
                            .get(&name)
                            .copied()
                            .or_else(|| self.functions.get(&name).copied()),
                    );
                    self.found
                        .at(offset, format!("task {name} sends no request"));
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

    /// A task, `on_start` or helper: its requests and the client headers it sets.
    fn method(&mut self, f: &ast::StmtFunctionDef, methods: &Methods<'a>) -> Lowered {
        let user = f
            .args
            .args
            .first()
            .map_or("self".to_string(), |a| a.def.arg.to_string());
        let mut body = Body {
            user,
            methods,
            captured: Vec::new(),
            responses: HashMap::new(),
            requests: Vec::new(),
            headers: Vec::new(),
            take: Vec::new(),
            depth: 0,
        };
        self.statements(&f.body, &mut body);
        Lowered {
            requests: body.requests,
            headers: body.headers,
            take: body.take,
        }
    }

    fn statements(&mut self, stmts: &[Stmt], body: &mut Body<'a, '_>) {
        for stmt in stmts {
            self.statement(stmt, body);
        }
    }

    fn statement(&mut self, stmt: &Stmt, body: &mut Body<'a, '_>) {
        match stmt {
            Stmt::Pass(_) => {}
            Stmt::Expr(e) => match e.value.as_ref() {
                Expr::Constant(_) => {}
                Expr::Call(call) => self.call(call, None, body),
                other => self.found.unsupported(other, "this expression does nothing blast can run"),
            },
            Stmt::Assign(a) => match a.targets.as_slice() {
                [target] => self.assign(target, &a.value, body),
                _ => self.found.unsupported(stmt, "multiple assignment does not translate"),
            },
            Stmt::With(w) if w.items.iter().all(|i| dotted(&i.context_expr).is_some_and(|n| self.locks.contains(&n))) => {
                self.statements(&w.body, body);
            }
            Stmt::Try(t) => {
                self.statements(&t.body, body);
                for handler in &t.handlers {
                    let ast::ExceptHandler::ExceptHandler(h) = handler;
                    if !h.body.iter().all(|s| matches!(s, Stmt::Return(_) | Stmt::Pass(_))) {
                        self.found.unsupported(handler, "an except clause translates when it only returns: an empty pool or a missing value skips the task");
                    }
                }
                if !t.orelse.is_empty() || !t.finalbody.is_empty() {
                    self.found.unsupported(stmt, "try with else or finally does not translate");
                }
            }
            Stmt::If(i) if self.is_empty_pool_guard(i) => {}
            Stmt::With(w) => match w.items.as_slice() {
                [item] => {
                    let Expr::Call(call) = &item.context_expr else {
                        self.found.unsupported(&item.context_expr, "only `with self.client.<method>(...) as response:` translates");
                        return;
                    };
                    self.call(call, item.optional_vars.as_deref(), body);
                    for inner in &w.body {
                        match inner {
                            Stmt::Expr(e) if is_response_call(&e.value, body, "success") => {}
                            Stmt::If(i) => self.failure_check(i, body),
                            _ => self.statement(inner, body),
                        }
                    }
                }
                _ => self.found.unsupported(stmt, "only one context manager translates"),
            },
            Stmt::Assert(a) => {
                if let Err(e) = check(&a.test, true, body, &self.constants) {
                    self.found.report(e);
                }
            }
            Stmt::For(_) | Stmt::While(_) => self.found.unsupported(stmt, "loops inside a task are not supported yet: write each request out, or give the task a higher weight"),
            Stmt::If(_) => self.found.unsupported(stmt, "conditions inside a task are not supported yet"),
            _ => self.found.unsupported(stmt, "this statement does not translate inside a task"),
        }
    }

    /// `if CONDITION: response.failure(...)`: the request must meet the opposite.
    fn failure_check(&mut self, i: &ast::StmtIf, body: &mut Body<'a, '_>) {
        let fails = matches!(i.body.as_slice(), [Stmt::Expr(e)] if is_response_call(&e.value, body, "failure"));
        if !fails || !i.orelse.is_empty() {
            self.found.unsupported(i, "inside catch_response, blast translates `if CONDITION: response.failure(...)` with no else, and assert: check the status, `TEXT in response.text` or response.json()[...] against a literal");
            return;
        }
        if let Err(e) = check(&i.test, false, body, &self.constants) {
            self.found.report(e);
        }
        self.found.note(i, "failure messages of catch_response are not kept: the failures table names the failed check");
    }

    /// A helper's body in place of its call, its parameters bound to the call's arguments (or
    /// their defaults) for the time of the body.
    fn inline(
        &mut self,
        f: &'a ast::StmtFunctionDef,
        args: &[Expr],
        call: &ast::ExprCall,
        body: &mut Body<'a, '_>,
    ) {
        if body.depth >= MAX_INLINE {
            self.found
                .unsupported(call, "helpers call each other too deep to inline");
            return;
        }
        // The first parameter is the user (self); the rest take the arguments.
        let params: Vec<&ast::ArgWithDefault> = f.args.args.iter().skip(1).collect();
        let mut bound = Vec::new();
        for (i, p) in params.iter().enumerate() {
            let name = p.def.arg.as_str();
            let given = args.get(i).or_else(|| {
                call.keywords
                    .iter()
                    .find(|k| k.arg.as_deref() == Some(name))
                    .map(|k| &k.value)
            });
            let Some(value) = given.or(p.default.as_deref()) else {
                self.found
                    .unsupported(call, format!("{} needs its argument {name}", f.name));
                return;
            };
            let scope = Scope {
                user: &body.user,
                constants: &self.constants,
                captured: &body.captured,
            };
            match argument(&scope, value) {
                Ok(v) => bound.push((name.to_string(), v)),
                Err(e) => {
                    self.found.report(e);
                    return;
                }
            }
        }
        if args.len() > params.len()
            || !f.args.kwonlyargs.is_empty()
            || f.args.vararg.is_some()
            || f.args.kwarg.is_some()
        {
            self.found.unsupported(
                call,
                format!(
                    "{} takes plain parameters only, as many as it is given",
                    f.name
                ),
            );
            return;
        }
        // Parameters shadow module constants of the same name while the body lowers.
        let shadowed: Vec<(String, Option<Literal>)> = bound
            .into_iter()
            .map(|(name, value)| {
                let old = self.constants.insert(name.clone(), value);
                (name, old)
            })
            .collect();
        // Inside, the user is the helper's own first parameter (`user` in `def login(user)`).
        let caller = body.user.clone();
        if let Some(first) = f.args.args.first() {
            body.user = first.def.arg.to_string();
        }
        body.depth += 1;
        self.statements(&f.body, body);
        body.depth -= 1;
        body.user = caller;
        for (name, old) in shadowed {
            match old {
                Some(old) => self.constants.insert(name, old),
                None => self.constants.remove(&name),
            };
        }
    }

    /// `if not POOL: return` (or `len(POOL) == 0`): blast skips a task whose pool is empty.
    fn is_empty_pool_guard(&self, i: &ast::StmtIf) -> bool {
        let pool = match i.test.as_ref() {
            Expr::UnaryOp(u) if matches!(u.op, ast::UnaryOp::Not) => dotted(&u.operand),
            Expr::Compare(c) => match (c.left.as_ref(), c.ops.as_slice(), c.comparators.as_slice())
            {
                (
                    Expr::Call(len),
                    [ast::CmpOp::Eq],
                    [Expr::Constant(ast::ExprConstant {
                        value: Constant::Int(zero),
                        ..
                    })],
                ) if dotted(&len.func).as_deref() == Some("len") && zero.to_string() == "0" => {
                    len.args.first().and_then(dotted)
                }
                _ => None,
            },
            _ => None,
        };
        pool.is_some_and(|p| self.pools.contains(&p))
            && i.orelse.is_empty()
            && i.body
                .iter()
                .all(|s| matches!(s, Stmt::Return(_) | Stmt::Pass(_)))
    }

    /// `x = ...` inside a task: a request kept as a response, a capture, a value taken from a
    /// pool, or a client header.
    fn assign(&mut self, target: &Expr, value: &Expr, body: &mut Body<'a, '_>) {
        if let (Expr::Name(var), Expr::Call(pop)) = (target, value) {
            let name = dotted(&pop.func).unwrap_or_default();
            if let Some((pool, "pop")) = name
                .split_once('.')
                .filter(|(p, _)| self.pools.iter().any(|x| x == p))
            {
                body.take.push((var.id.to_string(), pool.to_string()));
                body.captured.push(var.id.to_string());
                return;
            }
        }
        if let Expr::Call(call) = value {
            if client_method(call, &body.user).is_some() {
                self.call(call, Some(target), body);
                return;
            }
        }
        if let Some((response, path)) = json_path(value) {
            let Some(&index) = body.responses.get(&response) else {
                self.found
                    .unsupported(value, format!("{response} is not a response of this task"));
                return;
            };
            let scope = Scope {
                user: &body.user,
                constants: &self.constants,
                captured: &[],
            };
            let var = match target {
                Expr::Name(n) => {
                    body.captured.push(n.id.to_string());
                    Some(n.id.to_string())
                }
                other => scope.variable(other),
            };
            match var {
                Some(var) => body.requests[index].capture.push((var, path)),
                None => self
                    .found
                    .unsupported(target, "a captured value must go into self.NAME or a local"),
            }
            return;
        }
        // self.client.headers["Name"] = value, or self.client.headers = {...}
        let scope = Scope {
            user: &body.user,
            constants: &self.constants,
            captured: &body.captured,
        };
        match target {
            Expr::Subscript(s) if is_client_headers(&s.value, &body.user) => {
                match (scope.template(&s.slice), scope.template(value)) {
                    (Ok(name), Ok(v)) => merge_headers(&mut body.headers, vec![(name, v)]),
                    (Err(e), _) | (_, Err(e)) => self.found.report(e),
                }
            }
            other if is_client_headers(other, &body.user) => match headers(&scope, value) {
                Ok(h) => merge_headers(&mut body.headers, h),
                Err(e) => self.found.report(e),
            },
            _ => self.found.unsupported(target, "this assignment does not translate: blast keeps values captured from responses (x = response.json()[...])"),
        }
    }

    /// A call statement: a request, a client header update, a helper to inline, or a print.
    fn call(&mut self, call: &ast::ExprCall, response: Option<&Expr>, body: &mut Body<'a, '_>) {
        if let Some(method) = client_method(call, &body.user) {
            let line = self.found.line(call);
            let scope = Scope {
                user: &body.user,
                constants: &self.constants,
                captured: &body.captured,
            };
            match request(&scope, call, method, line) {
                Ok(r) => {
                    body.requests.push(r);
                    match response {
                        Some(Expr::Name(n)) => {
                            body.responses
                                .insert(n.id.to_string(), body.requests.len() - 1);
                        }
                        Some(other) => self
                            .found
                            .unsupported(other, "keep a response in a local name"),
                        None => {}
                    }
                }
                Err(e) => self.found.report(e),
            }
            return;
        }
        let name = dotted(&call.func).unwrap_or_default();
        let user = body.user.clone();
        if let Some((pool, "extend" | "append")) = name
            .split_once('.')
            .filter(|(p, _)| self.pools.iter().any(|x| x == p))
        {
            match (call.args.as_slice(), name.ends_with("extend")) {
                ([arg], extend) => match offered(arg, extend) {
                    Some((response, path)) => match body.responses.get(&response) {
                        Some(&index) => body.requests[index].to_pool.push((pool.to_string(), path)),
                        None => self.found.unsupported(arg, format!("{response} is not a response of this task")),
                    },
                    None => self.found.unsupported(arg, format!("{pool} takes values from a response: {pool}.extend(x[\"id\"] for x in r.json()[\"results\"]) or {pool}.append(r.json()[\"id\"])")),
                },
                _ => self.found.unsupported(call, format!("{name} takes one argument")),
            }
        } else if name == format!("{user}.client.headers.update") {
            let scope = Scope {
                user: &body.user,
                constants: &self.constants,
                captured: &body.captured,
            };
            match call.args.as_slice() {
                [dict] => match headers(&scope, dict) {
                    Ok(h) => merge_headers(&mut body.headers, h),
                    Err(e) => self.found.report(e),
                },
                _ => self
                    .found
                    .unsupported(call, "headers.update takes one dict"),
            }
        } else if name == "print" || name.starts_with("logging.") || name.starts_with("logger.") {
            self.found
                .note(call, "print and logging calls are left out");
        } else if let Some(helper) = name.strip_prefix(&format!("{user}.")) {
            match body.methods.get(helper).copied() {
                Some(f) => self.inline(f, &call.args, call, body),
                None => self
                    .found
                    .unsupported(call, format!("{name} is not a method of this class")),
            }
        } else if let (Some(f), Some(Expr::Name(first))) =
            (self.functions.get(&name).copied(), call.args.first())
        {
            // A module function given the user: `login(self, "name", "pw")`.
            if first.id.as_str() == user {
                self.inline(f, &call.args[1..], call, body);
            } else {
                self.found.unsupported(
                    call,
                    format!("{name} is called without the user as its first argument"),
                );
            }
        } else {
            self.found.unsupported(
                call,
                format!(
                    "the call {} does not translate inside a task",
                    if name.is_empty() { "here" } else { &name }
                ),
            );
        }
    }
}

/// A condition on a response, as blast's `success` and `expect`: it must hold when `holds`
/// (an assert), or must not (a `failure()` branch).
fn check(
    test: &Expr,
    holds: bool,
    body: &mut Body<'_, '_>,
    constants: &HashMap<String, Literal>,
) -> crate::value::Result<()> {
    let bad = || {
        Err(Unsupported { offset: u32::from(test.range().start()) as usize, message: "this check does not translate: blast checks the status (==, !=, in, not in), `TEXT in response.text`, and response.json()[...] against a literal".into() })
    };
    let Expr::Compare(c) = test else {
        return bad();
    };
    let ([op], [right]) = (c.ops.as_slice(), c.comparators.as_slice()) else {
        return bad();
    };
    use ast::CmpOp::{Eq, In, NotEq, NotIn};
    // What the request needs: `==`/`in` when the check must hold, their opposites when the
    // condition marks a failure.
    let (equal, member) = match (op, holds) {
        (Eq, true) | (NotEq, false) => (true, false),
        (In, true) | (NotIn, false) => (false, true),
        _ => return bad(),
    };
    let scope = Scope {
        user: &body.user,
        constants,
        captured: &[],
    };
    let response = |e: &Expr, attr: &str| -> Option<usize> {
        match e {
            Expr::Attribute(a) if a.attr.as_str() == attr => match a.value.as_ref() {
                Expr::Name(n) => body.responses.get(n.id.as_str()).copied(),
                _ => None,
            },
            _ => None,
        }
    };
    if let Some(index) = response(&c.left, "status_code") {
        let statuses: Vec<i64> = match (equal, member, scope.json(right)) {
            (true, _, Ok(toml::Value::Integer(s))) => vec![s],
            (_, true, Ok(toml::Value::Array(items))) => {
                items.iter().filter_map(toml::Value::as_integer).collect()
            }
            _ => return bad(),
        };
        body.requests[index].success = statuses;
        return Ok(());
    }
    if let (true, Some(index)) = (member, response(right, "text")) {
        body.requests[index].contains = Some(scope.template(&c.left)?);
        return Ok(());
    }
    if let (true, Some((name, path))) = (equal, json_path(&c.left)) {
        if let Some(&index) = body.responses.get(&name) {
            let value = scope.json(right)?;
            body.requests[index].expect_json.push((path, value));
            return Ok(());
        }
    }
    bad()
}

/// `threading.Lock()` and its kin.
fn is_lock(expr: &Expr) -> bool {
    let Expr::Call(c) = expr else { return false };
    dotted(&c.func).is_some_and(|n| {
        let last = n.rsplit('.').next().unwrap_or_default();
        matches!(last, "Lock" | "RLock" | "Semaphore" | "BoundedSemaphore")
    })
}

/// What `POOL.extend(x["id"] for x in r.json()["results"])` (or `POOL.append(r.json()["id"])`)
/// offers: the response and the JSON path of the values.
fn offered(arg: &Expr, extend: bool) -> Option<(String, String)> {
    if !extend {
        return json_path(arg);
    }
    let (elt, generators) = match arg {
        Expr::GeneratorExp(g) => (g.elt.as_ref(), &g.generators),
        Expr::ListComp(l) => (l.elt.as_ref(), &l.generators),
        // `POOL.extend(r.json()["ids"])`: every element.
        other => {
            let (response, path) = json_path(other)?;
            return Some((response, format!("{path}[*]")));
        }
    };
    let [generator] = generators.as_slice() else {
        return None;
    };
    let (Expr::Name(item), false) = (&generator.target, !generator.ifs.is_empty()) else {
        return None;
    };
    let (response, list) = json_path(&generator.iter)?;
    // The element itself, or a key of it: `x`, `x["id"]`.
    let mut keys = Vec::new();
    let mut e = elt;
    while let Expr::Subscript(s) = e {
        match s.slice.as_ref() {
            Expr::Constant(ast::ExprConstant {
                value: Constant::Str(k),
                ..
            }) => keys.push(k.clone()),
            _ => return None,
        }
        e = &s.value;
    }
    match e {
        Expr::Name(n) if n.id == item.id => {}
        _ => return None,
    }
    keys.reverse();
    let rest: String = keys.iter().map(|k| format!(".{k}")).collect();
    Some((response, format!("{list}[*]{rest}")))
}

/// The value an argument gives a helper's parameter: a literal as it is, anything else (an
/// f-string, a captured value) as the template it lowers to.
fn argument(scope: &Scope<'_>, expr: &Expr) -> crate::value::Result<Literal> {
    match literal(expr, scope.constants) {
        Some(l) => Ok(l),
        None => scope.template(expr).map(Literal::Text),
    }
}

/// `self.client.<verb>`: the HTTP method, or `Some("")` for `self.client.request(method, ...)`.
fn client_method<'c>(call: &'c ast::ExprCall, user: &str) -> Option<&'c str> {
    let Expr::Attribute(a) = call.func.as_ref() else {
        return None;
    };
    // FastHttpUser's `self.rest(method, url, ...)`: a JSON request whose response is checked.
    if a.attr.as_str() == "rest" && dotted(&a.value)? == user {
        return Some("");
    }
    if dotted(&a.value)? != format!("{user}.client") {
        return None;
    }
    match a.attr.as_str() {
        v if VERBS.contains(&v) => Some(v),
        "request" => Some(""),
        _ => None,
    }
}

/// One `self.client` call as a request.
fn request(
    scope: &Scope<'_>,
    call: &ast::ExprCall,
    verb: &str,
    line: usize,
) -> crate::value::Result<Request> {
    let bad = |e: &Expr, m: &str| {
        Err(Unsupported {
            offset: u32::from(e.range().start()) as usize,
            message: m.into(),
        })
    };
    let mut positional = call.args.iter();
    let method = match verb {
        "" => match positional.next() {
            Some(m) => scope.template(m)?.to_ascii_uppercase(),
            None => return bad(&call.func, "request() needs a method and a URL"),
        },
        v => v.to_ascii_uppercase(),
    };
    let keyword = |name: &str| {
        call.keywords
            .iter()
            .find(|k| k.arg.as_deref() == Some(name))
            .map(|k| &k.value)
    };
    let Some(url) = positional.next().or_else(|| keyword("url")) else {
        return bad(&call.func, "the request has no URL");
    };
    let mut path = scope.template(url)?;
    if path.starts_with("http://") || path.starts_with("https://") {
        return bad(url, "an absolute URL does not translate: give the path, and the host with host = ... or --host");
    }
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let mut r = Request {
        line,
        method,
        ..Request::default()
    };
    for k in &call.keywords {
        let Some(arg) = k.arg.as_deref() else {
            return bad(
                &k.value,
                "**kwargs does not translate: write the keywords out",
            );
        };
        match arg {
            "url" | "catch_response" | "verify" | "stream" => {}
            "name" => r.name = Some(scope.template(&k.value)?),
            "headers" => r.headers = headers(scope, &k.value)?,
            "json" => r.json = Some(scope.json(&k.value)?),
            "data" => match &k.value {
                Expr::Call(c) if dotted(&c.func).as_deref() == Some("json.dumps") && c.args.len() == 1 => {
                    r.json = Some(scope.json(&c.args[0])?)
                }
                Expr::Dict(_) => return bad(&k.value, "a form body (data={...}) is not supported yet: send it as text with data=\"a=1&b=2\", or as json="),
                other => r.body = Some(scope.template(other)?),
            },
            "params" => {
                let Expr::Dict(d) = &k.value else {
                    return bad(&k.value, "params must be a dict");
                };
                let mut query = Vec::new();
                for (key, value) in d.keys.iter().zip(&d.values) {
                    let Some(key) = key else {
                        return bad(value, "** in params does not translate");
                    };
                    query.push(format!("{}={}", query_part(&scope.template(key)?), query_part(&scope.template(value)?)));
                }
                path.push(if path.contains('?') { '&' } else { '?' });
                path.push_str(&query.join("&"));
            }
            "timeout" => match scope.json(&k.value)? {
                toml::Value::Integer(s) => r.timeout = Some(format!("{s}s")),
                toml::Value::Float(s) => r.timeout = Some(format!("{}ms", (s * 1000.0).round())),
                _ => return bad(&k.value, "timeout must be a number of seconds"),
            },
            "allow_redirects" => match scope.json(&k.value)? {
                toml::Value::Boolean(b) => r.follow_redirects = Some(b),
                _ => return bad(&k.value, "allow_redirects must be True or False"),
            },
            other => {
                return Err(Unsupported {
                    offset: u32::from(k.range.start()) as usize,
                    message: format!("the keyword {other}= does not translate yet"),
                })
            }
        }
    }
    r.path = path;
    Ok(r)
}

/// Literal query text percent-encoded; placeholders left for blast to encode.
fn query_part(text: &str) -> String {
    if text.contains("{{") {
        return text.to_string();
    }
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A dict of headers.
fn headers(scope: &Scope<'_>, expr: &Expr) -> crate::value::Result<Vec<(String, String)>> {
    let Expr::Dict(d) = expr else {
        return Err(Unsupported {
            offset: u32::from(expr.range().start()) as usize,
            message: "headers must be a dict".into(),
        });
    };
    d.keys
        .iter()
        .zip(&d.values)
        .map(|(k, v)| match k {
            Some(k) => Ok((scope.template(k)?, scope.template(v)?)),
            None => Err(Unsupported {
                offset: u32::from(v.range().start()) as usize,
                message: "** in headers does not translate".into(),
            }),
        })
        .collect()
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

/// `response.json()[k]...` or `.get(k)`: the response's name and the JSON path.
fn json_path(expr: &Expr) -> Option<(String, String)> {
    let mut keys = Vec::new();
    let mut e = expr;
    loop {
        match e {
            Expr::Subscript(s) => {
                keys.push(s.slice.as_ref());
                e = &s.value;
            }
            Expr::Attribute(a) if a.attr.as_str() == "js" => {
                let Expr::Name(response) = a.value.as_ref() else {
                    return None;
                };
                return path_of(keys, response.id.as_str());
            }
            Expr::Call(c) => match c.func.as_ref() {
                Expr::Attribute(a) if a.attr.as_str() == "get" && c.args.len() == 1 => {
                    keys.push(&c.args[0]);
                    e = &a.value;
                }
                Expr::Attribute(a) if a.attr.as_str() == "json" && c.args.is_empty() => {
                    let Expr::Name(response) = a.value.as_ref() else {
                        return None;
                    };
                    keys.reverse();
                    let mut path = String::new();
                    for key in keys {
                        match key {
                            Expr::Constant(ast::ExprConstant {
                                value: Constant::Str(s),
                                ..
                            }) => {
                                if !path.is_empty() {
                                    path.push('.');
                                }
                                path.push_str(s);
                            }
                            Expr::Constant(ast::ExprConstant {
                                value: Constant::Int(i),
                                ..
                            }) => path.push_str(&format!("[{i}]")),
                            _ => return None,
                        }
                    }
                    return (!path.is_empty()).then(|| (response.id.to_string(), path));
                }
                _ => return None,
            },
            _ => return None,
        }
    }
}

/// The JSON path of `keys` (outermost last) read from `response`.
fn path_of(mut keys: Vec<&Expr>, response: &str) -> Option<(String, String)> {
    keys.reverse();
    let mut path = String::new();
    for key in keys {
        match key {
            Expr::Constant(ast::ExprConstant {
                value: Constant::Str(s),
                ..
            }) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(s);
            }
            Expr::Constant(ast::ExprConstant {
                value: Constant::Int(i),
                ..
            }) => path.push_str(&format!("[{i}]")),
            _ => return None,
        }
    }
    (!path.is_empty()).then(|| (response.to_string(), path))
}

fn is_client_headers(expr: &Expr, user: &str) -> bool {
    dotted(expr).is_some_and(|d| d == format!("{user}.client.headers"))
}

fn is_response_call(expr: &Expr, body: &Body<'_, '_>, method: &str) -> bool {
    let Expr::Call(c) = expr else { return false };
    matches!(c.func.as_ref(), Expr::Attribute(a) if a.attr.as_str() == method && matches!(a.value.as_ref(), Expr::Name(n) if body.responses.contains_key(n.id.as_str())))
}

/// Adds `new` headers over `into`, a later value replacing an earlier one of the same name.
fn merge_headers(into: &mut Vec<(String, String)>, new: Vec<(String, String)>) {
    for (name, value) in new {
        into.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        into.push((name, value));
    }
}

fn f_offset(f: Option<&ast::StmtFunctionDef>) -> usize {
    f.map_or(0, |f| u32::from(f.range.start()) as usize)
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
