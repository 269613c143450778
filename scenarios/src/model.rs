//! The scenario model: user classes with weighted tasks of requests, compiled before the run.

use blast_engine::Name;
use std::time::{Duration, Instant};

use crate::capture::JsonPath;
use crate::criteria::Criterion;
use crate::load::Load;
use crate::template::Template;

/// A scenario: who the users are, what they do, the default load and the success criteria.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Short name, e.g. `burst`.
    pub name: String,
    /// One-paragraph description.
    pub description: String,
    /// Default base URL (Locust's `host`); `--host` overrides it.
    pub host: Option<String>,
    /// Default load; command-line flags override it field by field.
    pub load: Load,
    /// Success criteria; `--threshold` adds to them.
    pub criteria: Vec<Criterion>,
    pub(crate) classes: Vec<UserClass>,
    pub(crate) names: Vec<Name>,
    pub(crate) pools: Vec<String>,
    /// Pools that hand their values out any number of times (`[pool.NAME] reuse = true`).
    pub(crate) reuse_pools: Vec<String>,
}

/// Running sums of task weights, for picking a task.
pub(crate) fn running_weights(tasks: &[Task]) -> Vec<u32> {
    tasks
        .iter()
        .scan(0, |sum, t| {
            *sum += t.weight;
            Some(*sum)
        })
        .collect()
}

impl Scenario {
    /// Keeps the tasks Locust's `--tags` and `--exclude-tags` keep: with `tags`, only tasks
    /// with one of them; then none with an excluded one. User classes left without tasks are
    /// dropped; none left at all is an error.
    pub fn select_tags(&mut self, tags: &[String], exclude: &[String]) -> Result<(), String> {
        if tags.is_empty() && exclude.is_empty() {
            return Ok(());
        }
        let keep = |t: &Task| {
            (tags.is_empty() || t.tags.iter().any(|x| tags.contains(x)))
                && !t.tags.iter().any(|x| exclude.contains(x))
        };
        for class in &mut self.classes {
            for set in &mut class.sets {
                set.tasks
                    .retain(|t| matches!(t.then, Then::Enter(_)) || keep(t));
            }
            // A task set is kept while it has tasks left, as Locust's tag filter does; one
            // emptied may empty the set that enters it, so repeat until nothing changes.
            loop {
                let empty: Vec<bool> = class.sets.iter().map(|s| s.tasks.is_empty()).collect();
                let mut changed = false;
                for set in &mut class.sets {
                    let before = set.tasks.len();
                    set.tasks
                        .retain(|t| !matches!(t.then, Then::Enter(s) if empty[s]));
                    changed |= set.tasks.len() != before;
                }
                if !changed {
                    break;
                }
            }
            for set in &mut class.sets {
                set.task_weights = running_weights(&set.tasks);
            }
        }
        self.classes.retain(|c| !c.sets[0].tasks.is_empty());
        if self.classes.is_empty() {
            return Err(format!(
                "no task is left after --tags {} --exclude-tags {}",
                tags.join(","),
                exclude.join(",")
            ));
        }
        Ok(())
    }

    /// Keeps only the user classes named, as `locust -f FILE UserA UserB` does; an unknown
    /// name is an error that lists the classes there are.
    pub fn select_classes(&mut self, names: &[String]) -> Result<(), String> {
        if names.is_empty() {
            return Ok(());
        }
        if let Some(unknown) = names
            .iter()
            .find(|n| !self.classes.iter().any(|c| &c.name == *n))
        {
            let there: Vec<&str> = self.classes.iter().map(|c| c.name.as_str()).collect();
            return Err(format!(
                "no user class {unknown} in the scenario (its classes: {})",
                there.join(", ")
            ));
        }
        self.classes.retain(|c| names.contains(&c.name));
        Ok(())
    }

    /// Stats names of every request the scenario can send, in order of first appearance.
    pub fn names(&self) -> &[Name] {
        &self.names
    }

    /// User classes as (name, weight).
    pub fn classes(&self) -> Vec<(&str, u32)> {
        self.classes
            .iter()
            .map(|c| (c.name.as_str(), c.weight))
            .collect()
    }
}

