//! The EUCORA deployment API, in memory: token auth, deployments, CAB approvals, connectors.
//!
//! The contract is written down in `docs/target-api.md`; the P4.3 profiles follow it. State
//! is behind one mutex per collection, held only for a map operation, so concurrent users see
//! exactly-once semantics (a CAB approval is decided once; a second decision gets 409).

use blast_target::{App, Config};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The three test users of the plan, with their passwords.
pub const USERS: [(&str, &str); 3] = [
    ("loadtest_user", "loadtest-pass"),
    ("cab_approver", "cab-pass"),
    ("publisher_user", "publisher-pass"),
];

/// The five execution planes a connector can publish to.
pub const PLANES: [&str; 5] = ["intune", "jamf", "sccm", "landscape", "ansible"];

/// CAB approvals pending when the target starts (the plan wants 100+).
pub const SEEDED_APPROVALS: u64 = 150;

/// CAB approvals kept pending by default: the plan's "100+ approvals pending".
pub const CAB_BACKLOG: u64 = 100;

/// Deployments kept in memory; older ones are forgotten (and their approvals expire) so a long
/// burst cannot exhaust memory. Counts are kept regardless.
const MAX_DEPLOYMENTS: usize = 200_000;

/// Default page size of paginated lists.
const PAGE_SIZE: usize = 20;
/// Largest page size a client may ask for.
const MAX_PAGE_SIZE: usize = 500;

#[derive(Debug)]
struct Deployment {
    app_name: String,
    version: String,
    target_ring: String,
    status: &'static str,
}

/// The EUCORA API and its state; serve it with [`blast_target::Config::apps`].
#[derive(Debug)]
pub struct Eucora {
    tokens: Mutex<HashMap<String, &'static str>>,
    deployments: Mutex<BTreeMap<u64, Deployment>>,
    pending: Mutex<BTreeMap<u64, ()>>,
    next_id: AtomicU64,
    next_token: AtomicU64,
    approved: AtomicU64,
    rejected: AtomicU64,
    refused_second: AtomicU64,
    remediations: AtomicU64,
    publishes: [AtomicU64; 5],
    /// Approvals kept pending by deployments "from other teams" (see [`Eucora::new`]).
    backlog_floor: u64,
    submitted_by_others: AtomicU64,
}

impl Eucora {
    /// `config` with a fresh API (keeping [`CAB_BACKLOG`] approvals pending) served under
    /// `/api/v1/`, as blast's built-in target serves it; and that API, to read its counts.
    pub fn serve_in(mut config: Config) -> (Config, Arc<Eucora>) {
        let api = Arc::new(Eucora::new(CAB_BACKLOG));
        config.apps.push(api.clone());
        (config, api)
    }

    /// A fresh API with [`SEEDED_APPROVALS`] deployments waiting for CAB approval. Whenever
    /// decisions leave fewer than `backlog_floor` pending, new deployments from other teams
    /// arrive, as in a live system, so the CAB backlog never runs dry under load.
    pub fn new(backlog_floor: u64) -> Eucora {
        let api = Eucora {
            tokens: Mutex::new(HashMap::new()),
            deployments: Mutex::new(BTreeMap::new()),
            pending: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            next_token: AtomicU64::new(1),
            approved: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            refused_second: AtomicU64::new(0),
            remediations: AtomicU64::new(0),
            publishes: Default::default(),
            backlog_floor,
            submitted_by_others: AtomicU64::new(0),
        };
        for i in 0..SEEDED_APPROVALS {
            api.create(format!("seeded-app-{i}"), "1.0.0".into(), "pilot".into());
        }
        api
    }

