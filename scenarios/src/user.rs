//! Scenario users at run time: the engine's [`Script`] for a compiled [`Scenario`].
//!
//! A user runs its class's `on_start` requests, then loops: pick a task by weight, take its pool
//! values, send its requests in order (capturing from responses), rest per `wait_time`. A task
//! stops at its first failed request. A task whose pool is empty, or whose URL or body needs a
//! variable not captured yet, is skipped and counted as skipped, never as a failure.
//!
//! A task may then enter a task set, which loops the same way over its own tasks (in order when
//! sequential) until one of them interrupts: the set's `on_stop` runs and the enclosing set goes
//! on. The sets a user is in form a stack of [`Frame`]s.

use blast_engine::{Action, FailureClass, Name, Redirect, Reply, Script, Target, User, UserId};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::{Destination, Messages, Pick, Scenario, Step, TaskSet, Then};
use crate::pool::{Pool, PoolCounts};
use crate::template::{Context, Unset, Value};

/// A scenario ready to run against one target.
#[derive(Clone)]
pub struct ScenarioScript {
    inner: Arc<Inner>,
}

struct Inner {
    scenario: Scenario,
    pools: Vec<Pool>,
    /// `host` and `user-agent` header lines, the same for every request.
    fixed_headers: Vec<u8>,
    /// `scheme://authority/`: request paths are joined to it for the cookie jar's rules.
    origin: url::Url,
    /// Headers for every request unless it sets its own of the same name: `-H` flags, and
    /// `Authorization: Basic` from `user:pass@` in the host URL.
    extra_headers: Vec<(String, String)>,
    /// Classes of the first users, `fixed_count` of each.
    fixed: Vec<usize>,
    /// Classes of the users after those, by weight.
    order: std::sync::Mutex<ClassOrder>,
    /// Per class and variable: why it can be missing, naming where it gets its value.
    unset_why: Vec<Vec<String>>,
    /// Per class and variable: tasks skipped because it had no value.
    unset_skips: Vec<Vec<AtomicU64>>,
}

impl Scenario {
    /// The engine script that runs this scenario's users against `target`.
    pub fn script(&self, target: &Target) -> ScenarioScript {
        self.script_with_headers(target, &[])
    }

    /// [`Scenario::script`], with `headers` added to every request that does not set its own
    /// (`blast -f FILE -H 'Name: value'`).
    pub fn script_with_headers(
        &self,
        target: &Target,
        headers: &[(String, String)],
    ) -> ScenarioScript {
        let fixed_headers = format!(
            "host: {}\r\nuser-agent: blast/{}\r\n",
            target.authority,
            env!("CARGO_PKG_VERSION")
        )
        .into_bytes();
        let counts: Vec<(u32, &str)> = (self.classes.iter())
            .map(|c| (c.fixed_count.unwrap_or(0), c.name.as_str()))
            .collect();
        let mut fixed_order = ClassOrder::new(&counts);
        let fixed = (0..counts.iter().map(|c| c.0).sum::<u32>() as usize)
            .map(|i| fixed_order.class(i))
            .collect();
        // Users past the fixed ones are of the weighted classes; with none, of the fixed ones
        // by their counts (Locust would leave them out, but a run keeps the count it was given).
        let weighted = self.classes.iter().any(|c| c.fixed_count.is_none());
        let weights: Vec<(u32, &str)> = (self.classes.iter())
            .map(|c| match c.fixed_count {
                None => (c.weight, c.name.as_str()),
                Some(n) if !weighted => (n, c.name.as_str()),
                Some(_) => (0, c.name.as_str()),
            })
            .collect();
        ScenarioScript {
            inner: Arc::new(Inner {
                pools: (self.pools.iter())
                    .map(|name| Pool::new(self.reuse_pools.contains(name)))
                    .collect(),
                scenario: self.clone(),
                fixed_headers,
                origin: url::Url::parse(&format!("{}/", target.origin()))
                    .expect("a parsed target is a valid URL"),
                extra_headers: extra_headers(headers, target),
                fixed,
                order: std::sync::Mutex::new(ClassOrder::new(&weights)),
                unset_why: (0..self.classes.len())
                    .map(|c| {
                        let vars = 0..self.classes[c].vars.len();
                        vars.map(|v| self.unset_why(c, v)).collect()
                    })
                    .collect(),
                unset_skips: self
                    .classes
                    .iter()
                    .map(|c| c.vars.iter().map(|_| AtomicU64::new(0)).collect())
                    .collect(),
            }),
        }
    }

