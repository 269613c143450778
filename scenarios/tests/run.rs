//! Runs scenarios through the engine against the reference target over loopback sockets and
//! checks what the users did: task mix, captures, cookies, pools, stages, criteria.

use blast_engine::{Client, Engine, FailureClass, Plan, Report, Schedule, Target};
use blast_scenarios::{parse, Criterion, Load, Scenario, ScenarioScript};
use blast_target::{Config, Server};
use std::time::Duration;

fn serve() -> Server {
    Server::start("127.0.0.1:0".parse().unwrap(), Config::default()).unwrap()
}

fn scenario(source: &str) -> Scenario {
    parse("test.toml", source).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `scenario` with `schedule` for `run_time`; returns the report and the script.
fn run_with(
    server: &Server,
    scenario: &Scenario,
    schedule: Schedule,
    run_time: Duration,
) -> (Report, ScenarioScript) {
    run_on(server, scenario, schedule, run_time, Client::Raw)
}

fn run_on(
    server: &Server,
    scenario: &Scenario,
    schedule: Schedule,
    run_time: Duration,
    client: Client,
) -> (Report, ScenarioScript) {
    let (target, _) = Target::parse(&server.url()).unwrap();
    let script = scenario.script(&target);
    let mut plan = Plan::new(target, script.clone(), schedule);
    plan.client = client;
    plan.workers = 2;
    // Tests run side by side; pinning them all to the same cores would only slow them down.
    plan.pin = false;
    plan.run_time = run_time;
    plan.interval = Duration::from_millis(100);
    let report = Engine::new(plan).unwrap().run(|_| {}).unwrap();
    (report, script)
}

fn run(server: &Server, scenario: &Scenario, users: u64) -> (Report, ScenarioScript) {
    run_with(
        server,
        scenario,
        Schedule::users(users),
        Duration::from_millis(800),
    )
}

fn count(report: &Report, name: &str) -> (u64, u64, u64) {
    let c = counters(report, name);
    (c.ok, c.failed(), c.skipped)
}

#[test]
fn user_classes_split_by_weight() {
    let server = serve();
    let s = scenario(
        r#"
        [[user]]
        class = "A"
        weight = 3
        wait_time = "constant(10)"
        [[user.task]]
        request = "GET /status/200"
        [[user]]
        class = "B"
        wait_time = "constant(10)"
        [[user.task]]
        request = "GET /status/201"
        "#,
    );
    // Each user sends one request and rests: requests count users per class.
    let (report, _) = run(&server, &s, 8);
    assert_eq!(count(&report, "/status/200").0, 6);
    assert_eq!(count(&report, "/status/201").0, 2);
}

#[test]
fn a_failed_capture_fails_the_request_and_ends_the_task() {
    let server = serve();
    let s = scenario(
        r#"
        [[user]]
        class = "U"
        [[user.task]]
        [[user.task.step]]
        request = "GET /cookies"
        capture = { nope = "no_such_field" }
        [[user.task.step]]
        request = "GET /status/{{nope}}"
        "#,
    );
    let (report, _) = run(&server, &s, 2);
    let n = &report.names[0].stats.counters;
    assert!(n.failures_of(blast_engine::FailureClass::Capture) > 0);
    assert_eq!(n.ok, 0);
    assert_eq!(report.names[1].stats.counters.requests(), 0);
    // The failure says which variable and which path.
    let reasons: Vec<&String> = n.reasons.keys().map(|(_, r)| r).collect();
    assert_eq!(
        reasons,
        ["CaptureError(\"nope: nothing at no_such_field in the response\")"],
        "{n:?}"
    );
}

#[test]
fn cookies_set_by_the_target_are_sent_back_per_user() {
    let server = serve();
    let s = scenario(
        r#"
        [[user]]
        class = "Browser"
        [[user.on_start]]
        request = "GET /cookies/set/session/u{{user_id}}"
        name = "/cookies/set/session/[user]"
        [[user.task]]
        [[user.task.step]]
        request = "GET /cookies"
        capture = { session = "cookies.session" }
        [[user.task.step]]
        request = "GET /cookies/set/seen/{{session}}"
        name = "/cookies/set/seen/[session]"
        "#,
    );
    let (report, _) = run(&server, &s, 3);
    assert_eq!(
        report.total.counters.failed(),
        0,
        "{:?}",
        report.total.counters
    );
    assert!(count(&report, "/cookies").0 > 0);
}

#[test]
fn an_empty_pool_skips_the_task_without_failing() {
    let server = serve();
    let s = scenario(
        r#"
        [[user]]
        class = "Lonely"
        [[user.task]]
        take = { id = "never_filled_in_time" }
        request = "GET /status/{{id}}"
        name = "approve"
        [[user.task]]
        weight = 1
        request = "GET /cookies"
        to_pool = { never_filled_in_time = "nothing_here[*]" }
        "#,
    );
    let (report, _) = run(&server, &s, 2);
    let (ok, failed, skipped) = count(&report, "approve");
    assert_eq!((ok, failed), (0, 0));
    assert!(skipped > 0);
    assert_eq!(report.total.counters.failed(), 0);
}

#[test]
fn users_follow_the_stages_up_and_down() {
    let server = serve();
    let s = scenario(
        r#"
        [[user]]
        class = "U"
        wait_time = "constant(0.01)"
        [[user.task]]
        request = "GET /"
        "#,
    );
    let load = Load {
        stages: Some(blast_scenarios::parse_stages("500ms:12, 500ms:12, 500ms:0").unwrap()),
        ..Load::default()
    };
    let (schedule, run_time) = load.resolve(None, 100).unwrap();
    let (report, _) = run_with(&server, &s, schedule, run_time);
    let users: Vec<u64> = report.history.iter().map(|h| h.users).collect();
    let peak = *users.iter().max().unwrap();
    assert_eq!(peak, 12, "{users:?}");
    let at_peak = users.iter().position(|&u| u == peak).unwrap();
    assert!(
        users[..at_peak].windows(2).all(|w| w[0] <= w[1]),
        "ramp up: {users:?}"
    );
    assert!(*users.last().unwrap() < peak, "ramp down: {users:?}");
}

#[test]
fn criteria_are_judged_on_the_finished_run() {
    let server = serve();
    let s = scenario(
        r#"
        [[user]]
        class = "U"
        [[user.task]]
        request = "GET /"
        [[user.task]]
        request = "GET /status/503"
        name = "broken"
        "#,
    );
    let (report, _) = run(&server, &s, 2);
    let judge = |c: &str| Criterion::parse(c).unwrap().evaluate(&report).pass;
    assert!(judge("requests>0"));
    assert!(judge("/:success>=100%"));
    assert!(judge("broken:status503>0"));
    assert!(judge("broken:failure_rate==100%"));
    assert!(!judge("failures==0"));
    assert!(!judge("p99<1us"));
    assert!(
        !judge("rps>=1 for 1h"),
        "a window longer than the run cannot hold"
    );
    assert!(judge("rps>=1 for 300ms"));
}

/// The counters of one stats name.
fn counters<'a>(report: &'a Report, name: &str) -> &'a blast_engine::Counters {
    &report
        .names
        .iter()
        .find(|n| n.name.name == name)
        .unwrap_or_else(|| panic!("no name {name}"))
        .stats
        .counters
}

