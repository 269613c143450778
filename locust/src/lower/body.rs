//! Statements inside a task, `on_start` or helper: requests, captures, checks, client
//! headers, helpers inlined, and module lists used as pools.

use rustpython_parser::ast::{self, Constant, Expr, Ranged, Stmt};
use std::collections::HashMap;

use super::request::{client_method, headers, json_path, request};
use super::{merge_headers, Lowering, Methods};
use crate::model::{Request, Sequence};
use crate::value::{dotted, literal, Literal, Scope, Unsupported};

/// How deep helpers may call each other.
const MAX_INLINE: usize = 8;
/// The most rounds of a loop written out as requests.
const MAX_UNROLL: usize = 100;

/// What a task's or `on_start`'s body lowered to.
pub(super) struct Lowered {
    pub(super) steps: Sequence,
    pub(super) headers: Vec<(String, String)>,
    pub(super) take: Vec<(String, String)>,
    /// `self.interrupt(reschedule)` ends it.
    pub(super) interrupt: Option<bool>,
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
    /// Seconds slept before the first request.
    pause_first: Option<f64>,
    /// `self.interrupt(reschedule)` was called: nothing after it runs.
    interrupt: Option<bool>,
    /// The `if` guard around the statements being lowered: `"token"` or `"not token"`.
    when: Option<String>,
    depth: usize,
}