    /// "{{token}} is not captured yet (POST /login captures it from access)": why variable
    /// `slot` of `class` can lack a value, naming the step or pool that gives it one.
    fn unset_why(&self, class: usize, slot: usize) -> String {
        let c = &self.classes[class];
        let tasks = c.sets.iter().flat_map(|s| {
            let sequences = [&s.on_start, &s.on_stop];
            sequences.into_iter().chain(&s.tasks)
        });
        let steps = tasks.clone().flat_map(|t| &t.steps);
        let mut sources: Vec<String> = steps
            .flat_map(|step| step.captures.iter().map(move |cap| (step, cap)))
            .filter(|(_, cap)| matches!(cap.into, Destination::Var(s, _) if s == slot))
            .map(|(step, cap)| {
                let name = &self.names()[step.name];
                format!(
                    "{} {} captures it from {}",
                    name.method, name.name, cap.path
                )
            })
            .collect();
        let pools = tasks.flat_map(|t| &t.take);
        sources.extend(
            pools
                .filter(|(var, _)| *var == slot)
                .map(|(_, pool)| format!("a task takes it from pool {}", self.pools[*pool])),
        );
        sources.dedup();
        format!(
            "{{{{{}}}}} is not captured yet ({})",
            c.vars[slot],
            sources.join("; ")
        )
    }
}

impl ScenarioScript {
    /// Tasks skipped because a variable had no value, with why: `(count, why)`.
    pub fn unset_skips(&self) -> Vec<(u64, String)> {
        let s = &self.inner;
        let counts = s.unset_skips.iter().flatten();
        let why = s.unset_why.iter().flatten();
        counts
            .zip(why)
            .map(|(n, why)| (n.load(Ordering::Relaxed), why.clone()))
            .filter(|(n, _)| *n > 0)
            .collect()
    }

    /// Each pool's name and counts so far.
    pub fn pool_counts(&self) -> Vec<(String, PoolCounts)> {
        let s = &self.inner;
        s.scenario
            .pools
            .iter()
            .cloned()
            .zip(s.pools.iter().map(Pool::counts))
            .collect()
    }
}

impl Script for ScenarioScript {
    fn names(&self) -> &[Name] {
        self.inner.scenario.names()
    }

    fn user(&self, id: UserId) -> Box<dyn User> {
        let inner = self.inner.clone();
        let index = id.index as usize;
        let class = match inner.fixed.get(index) {
            Some(&class) => class,
            // Taken once per user started, so a lock costs nothing that matters.
            None => (inner.order.lock().expect("no panic while ordering"))
                .class(index - inner.fixed.len()),
        };
        let vars = vec![None; inner.scenario.classes[class].vars.len()];
        let pause = inner.scenario.classes[class].sets[0].on_start.pause_first;
        Box::new(ScenarioUser {
            inner,
            class,
            id,
            vars,
            cookies: cookie_store::CookieStore::default(),
            path: String::new(),
            rng: fastrand::Rng::new(),
            frame: Frame::enter(0),
            outer: Vec::new(),
            taken: Vec::new(),
            reason: None,
            pause,
            left_out: None,
            body: Vec::new(),
        })
    }
}

/// Where a user is in one task set.
#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    /// Sending `on_start[i]` next.
    OnStart(usize),
    /// About to pick a task.
    Idle,
    /// Sending `tasks[task].steps[step]` next; past the last step, the task's `then`.
    Task { task: usize, step: usize },
    /// Sending `on_stop[i]` next, on the way out of the set.
    OnStop(usize),
    /// The task is over: rest next.
    Rest,
}

/// A task set a user is in, and where in it.
#[derive(Clone, Copy, Debug)]
struct Frame {
    /// Index into the class's sets; 0 is the class itself.
    set: usize,
    state: State,
    /// A sequential set's next task.
    turn: usize,
    task_started: Instant,
    /// Leaving by interrupt: the enclosing set picks its next task at once.
    reschedule: bool,
}