#[test]
fn redirects_are_followed_under_the_first_requests_name() {
    let server = serve();
    let s = scenario(
        r#"
        [[user]]
        class = "Redirected"
        wait_time = "constant(0.05)"
        [[user.task]]
        [[user.task.step]]
        request = "GET /redirect/3"
        name = "chain"
        [[user.task.step]]
        request = "POST /redirect-to?url=%2Fonly-get&status_code=303"
        name = "303 after POST"
        json = { a = 1 }
        [[user.task.step]]
        request = "POST /redirect-to?url=%2Fecho&status_code=307"
        name = "307 keeps the body"
        json = { kept = 7 }
        capture = { kept = "kept" }
        [[user.task.step]]
        request = "GET /redirect/1"
        name = "not followed"
        follow_redirects = false
        success = [302]
        "#,
    );
    for client in [Client::Raw, Client::Hyper] {
        let (report, _) = run_on(
            &server,
            &s,
            Schedule::users(2),
            Duration::from_millis(600),
            client,
        );
        let chain = counters(&report, "chain");
        assert!(chain.ok > 0 && chain.failed() == 0, "{client:?}: {chain:?}");
        // Three hops per finished request; one stopped midway may have made one to three.
        let hops = chain.redirects - 3 * chain.ok;
        assert!(hops <= 3 * chain.cancelled, "{client:?}: {chain:?}");
        for name in ["303 after POST", "307 keeps the body"] {
            let c = counters(&report, name);
            assert!(c.ok > 0 && c.failed() == 0, "{client:?} {name}: {c:?}");
            // A request stopped between its hops counts as cancelled, once.
            assert_eq!(c.redirects, c.ok + c.cancelled, "{client:?} {name}: {c:?}");
        }
        let c = counters(&report, "not followed");
        assert!(c.ok > 0 && c.failed() == 0 && c.redirects == 0, "{c:?}");
    }
}

