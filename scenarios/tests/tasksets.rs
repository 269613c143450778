//! Task sets, pauses and `when` guards, checked by driving one user by hand: every request it
//! writes is answered at once, so the sequence of requests is exactly the user's program.

use blast_engine::{Action, Reply, Script, Target, User, UserId};
use blast_scenarios::parse;
use std::time::Duration;

/// User `index` of the scenario in `source`, alone on one worker.
fn user(source: &str, index: u64) -> Box<dyn User> {
    user_of(source, index, "http://127.0.0.1:9")
}

/// [`user`] of a scenario aimed at `url` (nothing is sent to it).
fn user_of(source: &str, index: u64, url: &str) -> Box<dyn User> {
    let scenario = parse("test.toml", source).unwrap_or_else(|e| panic!("{e}"));
    let (target, _) = Target::parse(url).unwrap();
    scenario.script(&target).user(UserId {
        index,
        worker: 0,
        workers: 1,
        shard: 0,
        shards: 1,
    })
}

/// The first `n` actions of user `index` of the scenario in `source`, as `GET /a` for a request
/// (answered with `status_of` its path and the body `{"token": "t"}`), `pause 1s` and `rest`.
fn actions(source: &str, index: u64, n: usize, status_of: fn(&str) -> u16) -> Vec<String> {
    let mut user = user(source, index);
    let mut out = Vec::new();
    let mut request = Vec::new();
    while out.len() < n {
        request.clear();
        match user.next(&mut request) {
            Action::Send { .. } => {
                let text = String::from_utf8_lossy(&request);
                let line = text.lines().next().unwrap().trim_end_matches(" HTTP/1.1");
                let path = line.split(' ').nth(1).unwrap().to_string();
                out.push(line.to_string());
                let reply = Reply {
                    status: status_of(&path),
                    body: br#"{"token": "t"}"#,
                    truncated: false,
                    set_cookies: &[],
                };
                let _ = user.response(&reply);
            }
            Action::Pause { until } => {
                let left = until.saturating_duration_since(std::time::Instant::now());
                out.push(format!(
                    "pause {}s",
                    (left + Duration::from_millis(500)).as_secs()
                ));
            }
            Action::Rest { .. } => out.push("rest".into()),
        }
    }
    out
}

fn ok(_: &str) -> u16 {
    200
}

#[test]
fn a_sequential_set_runs_its_tasks_in_order_until_one_interrupts() {
    let source = r#"
[[user]]
class = "U"
[[user.task]]
taskset = "Flow"

[[taskset]]
name = "Flow"
sequential = true
[[taskset.on_start]]
request = "GET /enter"
[[taskset.task]]
request = "GET /one"
[[taskset.task]]
weight = 2
request = "GET /two"
[[taskset.task]]
request = "GET /last"
interrupt = true
[[taskset.on_stop]]
request = "GET /leave"
"#;
    assert_eq!(
        actions(source, 0, 16, ok),
        [
            "GET /enter",
            "GET /one",
            "rest",
            "GET /two",
            "rest",
            "GET /last",
            "GET /leave",
            // The class picks its next task at once (Locust's `reschedule=True`): in again.
            "GET /enter",
            "GET /one",
            "rest",
            "GET /two",
            "rest",
            "GET /last",
            "GET /leave",
            "GET /enter",
            "GET /one",
        ]
    );
}

#[test]
fn nested_sets_return_to_the_set_that_entered_them() {
    let source = r#"
[[user]]
class = "U"
[[user.task]]
taskset = "Outer"

[[taskset]]
name = "Outer"
sequential = true
[[taskset.task]]
request = "GET /outer"
[[taskset.task]]
taskset = "Inner"
[[taskset.task]]
interrupt = true
reschedule = false

[[taskset]]
name = "Inner"
sequential = true
[[taskset.task]]
request = "GET /inner"
[[taskset.task]]
interrupt = true
"#;
    assert_eq!(
        actions(source, 0, 8, ok),
        [
            "GET /outer",
            "rest",
            "GET /inner",
            "rest",
            // Inner interrupts: Outer goes on at once with its third task, which leaves
            // Outer with reschedule = false: the class rests before entering again.
            "rest",
            "GET /outer",
            "rest",
            "GET /inner",
        ]
    );
}

