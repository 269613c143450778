//! Locustfiles translated into scenarios that blast's own parser accepts, and the places that
//! do not translate reported all at once with their lines and columns.

fn fixture(name: &str) -> (String, String) {
    let path = format!("{}/tests/locustfiles/{name}", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&path).unwrap();
    (path, source)
}

/// Asserts that the translated `toml` holds every line of `expected`.
fn contains_all(toml: &str, expected: &[&str]) {
    for line in expected {
        assert!(toml.contains(line), "{line} missing from\n{toml}");
    }
}

fn scenario(toml: &str) -> blast_scenarios::Scenario {
    blast_scenarios::parse("translated.toml", toml).unwrap_or_else(|e| panic!("{e}\n{toml}"))
}

/// `source` translated as `lf.py`, checked to compile as a scenario.
fn translated(source: &str) -> blast_locust::Translation {
    let t = blast_locust::translate("lf.py", source).unwrap_or_else(|e| panic!("{e}"));
    scenario(&t.toml);
    t
}

#[test]
fn the_plans_deployment_user_translates_to_the_profiles_shape() {
    let (path, source) = fixture("deployments.py");
    let t = blast_locust::translate(&path, &source).unwrap();
    let toml = &t.toml;
    contains_all(
        toml,
        &[
            "[[user]] # deployments.py:9 class DeploymentUser",
            "wait_time = \"between(1, 2)\"",
            "headers = { Authorization = \"Token {{token}}\" }",
            "request = \"POST /api/v1/auth/token/\"",
            "capture = { token = \"token\" }",
            "weight = 3",
            "target_ring = \"{{pick lab canary pilot production}}\"",
            "version = \"{{random_int 1 9}}.{{random_int 0 20}}.0\"",
            "capture = { deployment_id = \"id\" }",
            "request = \"GET /api/v1/deployments/?page={{random_int 1 5}}\"",
            "request = \"GET /api/v1/deployments/{{deployment_id}}/\"",
        ],
    );
    let s = scenario(toml);
    assert_eq!(s.name, "deployments");
}