#[test]
fn redirects_that_leave_the_origin_or_loop_fail_with_their_reason() {
    let server = serve();
    let s = scenario(
        r#"
        [[user]]
        class = "Lost"
        wait_time = "constant(0.05)"
        [[user.task]]
        [[user.task.step]]
        request = "GET /redirect-to?url=http%3A%2F%2Fexample.com%2Fx"
        name = "away"
        [[user.task]]
        [[user.task.step]]
        request = "GET /redirect/12"
        name = "loop"
        [[user.task]]
        [[user.task.step]]
        request = "POST /redirect-to?url=%2Fonly-get&status_code=307"
        name = "307 to a GET-only page"
        "#,
    );
    let (report, _) = run_with(&server, &s, Schedule::users(2), Duration::from_millis(600));
    let away = counters(&report, "away");
    assert!(
        away.ok == 0 && away.failures_of(FailureClass::Redirect) > 0,
        "{away:?}"
    );
    let reason = away.reasons.keys().next().unwrap();
    assert_eq!(reason.0, FailureClass::Redirect);
    assert!(reason.1.contains("http://example.com/x"), "{reason:?}");
    let looped = counters(&report, "loop");
    assert!(looped.ok == 0 && looped.failed() > 0, "{looped:?}");
    assert!(looped
        .reasons
        .keys()
        .all(|(_, r)| r.contains("Exceeded 10 redirects")));
    // Ten hops before each failure; a request stopped midway made fewer.
    let extra = looped.redirects - 10 * looped.failed();
    assert!(extra <= 10 * looped.cancelled, "{looped:?}");
    // 307 keeps the POST, which the page refuses.
    let post = counters(&report, "307 to a GET-only page");
    assert_eq!(post.failed_statuses.keys().collect::<Vec<_>>(), [&405]);
}

#[test]
fn gzip_bodies_are_decoded_before_captures() {
    let server = serve();
    let s = scenario(
        r#"
        [[user]]
        class = "Compressed"
        wait_time = "constant(0.05)"
        [[user.task]]
        [[user.task.step]]
        request = "GET /gzip"
        headers = { Accept-Encoding = "gzip, deflate" }
        capture = { id = "id" }
        [[user.task.step]]
        request = "GET /status/20{{id}}"
        name = "/status/20[id]"
        "#,
    );
    for client in [Client::Raw, Client::Hyper] {
        let (report, _) = run_on(
            &server,
            &s,
            Schedule::users(2),
            Duration::from_millis(500),
            client,
        );
        let gz = counters(&report, "/gzip");
        assert!(gz.ok > 0 && gz.failed() == 0, "{client:?}: {gz:?}");
        let next = counters(&report, "/status/20[id]");
        // Each of the 2 users may have stopped between the two steps.
        assert!(
            next.ok <= gz.ok && gz.ok - next.ok <= 2,
            "{client:?}: {next:?}"
        );
        assert!(next.ok > 0 && next.failed() == 0, "{client:?}: {next:?}");
    }
}