#[test]
fn a_failed_request_still_leaves_the_set_after_it() {
    let source = r#"
[[user]]
class = "U"
[[user.task]]
taskset = "S"
[[taskset]]
name = "S"
[[taskset.task]]
interrupt = true
[[taskset.task.step]]
request = "GET /fails"
[[taskset.task.step]]
request = "GET /never"
"#;
    let fails = |path: &str| if path == "/fails" { 500 } else { 200 };
    // Locust's task goes on to `self.interrupt()` after a failed request; blast's stops its
    // requests but still interrupts, so the user is never trapped in the set.
    assert_eq!(
        actions(source, 0, 4, fails),
        ["GET /fails", "GET /fails", "GET /fails", "GET /fails"]
    );
}

#[test]
fn pauses_open_a_task_and_add_up_between_requests() {
    let source = r#"
[[user]]
class = "U"
[[user.on_start]]
pause = "2s"
[[user.on_start]]
request = "GET /login"
[[user.task]]
[[user.task.step]]
pause = "1s"
[[user.task.step]]
request = "GET /a"
[[user.task.step]]
pause = "1s"
[[user.task.step]]
pause = "2s"
[[user.task.step]]
request = "GET /b"
"#;
    assert_eq!(
        actions(source, 0, 7, ok),
        [
            "pause 2s",
            "GET /login",
            "pause 1s",
            "GET /a",
            "pause 3s",
            "GET /b",
            "rest"
        ]
    );
}

#[test]
fn when_sends_a_request_only_while_its_variable_is_set_or_not() {
    let source = r#"
[[user]]
class = "U"
[[user.task]]
[[user.task.step]]
request = "GET /login"
when = "not token"
capture = { token = "token" }
[[user.task.step]]
request = "GET /private"
when = "token"
"#;
    assert_eq!(
        actions(source, 0, 6, ok),
        [
            "GET /login",
            "GET /private",
            "rest",
            "GET /private",
            "rest",
            "GET /private"
        ]
    );
}

#[test]
fn fixed_count_users_come_first_then_the_weighted_classes() {
    let source = r#"
[[user]]
class = "Admin"
fixed_count = 2
[[user.task]]
request = "GET /admin"
[[user]]
class = "Visitor"
[[user.task]]
request = "GET /visit"
"#;
    let first = |index| actions(source, index, 1, ok).remove(0);
    let classes: Vec<String> = (0..5).map(first).collect();
    assert_eq!(
        classes,
        [
            "GET /admin",
            "GET /admin",
            "GET /visit",
            "GET /visit",
            "GET /visit"
        ]
    );
}

#[test]
fn task_set_mistakes_name_their_place() {
    let task = "[[user]]\nclass = \"U\"\n[[user.task]]\n";
    let cases = [
        (
            format!("{task}taskset = \"Nope\"\n"),
            "test.toml:4:11: no [[taskset]] named \"Nope\" (there are: none)",
        ),
        (
            format!("{task}interrupt = true\n"),
            "test.toml:4:13: interrupt leaves a [[taskset]]",
        ),
        (
            format!("{task}taskset = \"A\"\n[[taskset]]\nname = \"A\"\n[[taskset.task]]\ntaskset = \"B\"\n[[taskset]]\nname = \"B\"\n[[taskset.task]]\ntaskset = \"A\"\n"),
            "enters itself",
        ),
        (
            format!("{task}taskset = \"A\"\ntags = [\"x\"]\n[[taskset]]\nname = \"A\"\n[[taskset.task]]\nrequest = \"GET /\"\n"),
            "tags of a task set go on its tasks",
        ),
        (
            format!("{task}request = \"GET /\"\nwhen = \"token\"\n"),
            "test.toml:5:8: when names \"token\", which is never captured",
        ),
        (
            format!("{task}taskset = \"A\"\n[[taskset]]\nname = \"A\"\n"),
            "task set \"A\" has no [[taskset.task]]",
        ),
        (format!("{task}weight = 2\n"), "a task needs request"),
    ];
    for (source, expected) in cases {
        let e = parse("test.toml", &source)
            .err()
            .unwrap_or_else(|| panic!("compiled:\n{source}"))
            .to_string();
        assert!(e.contains(expected), "expected {expected:?} in {e:?}");
    }
}