impl<'a> Lowering<'a> {
    /// A task, `on_start` or helper: its requests and the client headers it sets.
    pub(super) fn method(&mut self, f: &ast::StmtFunctionDef, methods: &Methods<'a>) -> Lowered {
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
            pause_first: None,
            interrupt: None,
            when: None,
            depth: 0,
        };
        self.statements(&f.body, &mut body);
        Lowered {
            steps: Sequence {
                pause_first: body.pause_first,
                requests: body.requests,
            },
            headers: body.headers,
            take: body.take,
            interrupt: body.interrupt,
        }
    }

    fn statements(&mut self, stmts: &[Stmt], body: &mut Body<'a, '_>) {
        for stmt in stmts {
            if body.interrupt.is_some() {
                self.found.unsupported(
                    stmt,
                    "nothing after self.interrupt() runs: remove it, or move it before",
                );
                return;
            }
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
                let message = a.msg.as_deref().map(|m| self.message(m, body));
                if let Err(e) = check(&a.test, true, message.flatten(), body, &self.constants) {
                    self.found.report(e);
                }
            }
            Stmt::For(f) => self.unroll(f, body),
            Stmt::While(_) => self.found.unsupported(stmt, "while loops inside a task are not supported: write each request out, or give the task a higher weight"),
            Stmt::If(i) => self.guard(i, body),
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
        let message = match i.body.as_slice() {
            [Stmt::Expr(e)] => match e.value.as_ref() {
                Expr::Call(c) => c.args.first().and_then(|m| self.message(m, body)),
                _ => None,
            },
            _ => None,
        };
        if let Err(e) = check(&i.test, false, message, body, &self.constants) {
            self.found.report(e);
        }
    }

    /// A failure message: literal text (a message with values known only at run time is
    /// noted and left to blast's own reason).
    fn message(&mut self, expr: &Expr, body: &Body<'a, '_>) -> Option<String> {
        let scope = Scope {
            user: &body.user,
            constants: &self.constants,
            captured: &body.captured,
        };
        match scope.template(expr) {
            Ok(text) if !text.contains("{{") => Some(text),
            _ => {
                self.found.note(expr, "a failure message with run-time values is left out: the failures table gives blast's reason");
                None
            }
        }
    }

    /// `if self.x:` (or `not`, `is None`, `is not None`) around requests: each is sent only
    /// when the guard holds.
    fn guard(&mut self, i: &ast::StmtIf, body: &mut Body<'a, '_>) {
        let scope = Scope {
            user: &body.user,
            constants: &self.constants,
            captured: &body.captured,
        };
        use ast::CmpOp::{Is, IsNot};
        let is_none = |e: &Expr| {
            matches!(
                e,
                Expr::Constant(ast::ExprConstant {
                    value: Constant::None,
                    ..
                })
            )
        };
        let condition = match i.test.as_ref() {
            Expr::UnaryOp(u) if matches!(u.op, ast::UnaryOp::Not) => {
                scope.variable(&u.operand).map(|v| format!("not {v}"))
            }
            Expr::Compare(c) => match (c.ops.as_slice(), c.comparators.as_slice()) {
                ([Is], [none]) if is_none(none) => {
                    scope.variable(&c.left).map(|v| format!("not {v}"))
                }
                ([IsNot], [none]) if is_none(none) => scope.variable(&c.left),
                _ => None,
            },
            other => scope.variable(other),
        };
        let Some(condition) = condition.filter(|_| i.orelse.is_empty() && body.when.is_none())
        else {
            self.found.unsupported(i, "conditions inside a task translate as `if self.x:`, `if not self.x:` or `if self.x is None:` on a captured value, not nested, without else");
            return;
        };
        body.when = Some(condition);
        self.statements(&i.body, body);
        body.when = None;
        if body.interrupt.is_some() {
            self.found.unsupported(
                i,
                "self.interrupt() inside an if does not translate: give the interrupt its own task",
            );
        }
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
        let shadowed = self.shadow(bound);
        // Inside, the user is the helper's own first parameter (`user` in `def login(user)`).
        let caller = body.user.clone();
        if let Some(first) = f.args.args.first() {
            body.user = first.def.arg.to_string();
        }
        body.depth += 1;
        self.statements(&f.body, body);
        body.depth -= 1;
        body.user = caller;
        self.restore(shadowed);
    }

    /// Binds names to values over module constants of the same name; returns what they hid.
    fn shadow(&mut self, bound: Vec<(String, Literal)>) -> Vec<(String, Option<Literal>)> {
        bound
            .into_iter()
            .map(|(name, value)| {
                let old = self.constants.insert(name.clone(), value);
                (name, old)
            })
            .collect()
    }

    /// Undoes [`Self::shadow`].
    fn restore(&mut self, shadowed: Vec<(String, Option<Literal>)>) {
        for (name, old) in shadowed.into_iter().rev() {
            match old {
                Some(old) => self.constants.insert(name, old),
                None => self.constants.remove(&name),
            };
        }
    }

    /// `for x in range(n)` or over a literal or constant list: the body once per value, with
    /// `x` bound to it (at most [`MAX_UNROLL`] times).
    fn unroll(&mut self, f: &ast::StmtFor, body: &mut Body<'a, '_>) {
        let bad = "loops translate over range(...) with numbers, or over a literal or module-level list, without break, continue or else";
        let Expr::Name(var) = f.target.as_ref() else {
            self.found.unsupported(f, bad);
            return;
        };
        let scope = Scope {
            user: &body.user,
            constants: &self.constants,
            captured: &body.captured,
        };
        let values: Option<Vec<Literal>> = match f.iter.as_ref() {
            Expr::Call(c) if dotted(&c.func).as_deref() == Some("range") => {
                let n: Option<Vec<i64>> = c
                    .args
                    .iter()
                    .map(|a| scope.json(a).ok()?.as_integer())
                    .collect();
                match n.as_deref() {
                    Some([stop]) => Some((0..*stop).collect()),
                    Some([start, stop]) => Some((*start..*stop).collect()),
                    Some([start, stop, step]) if *step > 0 => {
                        Some((*start..*stop).step_by(*step as usize).collect())
                    }
                    _ => None,
                }
                .map(|v: Vec<i64>| {
                    v.into_iter()
                        .map(|i| Literal::Json(toml::Value::Integer(i)))
                        .collect()
                })
            }
            other => match literal(other, &self.constants) {
                Some(Literal::List(items)) => Some(items),
                _ => None,
            },
        };
        let nested = |s: &Stmt| matches!(s, Stmt::Break(_) | Stmt::Continue(_));
        let Some(values) = values.filter(|_| f.orelse.is_empty() && !f.body.iter().any(nested))
        else {
            self.found.unsupported(f, bad);
            return;
        };
        if values.len() > MAX_UNROLL {
            self.found.unsupported(f, format!("a loop of {} rounds is too long to write out (at most {MAX_UNROLL}): give the task a higher weight instead", values.len()));
            return;
        }
        for value in values {
            let shadowed = self.shadow(vec![(var.id.to_string(), value)]);
            self.statements(&f.body, body);
            self.restore(shadowed);
        }
    }

    /// `time.sleep(S)` (or gevent's) after a request: a pause before the task's next one.
    fn sleep(&mut self, call: &ast::ExprCall, body: &mut Body<'a, '_>) {
        let scope = Scope {
            user: &body.user,
            constants: &self.constants,
            captured: &body.captured,
        };
        let seconds = match call.args.as_slice() {
            [s] => match scope.json(s) {
                Ok(toml::Value::Integer(i)) if i >= 0 => i as f64,
                Ok(toml::Value::Float(f)) if f >= 0.0 => f,
                _ => {
                    self.found
                        .unsupported(call, "sleep() translates with a number of seconds");
                    return;
                }
            },
            _ => {
                self.found
                    .unsupported(call, "sleep() takes one number of seconds");
                return;
            }
        };
        let add = |pause: &mut Option<f64>| *pause = Some(pause.unwrap_or(0.0) + seconds);
        match body.requests.last_mut() {
            _ if body.when.is_some() => self.found.unsupported(call, "a sleep inside an if does not translate: sleep before or after it"),
            Some(last) if last.when.is_some() => self.found.unsupported(call, "a sleep right after an if does not translate: sleep before it, or after another request"),
            Some(last) => add(&mut last.pause),
            None => add(&mut body.pause_first),
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
            if call
                .keywords
                .iter()
                .any(|k| k.arg.as_deref() == Some("verify"))
            {
                self.found.note(
                    call,
                    "verify= is left out: blast checks certificates unless run with --insecure",
                );
            }
            match request(&scope, call, method, line) {
                Ok(mut r) => {
                    r.when = body.when.clone();
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
        } else if name == format!("{user}.interrupt") {
            let reschedule = call.args.first().or_else(|| {
                call.keywords
                    .iter()
                    .find(|k| k.arg.as_deref() == Some("reschedule"))
                    .map(|k| &k.value)
            });
            match reschedule.map(|r| literal(r, &self.constants)) {
                None => body.interrupt = Some(true),
                Some(Some(Literal::Json(toml::Value::Boolean(b)))) => body.interrupt = Some(b),
                Some(_) => self
                    .found
                    .unsupported(call, "interrupt(reschedule=...) takes True or False"),
            }
        } else if matches!(name.as_str(), "time.sleep" | "gevent.sleep" | "sleep") {
            self.sleep(call, body);
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
                    "the call {} is not supported inside a task: blast sends requests with self.client.<method>(...) and inlines the class's own helpers",
                    if name.is_empty() { "here" } else { &name }
                ),
            );
        }
    }
}