/// Locust's `wait_time`, applied after each task.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WaitTime {
    /// `constant(s)`: rest `s` after each task.
    Constant(Duration),
    /// `between(a, b)`: rest a uniformly random time in `[a, b]`.
    Between(Duration, Duration),
    /// `constant_pacing(s)`: start tasks `s` apart (no rest if a task took longer).
    ConstantPacing(Duration),
    /// `constant_throughput(n)`: at most `n` tasks per second, i.e. pacing of `1/n` s.
    ConstantThroughput(f64),
}

impl WaitTime {
    /// Parses Locust's spelling: `between(1, 2)`, `constant(0.5)`, `constant_pacing(1)`,
    /// `constant_throughput(2)`; seconds as numbers.
    pub fn parse(text: &str) -> Result<WaitTime, String> {
        let bad = || {
            format!("invalid wait_time {text:?}: expected constant(S), between(MIN, MAX), constant_pacing(S) or constant_throughput(N), in seconds")
        };
        let (kind, args) = text.trim().split_once('(').ok_or_else(bad)?;
        let args = args.strip_suffix(')').ok_or_else(bad)?;
        let nums = args
            .split(',')
            .map(|a| {
                a.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
            })
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(bad)?;
        let secs = Duration::from_secs_f64;
        Ok(match (kind.trim(), &nums[..]) {
            ("constant", &[s]) => WaitTime::Constant(secs(s)),
            ("between", &[a, b]) if a <= b => WaitTime::Between(secs(a), secs(b)),
            ("constant_pacing", &[s]) => WaitTime::ConstantPacing(secs(s)),
            ("constant_throughput", &[n]) if n > 0.0 => WaitTime::ConstantThroughput(n),
            _ => return Err(bad()),
        })
    }

    /// When the next task may start, for a task that started at `started` and ended at `now`;
    /// `None` for at once.
    pub fn next_start(
        &self,
        started: Instant,
        now: Instant,
        rng: &mut fastrand::Rng,
    ) -> Option<Instant> {
        let at = match *self {
            WaitTime::Constant(d) => now + d,
            WaitTime::Between(a, b) => now + a + (b - a).mul_f64(rng.f64()),
            WaitTime::ConstantPacing(d) => started + d,
            WaitTime::ConstantThroughput(n) => started + Duration::from_secs_f64(1.0 / n),
        };
        (at > now).then_some(at)
    }
}

/// A kind of user (Locust's `User` subclass).
#[derive(Clone, Debug)]
pub(crate) struct UserClass {
    pub name: String,
    pub weight: u32,
    /// Exactly this many users of the class, before the weighted ones (Locust's `fixed_count`).
    pub fixed_count: Option<u32>,
    pub wait: WaitTime,
    /// The class's own tasks first (never interrupted), then the task sets its tasks enter.
    pub sets: Vec<TaskSet>,
    /// Variable names; a variable's index is its slot.
    pub vars: Vec<String>,
}

/// Tasks run in a loop until one interrupts (Locust's `TaskSet`); a class is the outermost one.
#[derive(Clone, Debug)]
pub(crate) struct TaskSet {
    /// Rest after each task; `None` for the class's.
    pub wait: Option<WaitTime>,
    /// Tasks in order, round and round (`SequentialTaskSet`), instead of picked by weight.
    pub sequential: bool,
    /// Requests run on entering (Locust's `on_start`), e.g. a login.
    pub on_start: Task,
    /// Requests run on leaving by an interrupt (Locust's `on_stop`).
    pub on_stop: Task,
    pub tasks: Vec<Task>,
    /// Running sums of task weights, for picking a task.
    pub task_weights: Vec<u32>,
}

/// A weighted task: a sequence of requests run in order (Locust's `@task(N)` function), then
/// maybe a task set entered or left.
#[derive(Clone, Debug, Default)]
pub(crate) struct Task {
    pub weight: u32,
    /// Locust's `@tag`s, for `--tags` and `--exclude-tags`.
    pub tags: Vec<String>,
    /// Values taken from pools into variables before the task runs: (variable, pool).
    pub take: Vec<(usize, usize)>,
    /// A pause before the first request (a `time.sleep` that opens the task).
    pub pause_first: Option<Duration>,
    pub steps: Vec<Step>,
    pub then: Then,
}