    fn create(&self, app_name: String, version: String, target_ring: String) -> (u64, Value) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let d = Deployment {
            app_name,
            version,
            target_ring,
            status: "PENDING_APPROVAL",
        };
        let body = deployment_json(id, &d);
        let forgotten = {
            let mut all = lock(&self.deployments);
            all.insert(id, d);
            (all.len() > MAX_DEPLOYMENTS).then(|| all.pop_first().map(|(old, _)| old))
        };
        let mut pending = lock(&self.pending);
        pending.insert(id, ());
        if let Some(Some(old)) = forgotten {
            pending.remove(&old);
        }
        (id, body)
    }

    /// Tops the pending approvals up to the backlog floor.
    fn refill(&self) {
        while (lock(&self.pending).len() as u64) < self.backlog_floor {
            let n = self.submitted_by_others.fetch_add(1, Ordering::Relaxed);
            self.create(format!("team-app-{n}"), "1.0.0".into(), "pilot".into());
        }
    }

    /// Counts for checking the run's integrity: what was created, decided, refused, published.
    pub fn integrity(&self) -> Value {
        let publishes: serde_json::Map<String, Value> = PLANES
            .iter()
            .zip(&self.publishes)
            .map(|(p, n)| (p.to_string(), json!(n.load(Ordering::Relaxed))))
            .collect();
        let approved = self.approved.load(Ordering::Relaxed);
        let rejected = self.rejected.load(Ordering::Relaxed);
        let others = self.submitted_by_others.load(Ordering::Relaxed);
        json!({
            "deployments_created": self.next_id.load(Ordering::Relaxed) - 1 - SEEDED_APPROVALS - others,
            "seeded_approvals": SEEDED_APPROVALS,
            "submitted_by_other_teams": others,
            "approvals_pending": lock(&self.pending).len(),
            "approvals_decided": approved + rejected,
            "approvals_approved": approved,
            "approvals_rejected": rejected,
            "second_decisions_refused": self.refused_second.load(Ordering::Relaxed),
            "remediations": self.remediations.load(Ordering::Relaxed),
            "publishes": publishes,
        })
    }

    fn authenticate(&self, req: &Request<Bytes>) -> Option<&'static str> {
        let header = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
        let token = header.strip_prefix("Token ")?;
        lock(&self.tokens).get(token.trim()).copied()
    }

    fn login(&self, body: &[u8]) -> Response<Full<Bytes>> {
        let creds: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let (user, pass) = (creds["username"].as_str(), creds["password"].as_str());
        let Some((name, _)) = USERS
            .iter()
            .find(|(u, p)| Some(*u) == user && Some(*p) == pass)
        else {
            return detail(
                StatusCode::BAD_REQUEST,
                "Unable to log in with provided credentials.",
            );
        };
        let n = self.next_token.fetch_add(1, Ordering::Relaxed);
        let token = format!("{:016x}{:016x}", n, fastrand::u64(..));
        lock(&self.tokens).insert(token.clone(), name);
        reply(StatusCode::OK, json!({ "token": token }))
    }

    fn create_deployment(&self, body: &[u8]) -> Response<Full<Bytes>> {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return detail(StatusCode::BAD_REQUEST, "Body must be a JSON object.");
        };
        let field = |k: &str| v[k].as_str().map(str::to_string);
        let (Some(app), Some(version)) = (field("app_name"), field("version")) else {
            return detail(
                StatusCode::BAD_REQUEST,
                "app_name and version are required.",
            );
        };
        let ring = field("target_ring").unwrap_or_else(|| "pilot".into());
        let (_, body) = self.create(app, version, ring);
        reply(StatusCode::CREATED, body)
    }

    fn list_deployments(&self, query: &str) -> Response<Full<Bytes>> {
        let (page, size) = paging(query);
        let all = lock(&self.deployments);
        // Newest first, as a deployment dashboard lists them.
        let results: Vec<Value> = all
            .iter()
            .rev()
            .skip((page - 1) * size)
            .take(size)
            .map(|(id, d)| deployment_json(*id, d))
            .collect();
        reply(StatusCode::OK, page_json(all.len(), page, size, results))
    }

    fn get_deployment(&self, id: &str) -> Response<Full<Bytes>> {
        let found = id.parse::<u64>().ok().and_then(|id| {
            lock(&self.deployments)
                .get(&id)
                .map(|d| deployment_json(id, d))
        });
        match found {
            Some(body) => reply(StatusCode::OK, body),
            None => not_found(),
        }
    }

    fn remediate(&self, id: &str) -> Response<Full<Bytes>> {
        let Some(id) = id.parse::<u64>().ok() else {
            return not_found();
        };
        if !lock(&self.deployments).contains_key(&id) {
            return not_found();
        }
        self.remediations.fetch_add(1, Ordering::Relaxed);
        reply(
            StatusCode::ACCEPTED,
            json!({ "id": id, "status": "REMEDIATION_QUEUED" }),
        )
    }

    fn list_pending(&self, query: &str) -> Response<Full<Bytes>> {
        let (page, size) = paging(query);
        let (count, ids): (usize, Vec<u64>) = {
            let pending = lock(&self.pending);
            let ids = pending.keys().skip((page - 1) * size).take(size);
            (pending.len(), ids.copied().collect())
        };
        let deployments = lock(&self.deployments);
        let results = ids
            .iter()
            .filter_map(|id| deployments.get(id).map(|d| approval_json(*id, d)))
            .collect();
        reply(StatusCode::OK, page_json(count, page, size, results))
    }

    fn decide(&self, id: &str, approve: bool) -> Response<Full<Bytes>> {
        let Some(id) = id.parse::<u64>().ok() else {
            return not_found();
        };
        let mut deployments = lock(&self.deployments);
        let Some(d) = deployments.get_mut(&id) else {
            return not_found();
        };
        // Removing from the pending set is the decision: only one caller can succeed.
        if lock(&self.pending).remove(&id).is_none() {
            self.refused_second.fetch_add(1, Ordering::Relaxed);
            return detail(
                StatusCode::CONFLICT,
                "This approval has already been decided.",
            );
        }
        let (status, counter) = if approve {
            ("APPROVED", &self.approved)
        } else {
            ("REJECTED", &self.rejected)
        };
        d.status = status;
        counter.fetch_add(1, Ordering::Relaxed);
        drop(deployments);
        self.refill();
        reply(StatusCode::OK, json!({ "id": id, "decision": status }))
    }

    fn publish(&self, plane: &str) -> Response<Full<Bytes>> {
        let Some(i) = PLANES.iter().position(|p| *p == plane) else {
            return detail(StatusCode::NOT_FOUND, "Unknown execution plane.");
        };
        let job = self.publishes[i].fetch_add(1, Ordering::Relaxed) + 1;
        reply(
            StatusCode::ACCEPTED,
            json!({ "plane": plane, "job_id": format!("{plane}-{job}"), "status": "QUEUED" }),
        )
    }

    fn connector_status(&self) -> Response<Full<Bytes>> {
        let planes: serde_json::Map<String, Value> = PLANES
            .iter()
            .zip(&self.publishes)
            .map(|(p, n)| {
                let published = n.load(Ordering::Relaxed);
                (
                    p.to_string(),
                    json!({ "status": "healthy", "published": published }),
                )
            })
            .collect();
        reply(StatusCode::OK, json!({ "planes": planes }))
    }
}