/// A condition on a response, as blast's `success` and `expect`: it must hold when `holds`
/// (an assert), or must not (a `failure()` branch); `message` is shown when it fails.
fn check(
    test: &Expr,
    holds: bool,
    message: Option<String>,
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
        keep(&mut body.requests[index], "status", message);
        return Ok(());
    }
    if let (true, Some(index)) = (member, response(right, "text")) {
        body.requests[index].contains = Some(scope.template(&c.left)?);
        keep(&mut body.requests[index], "contains", message);
        return Ok(());
    }
    if let (true, Some((name, path))) = (equal, json_path(&c.left)) {
        if let Some(&index) = body.responses.get(&name) {
            let value = scope.json(right)?;
            body.requests[index].expect_json.push((path, value));
            keep(&mut body.requests[index], "json", message);
            return Ok(());
        }
    }
    bad()
}

/// Keeps a check's failure message on its request.
fn keep(request: &mut Request, check: &str, message: Option<String>) {
    if let Some(message) = message {
        request.failure.retain(|(c, _)| c != check);
        request.failure.push((check.to_string(), message));
    }
}

/// `threading.Lock()` and its kin.
pub(super) fn is_lock(expr: &Expr) -> bool {
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

fn is_client_headers(expr: &Expr, user: &str) -> bool {
    dotted(expr).is_some_and(|d| d == format!("{user}.client.headers"))
}

fn is_response_call(expr: &Expr, body: &Body<'_, '_>, method: &str) -> bool {
    let Expr::Call(c) = expr else { return false };
    matches!(c.func.as_ref(), Expr::Attribute(a) if a.attr.as_str() == method && matches!(a.value.as_ref(), Expr::Name(n) if body.responses.contains_key(n.id.as_str())))
}