/// What a task does once its requests are sent (or one failed).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) enum Then {
    /// Rest, then the next task.
    #[default]
    Done,
    /// Enter the class's task set at this index.
    Enter(usize),
    /// Leave the task set (Locust's `self.interrupt()`): its `on_stop`, then the enclosing set
    /// picks its next task at once (`reschedule`) or after a rest.
    Interrupt {
        /// Locust's `reschedule=True`, the default.
        reschedule: bool,
    },
}

/// Which statuses count as success.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Success {
    /// Below 400, as Locust.
    Below400,
    /// Exactly these.
    Only(Vec<u16>),
}

impl Success {
    pub fn accepts(&self, status: u16) -> bool {
        match self {
            Success::Below400 => status < 400,
            Success::Only(list) => list.contains(&status),
        }
    }
}

/// Which of a path's matches a variable takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Pick {
    /// The first (the default).
    First,
    /// One at random (`pick results[*].id`), as Python's `random.choice`.
    Random,
    /// All of them, as a JSON array (`all results[*].id`).
    All,
}

/// Where a captured value goes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Destination {
    /// The match `Pick` chooses, into a user variable.
    Var(usize, Pick),
    /// Every match, into a shared pool.
    Pool(usize),
}

/// One capture from a JSON response.
#[derive(Clone, Debug)]
pub(crate) struct Capture {
    pub path: JsonPath,
    pub into: Destination,
}

/// Checks of a response body beyond its status (Locust's `catch_response`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Expect {
    /// Text the body must contain.
    pub contains: Option<String>,
    /// JSON paths and the values they must hold.
    pub json: Vec<(JsonPath, serde_json::Value)>,
}

impl Expect {
    /// Checks `body`; the failure message when a check fails.
    pub fn check(&self, body: &[u8], truncated: bool, messages: &Messages) -> Result<(), String> {
        self.contains_check(body, truncated)
            .map_err(|why| Messages::reason(&messages.contains, why))?;
        self.json_check(body)
            .map_err(|why| Messages::reason(&messages.json, why))
    }

    fn contains_check(&self, body: &[u8], truncated: bool) -> Result<(), String> {
        if let Some(text) = &self.contains {
            let found = text.is_empty() || body.windows(text.len()).any(|w| w == text.as_bytes());
            if !found {
                let cut = if truncated {
                    " (the body was cut at 1 MiB)"
                } else {
                    ""
                };
                return Err(format!("the body lacks {text:?}{cut}"));
            }
        }
        Ok(())
    }

    fn json_check(&self, body: &[u8]) -> Result<(), String> {
        if self.json.is_empty() {
            return Ok(());
        }
        let doc: serde_json::Value =
            serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_string())?;
        for (path, want) in &self.json {
            match path.find(&doc).first() {
                Some(got) if *got == want => {}
                // A credential in a response stays out of the failure message.
                Some(_) if blast_engine::redact::is_secret_name(&path.to_string()) => {
                    return Err(format!(
                        "{path} is not as expected ({})",
                        blast_engine::redact::REDACTED
                    ))
                }
                Some(got) => return Err(format!("{path} is {got}, expected {want}")),
                None => return Err(format!("nothing at {path}, expected {want}")),
            }
        }
        Ok(())
    }
}

/// A request's own failure messages, by the check that failed (Locust's
/// `response.failure("...")`), shown as Locust shows them: `CatchResponseError('...')`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Messages {
    /// When the status is not a success.
    pub status: Option<String>,
    /// When the body lacks the expected text.
    pub contains: Option<String>,
    /// When a JSON value is not the expected one.
    pub json: Option<String>,
}

impl Messages {
    /// The failure reason for a failed check: its own message as Locust shows it, else
    /// blast's `why`.
    pub fn reason(message: &Option<String>, why: String) -> String {
        match message {
            Some(m) => Messages::caught(m),
            None => format!("CheckError({why:?})"),
        }
    }