impl Frame {
    fn enter(set: usize) -> Frame {
        Frame {
            set,
            state: State::OnStart(0),
            turn: 0,
            task_started: Instant::now(),
            reschedule: true,
        }
    }
}

struct ScenarioUser {
    inner: Arc<Inner>,
    class: usize,
    id: UserId,
    vars: Vec<Option<Value>>,
    /// The session's cookies, kept and sent by RFC 6265's rules (expiry, path, domain, secure).
    cookies: cookie_store::CookieStore,
    /// The path of the request in flight: the cookies of its response are scoped to it.
    path: String,
    rng: fastrand::Rng,
    /// The innermost task set the user is in.
    frame: Frame,
    /// The sets enclosing it, outermost (the class) first.
    outer: Vec<Frame>,
    /// Pool values taken for the current task and not yet sent, to give back on a skip.
    taken: Vec<(usize, Value)>,
    /// Why the last response failed its checks or captures.
    reason: Option<String>,
    /// A pause the user takes before its next request (`pause` in a task).
    pause: Option<Duration>,
    /// A header of the request in flight left out for want of a variable: (name, slot).
    left_out: Option<(usize, usize)>,
    body: Vec<u8>,
}

/// The set a user of `class` is in at `frame`.
fn set_at(inner: &Inner, class: usize, frame: Frame) -> &TaskSet {
    &inner.scenario.classes[class].sets[frame.set]
}

/// The step a user of `class` at `frame` sends next, if any.
fn step_at(inner: &Inner, class: usize, frame: Frame) -> Option<&Step> {
    let set = set_at(inner, class, frame);
    match frame.state {
        State::OnStart(i) => set.on_start.steps.get(i),
        State::Task { task, step } => set.tasks[task].steps.get(step),
        State::OnStop(i) => set.on_stop.steps.get(i),
        State::Idle | State::Rest => None,
    }
}

/// Python's truth of a captured value: unset, empty, zero, false and null are false.
fn truthy(value: &Option<Value>) -> bool {
    match value {
        None => false,
        Some(Value::Text(s)) => !s.is_empty(),
        Some(Value::Json(s)) => !matches!(s.as_str(), "[]" | "{}" | "0" | "0.0" | "false" | "null"),
    }
}

impl ScenarioUser {
    fn step(&self) -> Option<&Step> {
        step_at(&self.inner, self.class, self.frame)
    }

    fn set(&self) -> &TaskSet {
        set_at(&self.inner, self.class, self.frame)
    }

    fn rest(&mut self, skipped: Option<usize>) -> Action {
        self.frame.state = State::Idle;
        let class = &self.inner.scenario.classes[self.class];
        let wait = class.sets[self.frame.set].wait.unwrap_or(class.wait);
        let until = wait.next_start(self.frame.task_started, Instant::now(), &mut self.rng);
        Action::Rest { until, skipped }
    }

    /// Picks a task (by weight, or the next in a sequential set) and takes its pool values;
    /// `false` if a pool was empty.
    fn start_task(&mut self) -> (usize, bool) {
        let inner = self.inner.clone();
        let set = set_at(&inner, self.class, self.frame);
        let task = if set.sequential {
            let task = self.frame.turn % set.tasks.len();
            self.frame.turn += 1;
            task
        } else {
            let total = *set.task_weights.last().expect("a set has tasks");
            let roll = self.rng.u32(..total);
            set.task_weights.partition_point(|&w| w <= roll)
        };
        self.frame.task_started = Instant::now();
        self.frame.state = State::Task { task, step: 0 };
        for &(var, pool) in &set.tasks[task].take {
            let Some(value) = inner.pools[pool].take() else {
                self.give_back();
                return (task, false);
            };
            self.vars[var] = Some(value.clone());
            self.taken.push((pool, value));
        }
        self.pause = set.tasks[task].pause_first;
        (task, true)
    }