#[test]
fn every_place_that_does_not_translate_is_listed_with_its_line_and_column() {
    let source = r#"
from locust import HttpUser, task, constant
import requests

class Api(HttpUser):
    wait_time = constant(1)

    @task
    def loop(self):
        while True:
            self.client.get("/a")

    @task
    def elsewhere(self):
        requests.get("http://example.com/")
        self.client.get("/b", files={"f": "x"})
"#;
    let failure = blast_locust::translate("lf.py", source).unwrap_err();
    let text = failure.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("lf.py:10:9: while loops inside a task"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("lf.py:15:9: the call requests.get is not supported"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("lf.py:16:31: files= (a multipart upload) is not supported"),
        "{text}"
    );
}

#[test]
fn syntax_errors_old_apis_and_files_without_users_say_so() {
    let e = blast_locust::translate("a.py", "class X(:\n").unwrap_err();
    assert!(e.to_string().starts_with("a.py:1:"), "{e}");
    assert!(e.to_string().contains("syntax error"), "{e}");
    let e = blast_locust::translate(
        "b.py",
        "from locust import HttpLocust\nclass W(HttpLocust):\n    pass\n",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("HttpLocust is Locust's API before 1.0"),
        "{e}"
    );
    let e = blast_locust::translate("c.py", "X = 1\n").unwrap_err();
    assert!(e.to_string().contains("no User class"), "{e}");
    let abstract_only = "from locust import HttpUser, task\nclass B(HttpUser):\n    abstract = True\n    @task\n    def t(self):\n        self.client.get('/')\n";
    let e = blast_locust::translate("d.py", abstract_only).unwrap_err();
    assert!(e.to_string().contains("no User class"), "{e}");
}

#[test]
fn classes_inherit_weights_tasks_tags_and_module_functions() {
    let source = r#"
from locust import FastHttpUser, HttpUser, task, tag, constant_throughput

API = "/api/v1"

def health(user):
    user.client.get(API + "/health", timeout=2.5)

class Base(HttpUser):
    abstract = True
    host = "http://127.0.0.1:8000"
    tasks = {health: 2}

class Reader(Base):
    weight = 3
    wait_time = constant_throughput(2)

    @tag("read")
    @task(4)
    def items(self):
        self.client.get("/items", params={"page": 2, "q": "a b"}, headers={"Accept": "application/json"})

class Writer(Base):
    @task
    def create(self):
        r = self.client.request("post", "/items", data="x=%d&y=%s%%" % (1, "a"), allow_redirects=False)
        item = r.json()["data"][0]["id"]
        self.client.delete("/items/%s" % item)
"#;
    let t = blast_locust::translate("lf.py", source).unwrap();
    let toml = &t.toml;
    let s = scenario(toml);
    assert_eq!(s.host.as_deref(), Some("http://127.0.0.1:8000"), "{toml}");
    contains_all(
        toml,
        &[
            "class = \"Reader\"",
            "weight = 3",
            "wait_time = \"constant_throughput(2)\"",
            "request = \"GET /api/v1/health\"",
            "timeout = \"2500ms\"",
            "tags = [\"read\"]",
            "request = \"GET /items?page=2&q=a+b\"",
            "request = \"POST /items\"",
            "body = \"x=1&y=a%\"",
            "follow_redirects = false",
            "capture = { item = \"data[0].id\" }",
            "[[user.task.step]] # lf.py:28",
            "request = \"DELETE /items/{{item}}\"",
        ],
    );
    assert!(!toml.contains("class = \"Base\""), "{toml}");
}

#[test]
fn catch_response_and_assert_checks_become_success_and_expect() {
    let source = r#"
from locust import task, between
from locust.contrib.fasthttp import FastHttpUser

class Approver(FastHttpUser):
    wait_time = between(0.3, 0.7)

    @task
    def approve(self):
        with self.client.post("/cab/1/approve/", json={"comment": "ok"}, catch_response=True) as r:
            if r.status_code != 201:
                r.failure(f"got {r.status_code}")
            if "approved" not in r.text:
                r.failure("not approved")
            if r.json()["status"] != "approved":
                r.failure("wrong status")

    @task
    def pending(self):
        r = self.client.get("/cab/pending/")
        assert r.status_code in (200, 204), "listing failed"

    @task
    def rest(self):
        with self.rest("PUT", "/items/1", json={"n": 1}) as resp:
            if resp.js["n"] != 1:
                resp.failure("n not kept")
"#;
    let t = translated(source);
    let toml = &t.toml;
    contains_all(
        toml,
        &[
            "wait_time = \"between(0.3, 0.7)\"",
            "success = [201]",
            "expect = { contains = \"approved\", json = { status = \"approved\" } }",
            "success = [200, 204]",
            "request = \"PUT /items/1\"",
            "expect = { json = { n = 1 } }",
            // Each check keeps its message; the f-string's is known only at run time.
            "failure = { contains = \"not approved\", json = \"wrong status\" }",
            "failure = { status = \"listing failed\" }",
            "failure = { json = \"n not kept\" }",
        ],
    );
    assert!(
        t.notes
            .iter()
            .any(|n| n.line == 12 && n.message.contains("run-time values")),
        "{:?}",
        t.notes
    );
}

#[test]
fn helpers_with_arguments_are_inlined_with_their_values() {
    let source = r#"
from locust import HttpUser, task, between

def login(user, username, password="secret-pw"):
    r = user.client.post("/api/v1/auth/token/", json={"username": username, "password": password})
    user.token = r.json()["token"]
    user.client.headers["Authorization"] = f"Token {user.token}"

class Admin(HttpUser):
    wait_time = between(1, 3)

    def on_start(self):
        login(self, "admin")

    def decide(self, approval, verdict):
        self.client.post(f"/api/v1/cab/{approval}/{verdict}/", json={"comment": verdict}, name=f"/api/v1/cab/[id]/{verdict}/")

    @task(3)
    def approve(self):
        self.decide(7, "approve")

    @task
    def reject(self):
        self.decide(approval=8, verdict="reject")
"#;
    let t = translated(source);
    let toml = &t.toml;
    contains_all(
        toml,
        &[
            "json = { username = \"admin\", password = \"secret-pw\" }",
            "capture = { token = \"token\" }",
            "headers = { Authorization = \"Token {{token}}\" }",
            "request = \"POST /api/v1/cab/7/approve/\"",
            "json = { comment = \"approve\" }",
            "name = \"/api/v1/cab/[id]/approve/\"",
            "request = \"POST /api/v1/cab/8/reject/\"",
        ],
    );
}

#[test]
fn a_module_list_that_responses_extend_and_tasks_pop_becomes_a_pool() {
    let (path, source) = fixture("cab.py");
    let t = blast_locust::translate(&path, &source).unwrap();
    let toml = &t.toml;
    scenario(toml);
    contains_all(
        toml,
        &[
            "to_pool = { PENDING = \"results[*].id\" }",
            "take = { approval_id = \"PENDING\" }",
            "request = \"POST /api/v1/cab/{{approval_id}}/approve/\"",
            "request = \"POST /api/v1/cab/{{approval_id}}/reject/\"",
        ],
    );
    assert!(
        t.notes
            .iter()
            .any(|n| n.message.contains("locks are left out")),
        "{:?}",
        t.notes
    );
}

#[test]
fn a_quitting_listener_that_sets_the_exit_code_becomes_criteria() {
    let source = r#"
import logging
from locust import HttpUser, events, task

@events.quitting.add_listener
def _(environment, **kw):
    if environment.stats.total.fail_ratio > 0.01:
        logging.error("Test failed due to failure ratio > 1%")
        environment.process_exit_code = 1
    elif environment.stats.total.avg_response_time > 200:
        environment.process_exit_code = 1
    elif environment.stats.total.get_response_time_percentile(0.999) > 800:
        environment.process_exit_code = 1
    else:
        environment.process_exit_code = 0

@events.test_start.add_listener
def started(environment, **kw):
    print("starting")

class Visitor(HttpUser):
    @task
    def home(self):
        self.client.get("/")
"#;
    let t = blast_locust::translate("lf.py", source).unwrap();
    let s = scenario(&t.toml);
    assert!(
        t.toml
            .contains("criteria = [\"failure_rate<=1%\", \"avg<=200ms\", \"p99.9<=800ms\"]"),
        "{}",
        t.toml
    );
    assert_eq!(s.criteria.len(), 3);
    assert!(
        t.notes
            .iter()
            .any(|n| n.message.contains("event listener started is not run")),
        "{:?}",
        t.notes
    );
}

#[test]
fn a_load_test_shape_is_evaluated_into_stages() {
    let source = r#"
import math
from locust import HttpUser, LoadTestShape, task, constant

class Visitor(HttpUser):
    wait_time = constant(1)
    @task
    def home(self):
        self.client.get("/")

class StagesShape(LoadTestShape):
    """Locust's documented example: a list of stages."""
    stages = [
        {"duration": 10, "users": 10, "spawn_rate": 10},
        {"duration": 30, "users": 50, "spawn_rate": 10},
        {"duration": 40, "users": 20, "spawn_rate": 5},
    ]

    def tick(self):
        run_time = self.get_run_time()
        for stage in self.stages:
            if run_time < stage["duration"]:
                tick_data = (stage["users"], stage["spawn_rate"])
                return tick_data
        return None
"#;
    let t = blast_locust::translate("lf.py", source).unwrap();
    scenario(&t.toml);
    // 0 → 10 in 1 s, hold to 10 s, → 50 at 10/s (4 s), hold to 30 s, → 20 at 5/s (6 s), hold.
    assert!(
        t.toml
            .contains("stages = \"1s:10, 9s:10, 4s:50, 16s:50, 6s:20, 4s:20\""),
        "{}",
        t.toml
    );
    assert!(t.toml.contains("run_time = \"40s\""), "{}", t.toml);

    let step = r#"
import math
from locust import HttpUser, LoadTestShape, task

class Visitor(HttpUser):
    @task
    def home(self):
        self.client.get("/")

class StepLoadShape(LoadTestShape):
    step_time = 30
    step_load = 10
    spawn_rate = 10
    time_limit = 90

    def tick(self):
        run_time = self.get_run_time()
        if run_time > self.time_limit:
            return None
        current_step = math.floor(run_time / self.step_time) + 1
        return (current_step * self.step_load, self.spawn_rate)
"#;
    let t = blast_locust::translate("step.py", step).unwrap();
    scenario(&t.toml);
    // At 90 s the step is still on (90 > 90 is false): a fourth step, for one second.
    assert!(
        t.toml
            .contains("stages = \"1s:10, 29s:10, 1s:20, 29s:20, 1s:30, 29s:30, 1s:40\""),
        "{}",
        t.toml
    );
    assert!(t.toml.contains("run_time = \"91s\""), "{}", t.toml);
    let bad = "from locust import HttpUser, LoadTestShape, task\nclass V(HttpUser):\n    @task\n    def h(self):\n        self.client.get('/')\nclass S(LoadTestShape):\n    def tick(self):\n        return (self.runner.user_count, 1)\n";
    let e = blast_locust::translate("bad.py", bad).unwrap_err();
    assert!(
        e.to_string().contains("bad.py:6:1: LoadTestShape S:"),
        "{e}"
    );
}

#[test]
fn locusts_quickstart_translates_loops_written_out_and_sleeps_as_pauses() {
    let source = r#"
import time
from locust import HttpUser, task, between

class QuickstartUser(HttpUser):
    wait_time = between(1, 5)

    @task
    def hello_world(self):
        self.client.get("/hello")
        self.client.get("/world")

    @task(3)
    def view_items(self):
        for item_id in range(10):
            self.client.get(f"/item?id={item_id}", name="/item")
            time.sleep(1)

    def on_start(self):
        self.client.post("/login", json={"username":"foo", "password":"bar"})
"#;
    let t = blast_locust::translate("quickstart.py", source).unwrap();
    let toml = &t.toml;
    scenario(toml);
    for i in 0..10 {
        assert!(
            toml.contains(&format!("request = \"GET /item?id={i}\"")),
            "{toml}"
        );
    }
    assert_eq!(toml.matches("pause = \"1000ms\"").count(), 10, "{toml}");
    assert_eq!(toml.matches("name = \"/item\"").count(), 10, "{toml}");
    let e =
        blast_locust::translate("q.py", &source.replace("range(10)", "range(1000)")).unwrap_err();
    assert!(e.to_string().contains("too long to write out"), "{e}");
}

#[test]
fn task_sets_nested_inline_sequential_and_interrupted_become_tasksets() {
    let source = r#"
from locust import HttpUser, SequentialTaskSet, TaskSet, between, constant, tag, task

class Browse(TaskSet):
    wait_time = constant(0.5)

    def on_start(self):
        self.client.get("/browse/start")

    @task(3)
    def item(self):
        self.client.get(f"/items/{self.user.item_id}", name="/items/[id]")

    @task
    def leave(self):
        self.interrupt(reschedule=False)

    def on_stop(self):
        self.client.get("/browse/stop")


class Shopper(HttpUser):
    wait_time = between(1, 2)
    tasks = {Browse: 2}

    def on_start(self):
        r = self.client.post("/login", json={"u": "a"})
        self.item_id = r.json()["item"]

    @tag("checkout")
    @task
    class Checkout(SequentialTaskSet):
        @task
        def cart(self):
            self.client.get("/cart")

        @task
        def pay(self):
            self.client.post("/pay", data={"card": "4242 4242", "cvc": "123"})
            self.interrupt()
"#;
    let t = blast_locust::translate("lf.py", source).unwrap();
    let toml = &t.toml;
    let s = scenario(toml);
    assert_eq!(s.classes(), [("Shopper", 1)]);
    contains_all(
        toml,
        &[
            "[[user.task]] # lf.py:24 class Browse\ntask = \"Browse\"\nweight = 2\ntaskset = \"Browse\"",
            "[[user.task]] # lf.py:32 class Checkout\ntask = \"Checkout\"\ntaskset = \"Shopper.Checkout\"",
            "[[taskset]] # lf.py:4 class Browse\nname = \"Browse\"\nwait_time = \"constant(0.5)\"",
            "\n[[taskset.on_start]] # lf.py:8\nrequest = \"GET /browse/start\"",
            // self.user.item_id is the user's captured item_id.
            "request = \"GET /items/{{item_id}}\"",
            "[[taskset.task]] # lf.py:15 def leave\ntask = \"leave\"\ninterrupt = true\nreschedule = false",
            "\n[[taskset.on_stop]] # lf.py:19\nrequest = \"GET /browse/stop\"",
            "[[taskset]] # lf.py:32 class Shopper.Checkout\nname = \"Shopper.Checkout\"\nsequential = true",
            // @tag on a task set tags each of its tasks, as Locust's decorator does.
            "task = \"cart\"\ntags = [\"checkout\"]",
            "form = { card = \"4242 4242\", cvc = \"123\" }\n",
            "task = \"pay\"\ntags = [\"checkout\"]\ninterrupt = true\nrequest = \"POST /pay\"",
        ],
    );
}

#[test]
fn guards_sleeps_counters_auth_and_random_numbers_translate() {
    let source = r#"
import itertools, random, time
from locust import HttpUser, task

ORDER = itertools.count()

class Admin(HttpUser):
    fixed_count = 1

    @task
    def stats(self):
        time.sleep(0.5)
        self.client.get("/admin/stats", auth=("admin", "s3cret"), verify=False)

class Visitor(HttpUser):
    @task
    def visit(self):
        if not self.token:
            r = self.client.post("/login")
            self.token = r.json()["token"]
        if self.token is not None:
            self.client.get(f"/orders/{next(ORDER)}?x={random.random()}&y={random.uniform(5, 2)}")
"#;
    let t = translated(source);
    let toml = &t.toml;
    contains_all(
        toml,
        &[
            "fixed_count = 1",
            "[[user.task.step]]\npause = \"500ms\"\n[[user.task.step]] # lf.py:13\nrequest = \"GET /admin/stats\"",
            "headers = { Authorization = \"Basic YWRtaW46czNjcmV0\" }",
            "request = \"POST /login\"",
            "when = \"not token\"",
            "request = \"GET /orders/{{seq}}?x={{random_float 0 1}}&y={{random_float 2 5}}\"",
            "when = \"token\"",
        ],
    );
    assert!(
        t.notes.iter().any(|n| n.message.contains("--insecure")),
        "{:?}",
        t.notes
    );
}

#[test]
fn constants_come_from_a_module_beside_the_locustfile() {
    let dir = std::env::temp_dir().join(format!("blast-locust-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.py"),
        "config = {\"user\": \"qa\", \"paths\": [\"/a\", \"/b\"]}\nTOKEN = \"abc\"\ndef unused():\n    pass\n",
    )
    .unwrap();
    let source = r#"
import config as cfg
from config import config, TOKEN as T, missing
from locust import HttpUser, task

class U(HttpUser):
    @task
    def t(self):
        self.client.get(config["paths"][1], headers={"X-Token": T, "X-User": cfg.config["user"]})
"#;
    let path = dir.join("locustfile.py");
    let err = blast_locust::translate(path.to_str().unwrap(), source).unwrap_err();
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    assert!(
        err.to_string()
            .contains("locustfile.py:3:40: missing is not a constant of config.py"),
        "{err}"
    );
    let source = source.replace(", missing", "");
    let t = blast_locust::translate(path.to_str().unwrap(), &source).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    scenario(&t.toml);
    contains_all(
        &t.toml,
        &["request = \"GET /b\"\nheaders = { X-Token = \"abc\", X-User = \"qa\" }"],
    );
}

#[test]
fn task_set_constructs_that_cannot_run_say_where_and_why() {
    let source = r#"
from locust import HttpUser, TaskSet, task

class S(TaskSet):
    @task
    def a(self):
        if self.token:
            self.interrupt()

    @task
    def b(self):
        self.interrupt()
        self.client.get("/after")

class U(HttpUser):
    tasks = [S]

    @task
    def c(self):
        self.client.get("/c")
        self.interrupt()

    def on_stop(self):
        self.client.get("/bye")
"#;
    let err = blast_locust::translate("lf.py", source)
        .unwrap_err()
        .to_string();
    for expected in [
        "lf.py:7:9: self.interrupt() inside an if does not translate",
        "lf.py:13:9: nothing after self.interrupt() runs",
        "lf.py:19:5: self.interrupt() leaves a TaskSet",
        "lf.py:23:5: a user's on_stop is not supported",
    ] {
        assert!(err.contains(expected), "{expected} missing from\n{err}");
    }
}

#[test]
fn an_abstract_base_without_tasks_is_only_a_base() {
    let source = "from locust import HttpUser, task\nclass Base(HttpUser):\n    abstract = True\n    host = 'http://127.0.0.1:1'\nclass U(Base):\n    @task\n    def t(self):\n        self.client.get('/')\n";
    let t = blast_locust::translate("lf.py", source).unwrap();
    assert_eq!(scenario(&t.toml).classes(), [("U", 1)]);
}