    /// A message as Locust's failures table shows it: `CatchResponseError('not created')`,
    /// Python's repr of the string.
    pub fn caught(message: &str) -> String {
        if message.contains('\'') && !message.contains('"') {
            format!("CatchResponseError(\"{message}\")")
        } else {
            format!("CatchResponseError('{}')", message.replace('\'', "\\'"))
        }
    }
}

/// One request of a task, compiled.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    /// Index of the stats name.
    pub name: usize,
    /// `GET`, `POST`...
    pub method: String,
    pub path: Template,
    /// Header name and value template, class headers first.
    pub headers: Vec<(String, Template)>,
    pub body: Option<Template>,
    /// Content-Type sent with the body unless a header sets one.
    pub content_type: Option<&'static str>,
    pub success: Success,
    /// Checks of the body; a failed one fails the request as `check`.
    pub expect: Option<Expect>,
    /// Follow same-origin redirects (the default, as Locust's HttpUser).
    pub follow_redirects: bool,
    /// Time allowed for the request, instead of `--timeout`.
    pub timeout: Option<Duration>,
    pub captures: Vec<Capture>,
    /// The failure messages of its checks, instead of blast's own reasons.
    pub messages: Messages,
    /// A pause after this request succeeds, before the task's next request.
    pub pause: Option<Duration>,
    /// Sent only when this variable is set and truthy (`Some((slot, true))`) or is not
    /// (`false`): Python's `if self.token:` / `if not self.token:`.
    pub when: Option<(usize, bool)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_times_parse_in_locust_spelling() {
        let s = Duration::from_secs_f64;
        assert_eq!(
            WaitTime::parse("constant(0.5)").unwrap(),
            WaitTime::Constant(s(0.5))
        );
        assert_eq!(
            WaitTime::parse(" between(1, 2) ").unwrap(),
            WaitTime::Between(s(1.0), s(2.0))
        );
        assert_eq!(
            WaitTime::parse("constant_pacing(1)").unwrap(),
            WaitTime::ConstantPacing(s(1.0))
        );
        assert_eq!(
            WaitTime::parse("constant_throughput(4)").unwrap(),
            WaitTime::ConstantThroughput(4.0)
        );
        for bad in [
            "between(2, 1)",
            "constant()",
            "soon(1)",
            "constant(-1)",
            "constant_throughput(0)",
            "between(1)",
        ] {
            assert!(WaitTime::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_wait_time_schedules_the_next_task_as_locust_does() {
        let mut rng = fastrand::Rng::with_seed(1);
        let started = Instant::now();
        let now = started + Duration::from_millis(300);
        let ms = |t: Option<Instant>| t.map(|t| (t - now).as_millis() as i64);
        assert_eq!(
            ms(WaitTime::Constant(Duration::from_millis(500)).next_start(started, now, &mut rng)),
            Some(500)
        );
        assert_eq!(
            ms(WaitTime::Constant(Duration::ZERO).next_start(started, now, &mut rng)),
            None
        );
        // Pacing counts from the task's start: 1 s pacing after a 300 ms task rests 700 ms.
        assert_eq!(
            ms(WaitTime::ConstantPacing(Duration::from_secs(1)).next_start(started, now, &mut rng)),
            Some(700)
        );
        assert_eq!(
            ms(WaitTime::ConstantThroughput(2.0).next_start(started, now, &mut rng)),
            Some(200)
        );
        // A task slower than its pacing starts the next one at once.
        assert_eq!(
            ms(WaitTime::ConstantThroughput(10.0).next_start(started, now, &mut rng)),
            None
        );
        let between = WaitTime::Between(Duration::from_millis(100), Duration::from_millis(200));
        let waits: Vec<i64> = (0..1000)
            .map(|_| ms(between.next_start(started, now, &mut rng)).unwrap())
            .collect();
        assert!(waits.iter().all(|w| (100..=200).contains(w)));
        let mean = waits.iter().sum::<i64>() as f64 / 1000.0;
        assert!((140.0..160.0).contains(&mean), "{mean}");
    }
}