    /// Past a task's requests: rest, enter a task set or leave this one.
    fn finish_task(&mut self, task: usize) -> Option<Action> {
        match self.set().tasks[task].then {
            Then::Done => return Some(self.rest(None)),
            Then::Enter(set) => {
                self.outer.push(self.frame);
                self.frame = Frame::enter(set);
                self.pause = self.set().on_start.pause_first;
            }
            Then::Interrupt { reschedule } => {
                self.frame.reschedule = reschedule;
                self.frame.state = State::OnStop(0);
                self.pause = self.set().on_stop.pause_first;
            }
        }
        None
    }

    /// Past a set's on-stop requests: back to the enclosing set, which goes on at once or
    /// after a rest.
    fn leave_set(&mut self) {
        let reschedule = self.frame.reschedule;
        self.frame = self.outer.pop().expect("only a task set's tasks interrupt");
        self.frame.state = if reschedule { State::Idle } else { State::Rest };
    }

    fn give_back(&mut self) {
        for (pool, value) in self.taken.drain(..) {
            self.inner.pools[pool].give_back(value);
        }
    }

    /// Writes the current step as wire bytes, or the next hop of its redirect `to`; the
    /// variable lacking when its URL or body needs one that has no value.
    fn render(&mut self, out: &mut Vec<u8>, to: Option<&Redirect>) -> Result<(), Unset> {
        // Borrow fields apart: the step is read from `inner` while `rng` and `body` change.
        let ScenarioUser {
            inner,
            class,
            id,
            vars,
            cookies,
            path: sent_path,
            rng,
            frame,
            left_out,
            body: body_buf,
            ..
        } = self;
        let Some(step) = step_at(inner, *class, *frame) else {
            return Ok(());
        };
        *left_out = None;
        let mut cx = Context {
            vars,
            rng,
            user_id: id.index,
            worker: id.worker,
            workers: id.workers,
            shard: id.shard,
            shards: id.shards,
        };
        body_buf.clear();
        // A redirect that turns the request into a GET drops its body.
        let body = step
            .body
            .as_ref()
            .filter(|_| to.is_none_or(|r| r.keep_body));
        if let Some(body) = body {
            body.render(&mut cx, body_buf)?;
        }
        let method = to.map_or(step.method.as_str(), |r| r.method.as_str());
        out.extend_from_slice(method.as_bytes());
        out.push(b' ');
        let path_at = out.len();
        match to {
            Some(r) => out.extend_from_slice(r.path.as_bytes()),
            None => step.path.render(&mut cx, out)?,
        }
        sent_path.clear();
        sent_path.push_str(&String::from_utf8_lossy(&out[path_at..]));
        out.extend_from_slice(b" HTTP/1.1\r\n");
        out.extend_from_slice(&inner.fixed_headers);
        for (name, value) in &inner.extra_headers {
            let own = step
                .headers
                .iter()
                .any(|(mine, _)| mine.eq_ignore_ascii_case(name));
            if !own {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(value.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        let mut content_type = step.content_type;
        for (i, (name, value)) in step.headers.iter().enumerate() {
            let mark = out.len();
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            // A header whose variable is not captured yet is left out (e.g. Authorization
            // before the login): the target answers as it would without it, and a failure
            // says what was missing.
            if let Err(Unset(slot)) = value.render(&mut cx, out) {
                out.truncate(mark);
                *left_out = Some((i, slot));
                continue;
            }
            out.extend_from_slice(b"\r\n");
            if name.eq_ignore_ascii_case("content-type") {
                content_type = None;
            }
        }
        if let (Some(ct), Some(_)) = (content_type, body) {
            out.extend_from_slice(b"content-type: ");
            out.extend_from_slice(ct.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        // Only a session that has cookies pays for matching them against the URL.
        if cookies.iter_unexpired().next().is_some() {
            if let Ok(url) = inner.origin.join(sent_path) {
                let mut sent = 0;
                for (k, v) in cookies.get_request_values(&url) {
                    out.extend_from_slice(if sent == 0 { b"cookie: " } else { b"; " });
                    out.extend_from_slice(k.as_bytes());
                    out.push(b'=');
                    out.extend_from_slice(v.as_bytes());
                    sent += 1;
                }
                if sent > 0 {
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
        if body.is_some() || !matches!(method, "GET" | "HEAD") {
            let _ = write!(out, "content-length: {}\r\n", body_buf.len());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body_buf);
        Ok(())
    }

    /// Keeps the cookies the target sets for the request just answered, as a browser
    /// session would (`cookie_store`: `Expires`, `Max-Age`, `Path`, `Domain`, `Secure`).
    fn keep_cookies(&mut self, set_cookies: &[String]) {
        if set_cookies.is_empty() {
            return;
        }
        let Ok(url) = self.inner.origin.join(&self.path) else {
            return;
        };
        for header in set_cookies {
            // A cookie the jar refuses (another domain, a bad attribute) is left out, as a
            // browser leaves it out.
            let _ = self.cookies.parse(header, &url);
        }
    }

    /// Applies the step's captures to a successful response.
    fn capture(&mut self, reply: &Reply<'_>) -> Result<(), FailureClass> {
        let Some(step) = step_at(&self.inner, self.class, self.frame) else {
            return Ok(());
        };
        let Some(first) = step.captures.first() else {
            return Ok(());
        };
        let class = &self.inner.scenario.classes[self.class];
        let target = |c: &crate::model::Capture| match c.into {
            Destination::Var(slot, _) => class.vars[slot].clone(),
            Destination::Pool(pool) => format!("pool {}", self.inner.scenario.pools[pool]),
        };
        let fail = |why: String| (FailureClass::Capture, format!("CaptureError({why:?})"));
        let result = if reply.truncated {
            Err(fail(format!(
                "{}: the response was longer than {} bytes or did not decode",
                target(first),
                blast_engine::MAX_KEPT_BODY
            )))
        } else {
            match serde_json::from_slice::<serde_json::Value>(reply.body) {
                Err(_) => Err(fail(format!("{}: the response is not JSON", target(first)))),
                Ok(doc) => {
                    let mut result = Ok(());
                    for capture in &step.captures {
                        let found = capture.path.find(&doc);
                        match capture.into {
                            Destination::Var(slot, pick) => {
                                match pick_one(&found, pick, &mut self.rng) {
                                    Some(v) => self.vars[slot] = Some(v),
                                    None => {
                                        result = Err(fail(format!(
                                            "{}: nothing at {} in the response",
                                            target(capture),
                                            capture.path
                                        )));
                                        break;
                                    }
                                }
                            }
                            Destination::Pool(pool) => {
                                // Split over shards, each value belongs to one shard only:
                                // exactly once across the whole run.
                                let (shard, shards) = (self.id.shard, self.id.shards);
                                let mine = found
                                    .into_iter()
                                    .map(Value::from_json)
                                    .filter(|v| v.shard(shards) == shard);
                                self.inner.pools[pool].offer(mine);
                            }
                        }
                    }
                    result
                }
            }
        };
        result.map_err(|(class, why)| {
            self.reason = Some(why);
            class
        })
    }

    /// Moves past the step just answered (or left out by `when`); a failure ends the task
    /// (which still enters or leaves a set after it) or the on-start sequence.
    fn advance(&mut self, ok: bool) {
        // A request that succeeded may be followed by a pause before the next one.
        self.pause = self.step().filter(|_| ok).and_then(|s| s.pause);
        self.frame.state = match self.frame.state {
            State::OnStart(i) if ok => State::OnStart(i + 1),
            State::OnStart(_) => State::Idle,
            State::Task { task, step } if ok => State::Task {
                task,
                step: step + 1,
            },
            State::Task { task, .. } => State::Task {
                task,
                step: usize::MAX,
            },
            State::OnStop(i) if ok => State::OnStop(i + 1),
            State::OnStop(_) => State::OnStop(usize::MAX),
            other => other,
        };
    }
}

impl User for ScenarioUser {
    fn next(&mut self, request: &mut Vec<u8>) -> Action {
        loop {
            if let Some(pause) = self.pause.take() {
                return Action::Pause {
                    until: Instant::now() + pause,
                };
            }
            let at = self.frame.state;
            match at {
                State::Idle => {
                    let (task, ready) = self.start_task();
                    if !ready {
                        let first = self.set().tasks[task].steps.first().map(|s| s.name);
                        return self.rest(first);
                    }
                }
                State::Rest => return self.rest(None),
                State::OnStart(_) | State::Task { .. } | State::OnStop(_) => {
                    let Some(step) = self.step() else {
                        // The sequence is over: on-start leads to the first task, a task to
                        // what follows it, on-stop out of the set.
                        match at {
                            State::Task { task, .. } => {
                                if let Some(rest) = self.finish_task(task) {
                                    return rest;
                                }
                            }
                            State::OnStop(_) => self.leave_set(),
                            _ => self.frame.state = State::Idle,
                        }
                        continue;
                    };
                    if let Some((slot, want)) = step.when {
                        if truthy(&self.vars[slot]) != want {
                            self.advance(true);
                            self.pause = None;
                            continue;
                        }
                    }
                    let keep_body = !step.captures.is_empty() || step.expect.is_some();
                    let name = step.name;
                    let (follow_redirects, timeout) = (step.follow_redirects, step.timeout);
                    match self.render(request, None) {
                        Ok(()) => {
                            self.taken.clear();
                            return Action::Send {
                                name,
                                keep_body,
                                follow_redirects,
                                timeout,
                            };
                        }
                        Err(Unset(slot)) => {
                            self.inner.unset_skips[self.class][slot]
                                .fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    request.clear();
                    self.give_back();
                    match at {
                        State::Task { task, .. } if self.set().tasks[task].then == Then::Done => {
                            return self.rest(Some(name))
                        }
                        // The task is skipped, but a set is still entered or left after it.
                        _ => self.advance(false),
                    }
                }
            }
        }
    }

    fn response(&mut self, reply: &Reply<'_>) -> Result<(), FailureClass> {
        self.keep_cookies(reply.set_cookies);
        let success = self.step().is_some_and(|s| s.success.accepts(reply.status));
        let checked = match self.step().and_then(|s| s.expect.as_ref()) {
            Some(expect) if success => {
                let messages = &self.step().expect("a response answers a step").messages;
                expect.check(reply.body, reply.truncated, messages)
            }
            _ => Ok(()),
        };
        let verdict = if !success {
            let step = self.step().expect("a response answers a step");
            // The hint is for a request that needed the value, not the one meant to get it.
            let captures_it = |slot| {
                (step.captures.iter())
                    .any(|c| matches!(c.into, Destination::Var(s, _) if s == slot))
            };
            if let Some(message) = &step.messages.status {
                self.reason = Some(Messages::caught(message));
            } else if let Some((header, slot)) =
                self.left_out.filter(|(_, slot)| !captures_it(*slot))
            {
                self.reason = Some(format!(
                    "HTTPError(code={}): sent without its {} header: {}",
                    reply.status, step.headers[header].0, self.inner.unset_why[self.class][slot]
                ));
            }
            Err(FailureClass::Status)
        } else if let Err(why) = checked {
            self.reason = Some(why);
            Err(FailureClass::Check)
        } else {
            self.capture(reply)
        };
        self.advance(verdict.is_ok());
        verdict
    }

    fn failed(&mut self, _class: FailureClass) {
        self.advance(false);
    }

    fn failure_reason(&mut self) -> Option<String> {
        self.reason.take()
    }

    fn redirect(
        &mut self,
        reply: &Reply<'_>,
        to: &Redirect,
        previous: &[u8],
        request: &mut Vec<u8>,
    ) {
        // Cookies set on the way (a login's redirect, say) go with the next hop, as in a
        // requests session.
        self.keep_cookies(reply.set_cookies);
        if self.render(request, Some(to)).is_err() {
            request.clear();
            to.rewrite(previous, request);
        }
    }
}

/// The value a capture of `found` matches gives its variable, `None` without a match.
fn pick_one(found: &[&serde_json::Value], pick: Pick, rng: &mut fastrand::Rng) -> Option<Value> {
    if found.is_empty() {
        return None;
    }
    Some(match pick {
        Pick::First => Value::from_json(found[0]),
        Pick::Random => Value::from_json(found[rng.usize(..found.len())]),
        Pick::All => Value::from_json(&serde_json::Value::Array(
            found.iter().map(|v| (*v).clone()).collect(),
        )),
    })
}

/// The `-H` headers, then the URL's Basic credentials unless `-H` sets `Authorization` itself.
fn extra_headers(headers: &[(String, String)], target: &Target) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if let Some(auth) = &target.basic_auth {
        if !out.iter().any(|(n, _)| n == "authorization") {
            out.push(("authorization".into(), auth.clone()));
        }
    }
    out
}

/// The classes of users `0, 1, 2, ...` as Locust's dispatcher orders them: each next user is
/// of the class whose pick most lowers the Kullback-Leibler divergence between the users so
/// far and the weights (weights 3 and 1: A B A A A B A A ...), ties to the first name in
/// alphabetical order. The same order as Locust's, so the same `-u` gives each class the same
/// count.
struct ClassOrder {
    heap: std::collections::BinaryHeap<std::cmp::Reverse<Next>>,
    order: Vec<usize>,
}

/// A class in the heap: (divergence change of its next pick, picks + weight, weight, the
/// class's rank by name, the class), ordered field by field (`f64::total_cmp`).
#[derive(PartialEq)]
struct Next(f64, f64, f64, usize, usize);

impl Eq for Next {}

impl PartialOrd for Next {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Next {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0.total_cmp(&other.0))
            .then(self.1.total_cmp(&other.1))
            .then(self.2.total_cmp(&other.2))
            .then(self.3.cmp(&other.3))
    }
}

impl ClassOrder {
    /// An order over classes given as (weight, name).
    fn new(classes: &[(u32, &str)]) -> ClassOrder {
        let heap = (classes.iter().enumerate())
            .filter(|(_, (w, _))| *w > 0)
            .map(|(class, &(w, name))| {
                let rank = classes.iter().filter(|(_, other)| *other < name).count();
                let x = f64::from(w);
                std::cmp::Reverse(Next(x * (x / (x + 1.0)).log2(), x + 1.0, x, rank, class))
            })
            .collect();
        ClassOrder {
            heap,
            order: Vec::new(),
        }
    }

    /// The class of user `index` (counted among the users this order places).
    fn class(&mut self, index: usize) -> usize {
        while self.order.len() <= index {
            let mut top = self.heap.peek_mut().expect("a class has weight");
            let Next(_, x, w, rank, class) = top.0;
            self.order.push(class);
            top.0 = Next(w * (x / (x + 1.0)).log2(), x + 1.0, w, rank, class);
        }
        self.order[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_takes_the_first_a_random_or_every_match() {
        let doc: serde_json::Value = serde_json::json!([1, 2, 3]);
        let found: Vec<&serde_json::Value> = doc.as_array().unwrap().iter().collect();
        let mut rng = fastrand::Rng::with_seed(7);
        let show = |v: Option<Value>| match v.unwrap() {
            Value::Json(s) | Value::Text(s) => s,
        };
        assert_eq!(show(pick_one(&found, Pick::First, &mut rng)), "1");
        assert_eq!(show(pick_one(&found, Pick::All, &mut rng)), "[1,2,3]");
        let picked: std::collections::BTreeSet<String> = (0..100)
            .map(|_| show(pick_one(&found, Pick::Random, &mut rng)))
            .collect();
        assert_eq!(picked.len(), 3, "{picked:?}");
        assert!(pick_one(&[], Pick::Random, &mut rng).is_none());
    }

    #[test]
    fn classes_interleave_by_weight_in_locusts_order() {
        let first = |weights: &[u32], n| {
            let names = ["A", "B", "C"];
            let classes: Vec<(u32, &str)> = weights.iter().copied().zip(names).collect();
            let mut order = ClassOrder::new(&classes);
            (0..n).map(|i| order.class(i)).collect::<Vec<_>>()
        };
        // Locust 2.47's `_kl_generator` gives ABAAABAAAB, AABAAAAABAAA and BCABCBBACB.
        assert_eq!(first(&[3, 1], 10), [0, 1, 0, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(first(&[5, 1], 12), [0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(first(&[2, 5, 3], 10), [1, 2, 0, 1, 2, 1, 1, 0, 2, 1]);
        assert_eq!(first(&[0, 1], 3), [1, 1, 1]);
        // Equal weights: the first name alphabetically goes first, wherever it is declared.
        let mut order = ClassOrder::new(&[(1, "Zeta"), (1, "Alpha")]);
        assert_eq!([order.class(0), order.class(1)], [1, 0]);
    }
}
