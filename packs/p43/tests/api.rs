//! The EUCORA API contract of `docs/target-api.md`, over real loopback sockets.

use blast_p43::{Eucora, PLANES, SEEDED_APPROVALS};
use blast_target::{Config, Server};
use serde_json::{json, Value};
use std::io::{Read, Write};

fn start() -> Server {
    let (config, _) = Eucora::serve_in(Config::default());
    Server::start("127.0.0.1:0".parse().unwrap(), config).unwrap()
}

/// The integrity counts, as `GET /api/v1/integrity/` returns them.
fn integrity(server: &Server) -> Value {
    call(server, "GET", "/api/v1/integrity/", None, None).1
}

/// One request on its own connection; returns the status and the JSON body.
fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut s = std::net::TcpStream::connect(server.addr()).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Token {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let json = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

fn login(server: &Server, user: &str, pass: &str) -> String {
    let (status, body) = call(
        server,
        "POST",
        "/api/v1/auth/token/",
        None,
        Some(json!({"username": user, "password": pass})),
    );
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_string()
}

#[test]
fn auth_is_required_and_bad_credentials_are_refused() {
    let server = start();
    assert_eq!(
        call(&server, "GET", "/api/v1/deployments/", None, None).0,
        401
    );
    assert_eq!(
        call(&server, "GET", "/api/v1/deployments/", Some("forged"), None).0,
        401
    );
    let bad = json!({"username": "loadtest_user", "password": "wrong"});
    assert_eq!(
        call(&server, "POST", "/api/v1/auth/token/", None, Some(bad)).0,
        400
    );
    let token = login(&server, "loadtest_user", "loadtest-pass");
    assert_eq!(
        call(&server, "GET", "/api/v1/deployments/", Some(&token), None).0,
        200
    );
}

#[test]
fn deployments_are_created_listed_fetched_and_remediated() {
    let server = start();
    let t = login(&server, "loadtest_user", "loadtest-pass");
    let new = json!({"app_name": "blast", "version": "2.1.0", "target_ring": "canary"});
    let (status, created) = call(&server, "POST", "/api/v1/deployments/", Some(&t), Some(new));
    assert_eq!(status, 201);
    let id = created["id"].as_u64().unwrap();
    assert_eq!(created["status"], "PENDING_APPROVAL");
    let (status, got) = call(
        &server,
        "GET",
        &format!("/api/v1/deployments/{id}/"),
        Some(&t),
        None,
    );
    assert_eq!((status, &got["app_name"]), (200, &json!("blast")));
    let (_, page) = call(
        &server,
        "GET",
        "/api/v1/deployments/?page_size=5",
        Some(&t),
        None,
    );
    assert_eq!(page["count"], SEEDED_APPROVALS + 1);
    assert_eq!(page["results"].as_array().unwrap().len(), 5);
    assert_eq!(page["results"][0]["id"], id, "newest first");
    assert_eq!(page["next"], 2);
    let missing = call(
        &server,
        "GET",
        "/api/v1/deployments/999999/",
        Some(&t),
        None,
    );
    assert_eq!(missing.0, 404);
    let bad = call(
        &server,
        "POST",
        "/api/v1/deployments/",
        Some(&t),
        Some(json!({"x": 1})),
    );
    assert_eq!(bad.0, 400);
    let (status, _) = call(
        &server,
        "POST",
        &format!("/api/v1/deployments/{id}/remediate/"),
        Some(&t),
        None,
    );
    assert_eq!(status, 202);
    assert_eq!(integrity(&server)["deployments_created"], 1);
    assert_eq!(integrity(&server)["remediations"], 1);
}

#[test]
fn each_approval_is_decided_once_even_under_concurrency() {
    let server = start();
    let t = login(&server, "cab_approver", "cab-pass");
    let (status, pending) = call(
        &server,
        "GET",
        "/api/v1/cab/pending/?page_size=200",
        Some(&t),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(pending["count"], SEEDED_APPROVALS);
    let id = pending["results"][0]["id"].as_u64().unwrap();
    // Eight threads race to decide the same approval: exactly one wins.
    let codes: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (server, t) = (&server, &t);
                let verb = if i % 2 == 0 { "approve" } else { "reject" };
                s.spawn(move || {
                    call(
                        server,
                        "POST",
                        &format!("/api/v1/cab/{id}/{verb}/"),
                        Some(t),
                        None,
                    )
                    .0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 409).count(), 7, "{codes:?}");
    let integrity = integrity(&server);
    assert_eq!(integrity["approvals_decided"], 1);
    assert_eq!(integrity["second_decisions_refused"], 7);
    assert_eq!(integrity["approvals_pending"], SEEDED_APPROVALS - 1);
    assert_eq!(
        call(
            &server,
            "POST",
            "/api/v1/cab/999999/approve/",
            Some(&t),
            None
        )
        .0,
        404
    );
}

#[test]
fn connectors_publish_to_every_plane_and_report_status() {
    let server = start();
    let t = login(&server, "publisher_user", "publisher-pass");
    for plane in PLANES {
        let (status, body) = call(
            &server,
            "POST",
            &format!("/api/v1/connectors/{plane}/publish/"),
            Some(&t),
            Some(json!({"deployment_id": 1})),
        );
        assert_eq!((status, &body["plane"]), (202, &json!(plane)));
    }
    assert_eq!(
        call(
            &server,
            "POST",
            "/api/v1/connectors/mainframe/publish/",
            Some(&t),
            None
        )
        .0,
        404
    );
    let (status, body) = call(&server, "GET", "/api/v1/connectors/status/", Some(&t), None);
    assert_eq!(status, 200);
    for plane in PLANES {
        assert_eq!(body["planes"][plane]["published"], 1, "{body}");
    }
    let (_, integrity) = call(&server, "GET", "/api/v1/integrity/", None, None);
    assert_eq!(integrity["publishes"]["ansible"], 1);
}

#[test]
fn route_latency_applies_to_matching_paths_only() {
    use blast_target::Latency;
    use std::time::{Duration, Instant};
    let config = Config {
        route_latency: vec![(
            "/api/v1/cab/".into(),
            Latency::Fixed(Duration::from_millis(300)),
        )],
        ..Eucora::serve_in(Config::default()).0
    };
    let server = Server::start("127.0.0.1:0".parse().unwrap(), config).unwrap();
    let t = login(&server, "cab_approver", "cab-pass");
    let began = Instant::now();
    assert_eq!(
        call(&server, "GET", "/api/v1/cab/pending/", Some(&t), None).0,
        200
    );
    // A lower bound only: the added delay is a sleep the server must have taken.
    assert!(began.elapsed() >= Duration::from_millis(300));
}
