#!/usr/bin/env python3
"""A bottleneck zoo: one planted cause per run against a real small stack, and what `blast
report` says first.

Three stacks, each from its registry (installed by this script when missing) and started on
127.0.0.1 in a temporary directory:

- gunicorn: a Python WSGI app under gunicorn with PostgreSQL (Debian's `postgresql`, PyPI's
  gunicorn and psycopg2-binary);
- node:     a Node.js HTTP server (Debian's `nodejs`) keeping its data in memory;
- nginx:    Debian's nginx as a reverse proxy in front of the WSGI app under gunicorn.

Each run plants one cause, runs a short blast scenario with `--monitor-pid` on the server that
holds the cause (and `--monitor-postgres` with PostgreSQL), then `blast report` on its record,
and prints the report's first finding:

- cpu:         POST /login hashes the password (PBKDF2, 60,000 rounds) in a loop: CPU-bound
               all run;
- login-storm: every user logs in once when it starts (PBKDF2, 4,000,000 rounds), users
               arriving 4 a second: the logins queue for the CPU, then the run goes on
               with cheap requests (the case that was once called a table scan);
- db-conns:    GET /items/ID opens a database connection per request, holds it for a 50 ms
               query, and PostgreSQL allows 12 connections (9 for applications) to 32 threads;
- leak:        GET /leak keeps 256 KiB per request in the worker (a cache that never evicts);
- growing:     GET /events lists every row of a table that POST /events keeps growing;
- few-workers: GET /slow takes 300 ms and one gunicorn worker with 2 threads serves all:
               it holds them and GET /health waits behind it;
- node-growing: the Node server's GET /events returns a list POST /events keeps growing;
- nginx-upstream: nginx proxies to one gunicorn worker with 2 threads, GET /slow holds them;
- healthy:     GET /health and GET /items/ID (a plain query) with enough connections: the
               control.

    python3 benches/bottleneck_zoo.py [--seconds 30] [--only cpu,leak]

Loopback only; every run is bounded by its run time.
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

APP = r'''
import hashlib, json, os, time
import psycopg2

DSN = os.environ.get("ZOO_DSN", "")
ROUNDS = int(os.environ.get("ZOO_ROUNDS", "60000"))
QUERY_S = float(os.environ.get("ZOO_QUERY_MS", "0")) / 1000
LEAK = []


def db():
    return psycopg2.connect(DSN)


def reply(start, status, body, kind="application/json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    start(status, [("Content-Type", kind), ("Content-Length", str(len(data)))])
    return [data]


def app(environ, start):
    method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
    try:
        if path == "/health":
            return reply(start, "200 OK", {"status": "ok"})
        if path == "/login" and method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            password = environ["wsgi.input"].read(length) or b"secret"
            digest = hashlib.pbkdf2_hmac("sha256", password, b"zoo-salt", ROUNDS)
            return reply(start, "200 OK", {"token": digest.hex()[:32]})
        if path.startswith("/items/"):
            conn = db()
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT name, pg_sleep(%s) FROM items WHERE id = %s",
                                (QUERY_S, int(path.rsplit("/", 1)[1])))
                    row = cur.fetchone()
            finally:
                conn.close()
            return reply(start, "200 OK", {"name": row[0] if row else None})
        if path == "/slow":
            time.sleep(0.3)
            return reply(start, "200 OK", {"slow": True})
        if path == "/leak":
            LEAK.append(bytearray(256 * 1024))
            return reply(start, "200 OK", {"kept": len(LEAK)})
        if path == "/events":
            conn = db()
            try:
                with conn, conn.cursor() as cur:
                    if method == "POST":
                        cur.execute("INSERT INTO events (payload) "
                                    "SELECT md5(random()::text) FROM generate_series(1, 50)")
                        return reply(start, "201 Created", {"added": 50})
                    cur.execute("SELECT id, payload FROM events ORDER BY id")
                    rows = cur.fetchall()
            finally:
                conn.close()
            return reply(start, "200 OK", [{"id": i, "payload": p} for i, p in rows])
        return reply(start, "404 Not Found", {"error": "no such route"})
    except psycopg2.OperationalError as e:
        # What Django answers when the database refuses a connection.
        return reply(start, "503 Service Unavailable", {"error": str(e).strip()})
'''

NODE_APP = r'''
const http = require("http");
const events = [];
http.createServer((req, res) => {
  const send = (status, body) => {
    res.writeHead(status, {"Content-Type": "application/json"});
    res.end(JSON.stringify(body));
  };
  if (req.url === "/health") return send(200, {status: "ok"});
  if (req.url === "/events" && req.method === "POST") {
    for (let i = 0; i < 50; i++) events.push({id: events.length, payload: Math.random().toString(36)});
    return send(201, {added: 50});
  }
  if (req.url === "/events") return send(200, events);
  send(404, {error: "no such route"});
}).listen(Number(process.argv[2]), "127.0.0.1", () => console.log("listening"));
'''

NGINX_CONF = """
worker_processes 1;
error_log {tmp}/nginx-error.log;
pid {tmp}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream app {{ server {upstream}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""

# Each run: the scenario (users, wait, requests), gunicorn's workers and threads, PostgreSQL's
# max_connections, and the cause the report's first finding must name.
RUNS = {
    "cpu": dict(
        expect="short of CPU", workers=2, threads=1, max_connections=50, users=12,
        wait="constant(0)", tasks=[("POST /login", 1, 'body = "hunter2"')]),
    "db-conns": dict(
        expect="Database connections at their limit", workers=4, threads=8, max_connections=12,
        query_ms=50,
        users=40, wait="constant(0.02)", tasks=[("GET /items/{{random_int 1 100}}", 1, 'name = "/items/[id]"\nsuccess = [200]')]),
    "leak": dict(
        expect="Memory growth", workers=1, threads=4, max_connections=50, users=10,
        wait="constant(0.01)", tasks=[("GET /leak", 1, ""), ("GET /health", 1, "")]),
    "login-storm": dict(
        expect="POST /login is CPU-bound", workers=2, threads=1, max_connections=50, users=24,
        spawn_rate=4, rounds=4000000, wait="constant(0.2)",
        on_start=[("POST /login", 'body = "hunter2"')], tasks=[("GET /health", 1, "")]),
    "growing": dict(
        expect="GET /events gets slower as its data grows", workers=2, threads=4,
        max_connections=50, users=8, wait="constant(0.05)",
        tasks=[("GET /events", 3, ""), ("POST /events", 1, "")]),
    "few-workers": dict(
        expect="GET /slow holds the server's workers", workers=1, threads=2, max_connections=50,
        users=10, spawn_rate=1, wait="constant(0.05)",
        tasks=[("GET /slow", 1, ""), ("GET /health", 2, "")]),
    "node-growing": dict(
        stack="node", expect="GET /events gets slower as its data grows", users=8,
        wait="constant(0.05)", tasks=[("GET /events", 3, ""), ("POST /events", 1, "")]),
    "nginx-upstream": dict(
        stack="nginx", expect="GET /slow holds the server's workers", workers=1, threads=2,
        users=10, spawn_rate=1, wait="constant(0.05)",
        tasks=[("GET /slow", 1, ""), ("GET /health", 2, "")]),
    "healthy": dict(
        expect=None, workers=2, threads=4, max_connections=100, users=8, wait="constant(0.2)",
        tasks=[("GET /health", 3, ""), ("GET /items/{{random_int 1 100}}", 1, 'name = "/items/[id]"')]),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(check, install):
    if not check():
        print(f"installing: {' '.join(install)}", flush=True)
        subprocess.run(install, check=True, stdout=subprocess.DEVNULL)


def postgres_bin():
    """The directory of initdb/pg_ctl: on PATH, or Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


def ensure_tools(stacks):
    apt = []
    if "gunicorn" in stacks and postgres_bin() is None:
        apt.append("postgresql")
    if "node" in stacks and shutil.which("node") is None:
        apt.append("nodejs")
    if "nginx" in stacks and not Path("/usr/sbin/nginx").exists():
        apt.append("nginx")
    if apt:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        need(lambda: False, ["apt-get", "install", "-y", "-qq", *apt])
    for module, package in (("gunicorn", "gunicorn"), ("psycopg2", "psycopg2-binary")):
        need(lambda m=module: subprocess.run([sys.executable, "-c", f"import {m}"],
                                             capture_output=True).returncode == 0,
             [sys.executable, "-m", "pip", "install", "-q", package])


def as_postgres(cmd, **kw):
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=True, **kw)


class Postgres:
    def __init__(self, tmp, max_connections):
        self.bin = postgres_bin()
        self.dir = Path(tmp) / "pg"
        self.port = free_port()
        self.dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        as_postgres([str(self.bin / "initdb"), "-D", str(self.dir), "-U", "zoo", "-A", "trust"],
                    stdout=subprocess.DEVNULL)
        as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.dir), "-l", str(self.dir / "log"),
                     "-w", "start", "-o",
                     f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                     f"-c max_connections={max_connections} -c superuser_reserved_connections=3"],
                    stdout=subprocess.DEVNULL)
        # blast monitors as the superuser; the app connects as an ordinary role, so it meets
        # the limit applications meet (max_connections less the reserved slots).
        self.url = f"postgresql://zoo@127.0.0.1:{self.port}/postgres"
        self.app_url = f"postgresql://app@127.0.0.1:{self.port}/postgres"
        import psycopg2
        with psycopg2.connect(self.url) as conn, conn.cursor() as cur:
            cur.execute("CREATE ROLE app LOGIN")
            cur.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
            cur.execute("INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 100) i")
            cur.execute("CREATE TABLE events (id serial PRIMARY KEY, payload text)")
            cur.execute("GRANT SELECT, INSERT ON items, events TO app")
            cur.execute("GRANT USAGE ON SEQUENCE events_id_seq TO app")
        conn.close()

    def stop(self):
        as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.dir), "-m", "fast", "stop"],
                    stdout=subprocess.DEVNULL)


def wait_for(port, proc, what):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit(f"{what} did not start")


def gunicorn(tmp, dsn, run):
    port = free_port()
    workers, threads = run["workers"], run["threads"]
    env = dict(os.environ, ZOO_DSN=dsn, PYTHONPATH=str(tmp),
               ZOO_QUERY_MS=str(run.get("query_ms", 0)),
               ZOO_ROUNDS=str(run.get("rounds", 60000)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "zoo_app:app", "-b", f"127.0.0.1:{port}",
         "-w", str(workers), "--threads", str(threads), "--timeout", "60",
         "--log-level", "warning"], env=env, cwd=tmp)
    wait_for(port, proc, "gunicorn")
    return proc, f"http://127.0.0.1:{port}"


def stop(proc):
    proc.terminate()
    proc.wait(timeout=30)


@contextlib.contextmanager
def stack(tmp, run):
    """Starts the run's stack; yields its URL and the monitoring flags for the server that
    holds the planted cause."""
    kind = run.get("stack", "gunicorn")
    if kind == "node":
        port = free_port()
        (Path(tmp) / "zoo_app.js").write_text(NODE_APP)
        proc = subprocess.Popen(["node", str(Path(tmp) / "zoo_app.js"), str(port)],
                                stdout=subprocess.DEVNULL)
        wait_for(port, proc, "node")
        try:
            yield f"http://127.0.0.1:{port}", ["--monitor-pid", str(proc.pid)]
        finally:
            stop(proc)
    elif kind == "nginx":
        app, upstream = gunicorn(tmp, "", run)
        port = free_port()
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port,
                                          upstream=upstream.removeprefix("http://")))
        proxy = subprocess.Popen(["/usr/sbin/nginx", "-p", str(tmp), "-c", str(conf),
                                  "-g", "daemon off;"])
        wait_for(port, proxy, "nginx")
        try:
            yield f"http://127.0.0.1:{port}", ["--monitor-pid", str(app.pid)]
        finally:
            stop(proxy)
            stop(app)
    else:
        pg = Postgres(tmp, run["max_connections"])
        app, url = gunicorn(tmp, pg.app_url, run)
        try:
            yield url, ["--monitor-pid", str(app.pid), "--monitor-postgres", pg.url]
        finally:
            stop(app)
            pg.stop()


def scenario(run, seconds):
    lines = [f'name = "zoo"', "[load]", f"users = {run['users']}",
             f"spawn_rate = {run.get('spawn_rate', run['users'] * 2)}",
             f'run_time = "{seconds}s"', "",
             "[[user]]", 'class = "Client"', f'wait_time = "{run["wait"]}"']
    for request, extra in run.get("on_start", []):
        lines += ["[[user.on_start]]", f'request = "{request}"', extra]
    for request, weight, extra in run["tasks"]:
        lines += ["[[user.task]]", f"weight = {weight}", f'request = "{request}"']
        lines += [extra] if extra else []
    return "\n".join(lines) + "\n"


def first_finding(report):
    """The first bullet of the report's bottleneck analysis, if any."""
    section = report.split("## Bottleneck analysis", 1)[1].split("\n## ", 1)[0]
    bullets = [l[2:] for l in section.splitlines() if l.startswith("- ")]
    recommendations = report.split("## Top optimisation opportunities", 1)[1]
    recommended = bool(re.search(r"^1\. ", recommendations, re.M))
    return (bullets[0] if bullets else None), recommended


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--only", default=",".join(RUNS))
    ap.add_argument("--keep", metavar="DIR", help="copy each run's record and report here")
    args = ap.parse_args()
    names = args.only.split(",")
    ensure_tools({RUNS[n].get("stack", "gunicorn") for n in names})
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "blast"], cwd=ROOT, check=True)
    blast = str(ROOT / "target/release/blast")
    rows = []
    for name in names:
        run = RUNS[name]
        with tempfile.TemporaryDirectory() as tmp:
            os.chmod(tmp, 0o755)
            (Path(tmp) / "zoo_app.py").write_text(APP)
            (Path(tmp) / "zoo.toml").write_text(scenario(run, args.seconds))
            with stack(tmp, run) as (url, monitor):
                record = Path(tmp) / f"{name}.json"
                cmd = [blast, "-f", str(Path(tmp) / "zoo.toml"), "--host", url, *monitor,
                       "--json", str(record), "-q", "--exit-code-on-error", "0"]
                print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
                subprocess.run(cmd, check=True)
            report_file = Path(tmp) / "report.md"
            subprocess.run([blast, "report", str(record), "-o", str(report_file)],
                           check=True, stdout=subprocess.DEVNULL)
            finding, recommended = first_finding(report_file.read_text())
            data = json.loads(record.read_text())
            if args.keep:
                Path(args.keep).mkdir(parents=True, exist_ok=True)
                shutil.copy(record, Path(args.keep) / f"{name}.json")
                shutil.copy(report_file, Path(args.keep) / f"{name}.md")
        ok = (finding is None and not recommended) if run["expect"] is None \
            else (finding is not None and run["expect"] in finding)
        rows.append((name, data["requests"], data["failures"],
                     (data.get("latency_ms") or {}).get("p99", 0), finding, recommended, ok))
        print(f"   first finding: {finding}\n   recommendation: {recommended}  "
              f"{'as planted' if ok else 'NOT the planted cause'}", flush=True)
    print("\n| planted cause | requests | failed | p99 ms | the report's first finding | named |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, requests, failures, p99, finding, recommended, ok in rows:
        shown = (finding or "(no finding, no recommendation)" if not recommended
                 else finding or "(a recommendation without a finding)").replace("|", "\\|")
        print(f"| {name} | {requests} | {failures} | {p99:.1f} | {shown} | {'yes' if ok else 'NO'} |")
    sys.exit(0 if all(r[-1] for r in rows) else 1)


if __name__ == "__main__":
    main()