#[test]
fn a_slow_ramp_up_is_its_own_phase_and_steady_criteria_judge_the_rest() {
    // The target holds every request of its first 1.5 s; the users ramp up over 2 s.
    let server = Server::start(
        "127.0.0.1:0".parse().unwrap(),
        Config {
            stall: Some(blast_target::Stall {
                after: Duration::ZERO,
                duration: Duration::from_millis(1500),
            }),
            ..Config::default()
        },
    )
    .unwrap();
    let s = scenario(
        r#"
        [[user]]
        class = "Steady"
        wait_time = "constant(0.02)"
        [[user.task]]
        request = "GET /"
        "#,
    );
    let schedule = Schedule::Closed {
        users: blast_engine::Shape::ramp(4.0, 2.0),
    };
    let (report, _) = run_with(&server, &s, schedule, Duration::from_secs(5));
    let kinds: Vec<&str> = report.phases.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(kinds, ["ramp-up", "steady"]);
    let judge = |text: &str| Criterion::parse(text).unwrap().evaluate(&report).pass;
    // A handful of held requests among thousands: the maximum shows them.
    assert!(!judge("max<1s"), "the whole run includes the held requests");
    // And it says where: the interval in which the held requests ended, about 1.5 s in.
    let failing = Criterion::parse("max<1s")
        .unwrap()
        .evaluate(&report)
        .failing;
    assert!(
        !failing.is_empty()
            && failing
                .iter()
                .all(|&(start, end)| start >= 1.0 && end <= 3.5),
        "{failing:?}"
    );
    assert!(!judge("max<1s in ramp-up"));
    assert!(judge("max<1s in steady"));
    assert!(judge("rps>=10 in steady"));
    let steady = &report.phases[1].stats.counters;
    let ramp = &report.phases[0].stats.counters;
    assert_eq!(
        steady.requests() + ramp.requests(),
        report.total.counters.requests()
    );
}