impl App for Eucora {
    fn prefix(&self) -> &str {
        "/api/v1/"
    }

    fn handle(&self, req: Request<Bytes>) -> Response<Full<Bytes>> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let user = self.authenticate(&req);
        let body = req.into_body();
        let segments: Vec<&str> = path
            .trim_start_matches("/api/v1/")
            .trim_end_matches('/')
            .split('/')
            .collect();
        match (&method, segments.as_slice()) {
            (&Method::POST, ["auth", "token"]) => self.login(&body),
            (&Method::GET, ["integrity"]) => reply(StatusCode::OK, self.integrity()),
            _ if user.is_none() => detail(
                StatusCode::UNAUTHORIZED,
                "Authentication credentials were not provided.",
            ),
            (&Method::POST, ["deployments"]) => self.create_deployment(&body),
            (&Method::GET, ["deployments"]) => self.list_deployments(&query),
            (&Method::GET, ["deployments", id]) => self.get_deployment(id),
            (&Method::POST, ["deployments", id, "remediate"]) => self.remediate(id),
            (&Method::GET, ["cab", "pending"]) => self.list_pending(&query),
            (&Method::POST, ["cab", id, decision @ ("approve" | "reject")]) => {
                self.decide(id, decision == &"approve")
            }
            (&Method::POST, ["connectors", plane, "publish"]) => self.publish(plane),
            (&Method::GET, ["connectors", "status"]) => self.connector_status(),
            _ => not_found(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a lock cannot leave these maps half-updated: keep serving.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn deployment_json(id: u64, d: &Deployment) -> Value {
    json!({
        "id": id,
        "app_name": d.app_name,
        "version": d.version,
        "target_ring": d.target_ring,
        "status": d.status,
        "approval_id": id,
    })
}

fn approval_json(id: u64, d: &Deployment) -> Value {
    json!({ "id": id, "deployment_id": id, "app_name": d.app_name, "status": "PENDING" })
}

fn page_json(count: usize, page: usize, size: usize, results: Vec<Value>) -> Value {
    let last = count.div_ceil(size).max(1);
    json!({
        "count": count,
        "page": page,
        "next": (page < last).then(|| page + 1),
        "previous": (page > 1).then(|| page - 1),
        "results": results,
    })
}

/// `page` (from 1) and `page_size` from a query string, with defaults and bounds.
fn paging(query: &str) -> (usize, usize) {
    let mut page = 1;
    let mut size = PAGE_SIZE;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("page", v)) => page = v.parse().unwrap_or(1).max(1),
            Some(("page_size", v)) => size = v.parse().unwrap_or(PAGE_SIZE).clamp(1, MAX_PAGE_SIZE),
            _ => {}
        }
    }
    (page, size)
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn detail(status: StatusCode, why: &str) -> Response<Full<Bytes>> {
    reply(status, json!({ "detail": why }))
}

/// DRF's 404 for an unknown route or object.
fn not_found() -> Response<Full<Bytes>> {
    detail(StatusCode::NOT_FOUND, "Not found.")
}
