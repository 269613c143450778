//! What a locustfile says, in the shape of blast's scenario file, before it is written out.

/// The whole file: its user classes.
pub(crate) struct Scenario {
    pub name: String,
    pub host: Option<String>,
    /// Success criteria, from a `quitting` listener.
    pub criteria: Vec<String>,
    /// A `LoadTestShape` as blast's stages, and its run time in seconds.
    pub stages: Option<(String, u32)>,
    pub users: Vec<UserClass>,
    /// `TaskSet` and `SequentialTaskSet` classes that tasks enter.
    pub tasksets: Vec<UserClass>,
}

/// A `HttpUser` or `FastHttpUser` subclass, or a `TaskSet` one (`kind`).
#[derive(Clone, Default)]
pub(crate) struct UserClass {
    pub name: String,
    pub line: usize,
    pub kind: Kind,
    pub weight: Option<i64>,
    pub fixed_count: Option<i64>,
    pub wait_time: Option<String>,
    pub host: Option<String>,
    pub abstract_class: bool,
    /// Class headers, as set on `self.client.headers`.
    pub headers: Vec<(String, String)>,
    pub on_start: Sequence,
    /// A task set's `on_stop`.
    pub on_stop: Sequence,
    pub tasks: Vec<Task>,
}

/// What kind of class.
#[derive(Clone, Copy, Default, PartialEq)]
pub(crate) enum Kind {
    /// A user class.
    #[default]
    User,
    /// A `TaskSet`, or a `SequentialTaskSet` when `sequential`.
    TaskSet {
        /// Tasks in order instead of by weight.
        sequential: bool,
    },
}

/// Requests in order, maybe after a pause.
#[derive(Clone, Default)]
pub(crate) struct Sequence {
    /// Seconds to pause before the first request (a sleep that opens the method).
    pub pause_first: Option<f64>,
    pub requests: Vec<Request>,
}

/// A weighted task: one or more requests in order.
#[derive(Clone, Default)]
pub(crate) struct Task {
    pub name: String,
    pub line: usize,
    pub weight: i64,
    pub tags: Vec<String>,
    /// (variable, pool): values taken from shared pools before the task runs.
    pub take: Vec<(String, String)>,
    pub steps: Sequence,
    /// The task set this task enters (a `TaskSet` class among the tasks).
    pub taskset: Option<String>,
    /// `self.interrupt()` ends the task: `Some(reschedule)`.
    pub interrupt: Option<bool>,
}

/// One `self.client` call.
#[derive(Clone, Default)]
pub(crate) struct Request {
    pub line: usize,
    pub method: String,
    /// Path and query, a template.
    pub path: String,
    pub name: Option<String>,
    pub headers: Vec<(String, String)>,
    pub json: Option<toml::Value>,
    pub body: Option<String>,
    /// A form body (`data={...}`): fields in order, values as templates.
    pub form: Vec<(String, String)>,
    pub timeout: Option<String>,
    pub follow_redirects: Option<bool>,
    /// (variable, JSON path) pairs captured from the response.
    pub capture: Vec<(String, String)>,
    /// (pool, JSON path) pairs: every match is offered to a shared pool.
    pub to_pool: Vec<(String, String)>,
    /// The statuses that count as success, when the locustfile checks them.
    pub success: Vec<i64>,
    /// Text the body must contain.
    pub contains: Option<String>,
    /// (JSON path, value) pairs the body must hold.
    pub expect_json: Vec<(String, toml::Value)>,
    /// Seconds to pause after this request, before the task's next one.
    pub pause: Option<f64>,
    /// Sent only when this variable is truthy (`if self.x:`), or not (`"not x"`).
    pub when: Option<String>,
    /// Failure messages by check (`status`, `contains`, `json`): `response.failure("...")`'s
    /// or an assert's.
    pub failure: Vec<(String, String)>,
}