#[test]
fn form_bodies_are_encoded_and_check_messages_kept_as_locust_shows_them() {
    let source = r#"
[[user]]
class = "U"
[[user.task]]
request = "POST /login"
form = { username = "a b", password = "p&q" }
success = [200]
expect = { contains = "welcome" }
failure = { status = "not logged in", contains = "no welcome" }
"#;
    let mut user = user(source, 0);
    let mut reasons = Vec::new();
    for (status, body) in [(500, ""), (200, "hello"), (200, "welcome")] {
        let mut request = Vec::new();
        while !matches!(user.next(&mut request), Action::Send { .. }) {
            request.clear();
        }
        let text = String::from_utf8(request).unwrap();
        assert!(
            text.contains("content-type: application/x-www-form-urlencoded\r\n"),
            "{text}"
        );
        assert!(
            text.ends_with("\r\n\r\nusername=a+b&password=p%26q"),
            "{text}"
        );
        let reply = Reply {
            status,
            body: body.as_bytes(),
            truncated: false,
            set_cookies: &[],
        };
        let verdict = user.response(&reply);
        reasons.push((verdict.is_ok(), user.failure_reason()));
    }
    assert_eq!(
        reasons,
        [
            (
                false,
                Some("CatchResponseError('not logged in')".to_string())
            ),
            (false, Some("CatchResponseError('no welcome')".to_string())),
            (true, None),
        ]
    );
}

#[test]
fn tasks_are_picked_in_proportion_to_their_weights() {
    let source = r#"
[[user]]
class = "Mixed"
[[user.task]]
weight = 3
request = "GET /heavy"
[[user.task]]
request = "GET /light"
"#;
    // 4,000 picks, driven by hand: a count, not a guess at how many a run would make.
    let sent: Vec<String> = actions(source, 0, 8000, ok)
        .into_iter()
        .filter(|a| a.starts_with("GET"))
        .collect();
    let heavy = sent.iter().filter(|a| *a == "GET /heavy").count() as f64;
    let share = heavy / sent.len() as f64;
    // Six standard errors of a share of 0.75 over n picks: a false alarm 1 in 500 million.
    let allowed = 6.0 * (0.75 * 0.25 / sent.len() as f64).sqrt();
    assert!(
        (share - 0.75).abs() < allowed,
        "share {share} of {}",
        sent.len()
    );
}

#[test]
fn cookies_follow_expiry_path_domain_and_secure() {
    let source = r#"
[[user]]
class = "U"
[[user.task]]
[[user.task.step]]
request = "GET /a/login"
[[user.task.step]]
request = "GET /a/page"
[[user.task.step]]
request = "GET /b"
"#;
    // Not loopback: browsers (and the jar) send Secure cookies to http://127.0.0.1 as to a
    // secure context, but not to a plain http host elsewhere.
    let mut user = user_of(source, 0, "http://10.255.255.1:9");
    let set: Vec<String> = [
        "in_a=1; Path=/a",
        "everywhere=2; Path=/",
        "gone=3; Max-Age=0",
        "old=4; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
        "secure=5; Secure",
        "elsewhere=6; Domain=example.com",
    ]
    .map(String::from)
    .to_vec();
    let mut cookie_lines = Vec::new();
    for i in 0..3 {
        let mut request = Vec::new();
        assert!(matches!(user.next(&mut request), Action::Send { .. }));
        let text = String::from_utf8(request).unwrap();
        let cookie = text
            .lines()
            .find_map(|l| l.strip_prefix("cookie: "))
            .unwrap_or("")
            .to_string();
        cookie_lines.push(cookie);
        let set_cookies: &[String] = if i == 0 { &set } else { &[] };
        let reply = Reply {
            status: 200,
            body: b"",
            truncated: false,
            set_cookies,
        };
        user.response(&reply).unwrap();
    }
    let sorted = |line: &str| {
        let mut v: Vec<&str> = line.split("; ").filter(|s| !s.is_empty()).collect();
        v.sort_unstable();
        v.join("; ")
    };
    assert_eq!(cookie_lines[0], "", "nothing before the login");
    // Under /a: its own cookie and the site-wide one; never the expired, the secure (plain
    // http) or another domain's.
    assert_eq!(sorted(&cookie_lines[1]), "everywhere=2; in_a=1");
    // Elsewhere: only the site-wide one.
    assert_eq!(sorted(&cookie_lines[2]), "everywhere=2");
}