#[test]
fn phase_criteria_parse_and_refuse_what_they_cannot_judge() {
    assert!(Criterion::parse("p99<500ms in steady").is_ok());
    assert!(Criterion::parse("failure_rate<1% in ramp-down").is_ok());
    for bad in [
        "p99<500ms in warmup",
        "/api:p99<500ms in steady",
        "rps>=10 for 1m in steady",
    ] {
        assert!(Criterion::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_request_or_class_timeout_overrides_the_runs() {
    let server = Server::start(
        "127.0.0.1:0".parse().unwrap(),
        Config {
            route_latency: vec![(
                "/status/".into(),
                blast_target::Latency::Fixed(Duration::from_millis(400)),
            )],
            ..Config::default()
        },
    )
    .unwrap();
    let s = scenario(
        r#"
        [[user]]
        class = "Impatient"
        timeout = "100ms"
        wait_time = "constant(0.05)"
        [[user.task]]
        request = "GET /status/200"
        name = "class timeout"
        [[user.task]]
        request = "GET /status/201"
        name = "own timeout"
        timeout = "2s"
        [[user.task]]
        request = "GET /"
        name = "fast"
        "#,
    );
    let (report, _) = run_with(&server, &s, Schedule::users(3), Duration::from_millis(1500));
    let timeouts = |name: &str| counters(&report, name).failures_of(FailureClass::Timeout);
    assert!(timeouts("class timeout") > 0);
    assert_eq!(counters(&report, "class timeout").ok, 0);
    assert_eq!(timeouts("own timeout"), 0);
    assert_eq!(timeouts("fast"), 0);
    let bad = parse(
        "t.toml",
        "[[user]]\nclass = \"U\"\ntimeout = \"soon\"\n[[user.task]]\nrequest = \"GET /\"\n",
    );
    assert!(bad.is_err());
}

#[test]
fn body_checks_fail_a_request_with_their_reason_as_catch_response_does() {
    let server = serve();
    let s = scenario(
        r#"
        [[user]]
        class = "Checker"
        wait_time = "constant(0.02)"
        [[user.task]]
        request = "GET /"
        name = "contains"
        expect = { contains = "ok" }
        [[user.task]]
        request = "GET /"
        name = "lacks"
        expect = { contains = "nope" }
        [[user.task]]
        request = "GET /gzip"
        name = "json"
        expect = { json = { "id" = 7, "gzipped" = true } }
        [[user.task]]
        request = "GET /gzip"
        name = "json wrong"
        expect = { json = { "id" = 8 } }
        "#,
    );
    let (report, _) = run(&server, &s, 2);
    for good in ["contains", "json"] {
        let c = counters(&report, good);
        assert!(c.ok > 0 && c.failed() == 0, "{good}: {c:?}");
    }
    for (bad, why) in [
        ("lacks", "CheckError(\"the body lacks \\\"nope\\\"\")"),
        ("json wrong", "CheckError(\"id is 7, expected 8\")"),
    ] {
        let c = counters(&report, bad);
        assert!(
            c.ok == 0 && c.failures_of(FailureClass::Check) > 0,
            "{bad}: {c:?}"
        );
        let reasons: Vec<&String> = c.reasons.keys().map(|(_, r)| r).collect();
        assert_eq!(reasons, [why], "{bad}");
    }
}

#[test]
fn tags_select_tasks_as_locusts_do() {
    let server = serve();
    let source = r#"
        [[user]]
        class = "Tagged"
        wait_time = "constant(0.02)"
        [[user.task]]
        request = "GET /status/200"
        tags = ["read"]
        [[user.task]]
        request = "GET /status/201"
        tags = ["write", "slow"]
        [[user.task]]
        request = "GET /status/202"
        "#;
    let sent = |tags: &[&str], exclude: &[&str]| {
        let mut s = scenario(source);
        let own = |v: &[&str]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        s.select_tags(&own(tags), &own(exclude)).unwrap();
        let (report, _) = run(&server, &s, 2);
        ["/status/200", "/status/201", "/status/202"].map(|n| count(&report, n).0 > 0)
    };
    assert_eq!(sent(&["read"], &[]), [true, false, false]);
    assert_eq!(sent(&[], &["slow"]), [true, false, true]);
    assert_eq!(sent(&["read", "write"], &["slow"]), [true, false, false]);
    let mut none = scenario(source);
    assert!(none.select_tags(&["nope".into()], &[]).is_err());
    // Tags belong to tasks, not to steps.
    assert!(parse(
        "t.toml",
        "[[user]]\nclass = \"U\"\n[[user.task]]\n[[user.task.step]]\nrequest = \"GET /\"\ntags = [\"x\"]\n"
    )
    .is_err());
}

#[test]
fn a_pause_inside_a_task_holds_its_next_request() {
    let server = serve();
    // Each user sends `first`, then pauses 60 s before `second`: in a 0.8 s run, `second` is
    // never sent, and the users do not go on to another task meanwhile. Without the pause
    // they would loop hundreds of times.
    let s = scenario(
        r#"
[[user]]
class = "U"
[[user.task]]
[[user.task.step]]
request = "GET /"
name = "first"
pause = "60s"
[[user.task.step]]
request = "GET /"
name = "second"
"#,
    );
    let (report, _) = run(&server, &s, 3);
    assert_eq!(
        count(&report, "first"),
        (3, 0, 0),
        "one first request per user"
    );
    assert_eq!(count(&report, "second"), (0, 0, 0));
}
