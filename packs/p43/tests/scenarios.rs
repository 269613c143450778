//! The scenario machinery against the plan's EUCORA API over loopback sockets: captures feeding
//! later requests and headers, and pools handing each CAB approval to exactly one user, within
//! one process and across shards (the API refuses a second decision, so the counts prove it).

use blast_engine::{Client, Engine, Plan, Report, Schedule, Target};
use blast_p43::Eucora;
use blast_scenarios::{parse, Scenario, ScenarioScript};
use blast_target::{Config, Server};
use std::sync::Arc;
use std::time::Duration;

fn serve() -> (Server, Arc<Eucora>) {
    let (config, api) = Eucora::serve_in(Config::default());
    let server = Server::start("127.0.0.1:0".parse().unwrap(), config).unwrap();
    (server, api)
}

fn scenario(source: &str) -> Scenario {
    parse("test.toml", source).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `scenario` with `schedule` for `run_time` with `client`; returns the report and script.
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

/// (ok, failed, skipped) of one stats name.
fn count(report: &Report, name: &str) -> (u64, u64, u64) {
    let n = report.names.iter().find(|n| n.name.name == name);
    let c = &n.unwrap_or_else(|| panic!("no name {name}")).stats.counters;
    (c.ok, c.failed(), c.skipped)
}

const CAPTURES: &str = r#"
        [[user]]
        class = "DeploymentUser"
        headers = { Authorization = "Token {{token}}" }
        [[user.on_start]]
        request = "POST /api/v1/auth/token/"
        json = { username = "loadtest_user", password = "loadtest-pass" }
        capture = { token = "token" }
        [[user.task]]
        [[user.task.step]]
        request = "POST /api/v1/deployments/"
        json = { app_name = "app-{{seq}}", version = "1.{{random_int 0 9}}", target_ring = "{{pick a b}}" }
        success = [201]
        capture = { id = "id", ring = "target_ring" }
        [[user.task.step]]
        request = "GET /api/v1/deployments/{{id}}/"
        name = "/api/v1/deployments/[id]/"
        capture = { same = "id" }
        [[user.task.step]]
        request = "POST /api/v1/deployments/{{same}}/remediate/"
        name = "/api/v1/deployments/[id]/remediate/"
        success = [202]
        "#;

#[test]
fn captures_feed_later_requests_and_headers() {
    for client in [Client::Raw, Client::Hyper] {
        captures_work_with(client);
    }
}

fn captures_work_with(client: Client) {
    let (server, api) = serve();
    let s = scenario(CAPTURES);
    let schedule = Schedule::users(4);
    let (report, _) = run_on(&server, &s, schedule, Duration::from_millis(800), client);
    let c = &report.total.counters;
    assert_eq!(c.failed(), 0, "{client:?}: {c:?}");
    let (created, _, _) = count(&report, "/api/v1/deployments/");
    let (fetched, _, _) = count(&report, "/api/v1/deployments/[id]/");
    let (remediated, _, _) = count(&report, "/api/v1/deployments/[id]/remediate/");
    assert_eq!(count(&report, "/api/v1/auth/token/"), (4, 0, 0));
    assert!(created > 0);
    // Every fetch used an id captured from a create; a stop can cut a task between steps.
    assert!(
        created - fetched <= 4 && fetched - remediated <= 4,
        "{created} {fetched} {remediated}"
    );
    let integrity = api.integrity();
    assert_eq!(integrity["deployments_created"], created);
    assert_eq!(integrity["remediations"], remediated);
}

#[test]
fn pools_hand_each_approval_to_exactly_one_of_many_users() {
    let (server, api) = serve();
    // No rest: 64 users race for the same listed ids as fast as the target answers.
    let source = blast_p43::profile_source("cab").unwrap().replace(
        "wait_time = \"between(0.3, 0.7)\"",
        "wait_time = \"constant(0)\"",
    );
    assert!(source.contains("constant(0)"));
    let s = scenario(&source);
    let (report, script) = run_on(
        &server,
        &s,
        Schedule::users(64),
        Duration::from_secs(2),
        Client::Raw,
    );
    let (approved, a_fail, _) = count(&report, "/api/v1/cab/[id]/approve/");
    let (rejected, r_fail, _) = count(&report, "/api/v1/cab/[id]/reject/");
    assert_eq!((a_fail, r_fail), (0, 0));
    assert!(
        approved + rejected > 150,
        "the backlog must outlast the seed"
    );
    let integrity = api.integrity();
    assert_eq!(integrity["second_decisions_refused"], 0);
    assert_eq!(integrity["approvals_decided"], approved + rejected);
    let (_, pool) = &script.pool_counts()[0];
    // Requests cut off at the stop were handed out but never answered.
    let cancelled = report.total.counters.cancelled;
    assert!(pool.taken >= approved + rejected && pool.taken <= approved + rejected + cancelled);
    assert!(
        pool.repeated > 0,
        "listings overlapped, and repeats were refused"
    );
}

#[test]
fn three_shards_share_the_users_and_never_decide_an_approval_twice() {
    let (server, api) = serve();
    // The CAB profile without rests, as three processes would run it against one target.
    let source = blast_p43::profile_source("cab").unwrap().replace(
        "wait_time = \"between(0.3, 0.7)\"",
        "wait_time = \"constant(0)\"",
    );
    let s = scenario(&source);
    let (target, _) = Target::parse(&server.url()).unwrap();
    let shards: Vec<_> = (0..3)
        .map(|index| {
            let script = s.script(&target);
            let mut plan = Plan::new(target.clone(), script.clone(), Schedule::users(32));
            plan.workers = 2;
            plan.pin = false;
            plan.run_time = Duration::from_secs(2);
            plan.interval = Duration::from_millis(100);
            plan.shard = blast_engine::Shard { index, count: 3 };
            let engine = Engine::new(plan).unwrap();
            std::thread::spawn(move || (engine.run(|_| {}).unwrap(), script))
        })
        .collect();
    let results: Vec<(Report, ScenarioScript)> =
        shards.into_iter().map(|t| t.join().unwrap()).collect();
    // 32 users: 11, 11 and 10.
    let peaks: Vec<u64> = results
        .iter()
        .map(|(r, _)| r.history.iter().map(|h| h.users).max().unwrap())
        .collect();
    assert_eq!(peaks, [11, 11, 10]);
    let decided: u64 = results
        .iter()
        .map(|(r, _)| {
            count(r, "/api/v1/cab/[id]/approve/").0 + count(r, "/api/v1/cab/[id]/reject/").0
        })
        .sum();
    let integrity = api.integrity();
    assert_eq!(integrity["second_decisions_refused"], 0, "{integrity}");
    assert_eq!(integrity["approvals_decided"], decided, "{integrity}");
    assert!(decided > 100, "{integrity}");
    // Each shard's pool took only its own share of the listed approvals.
    for (_, script) in &results {
        let (_, pool) = &script.pool_counts()[0];
        assert!(pool.added > 0, "{pool:?}");
    }
}
