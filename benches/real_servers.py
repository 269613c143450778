#!/usr/bin/env python3
"""blast against real servers' keep-alive behaviour: gunicorn, uvicorn, nginx and Node.

Each server runs on a loopback port with its own idle keep-alive timeout (gunicorn's default
2 s, uvicorn's default 5 s, nginx with `keepalive_timeout 1s`, Node's default 5 s). blast's
users rest longer than that (`constant(3)`) and, in a second run, `between(1, 2)`, so the
servers close idle connections under blast's feet, as they do in production. Each run must
show 0 failures, and blast's request count must equal the server's own count (its access log
or a counter), so no request was lost or sent twice.

    python3 benches/real_servers.py [--users 20] [--seconds 12] [--blast PATH]

Installs gunicorn and uvicorn from PyPI and nginx from Debian when missing; Node must be on
the PATH. Loopback only; every run is bounded by its run time.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WSGI_APP = """
def app(environ, start_response):
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
"""

ASGI_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
"""

# Node counts what it answered and writes the count on SIGTERM.
NODE_APP = """
const http = require("http");
const fs = require("fs");
let served = 0;
const server = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => { served++; res.writeHead(200, {"Content-Type": "text/plain"}); res.end("ok"); });
});
server.listen(Number(process.argv[2]), "127.0.0.1");
process.on("SIGTERM", () => { fs.writeFileSync(process.argv[3], String(served)); process.exit(0); });
"""

NGINX_CONF = """
worker_processes 1;
pid {lab}/nginx.pid;
error_log {lab}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {lab}/access.log;
    keepalive_timeout 1s;
    client_body_temp_path {lab}/body;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok"; }}
    }}
}}
"""

SCENARIO = """
name = "keep-alive"
description = "Users that rest between requests, past the server's keep-alive timeout."

[[user]]
class = "Resting"
wait_time = "{wait}"

[[user.task]]
request = "GET /"

[[user.task]]
request = "POST /items"
json = {{ name = "x" }}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_tools():
    missing = [m for m in ("gunicorn", "uvicorn") if not shutil.which(m)]
    if missing:
        print(f"installing {' '.join(missing)} from PyPI", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)
    if not shutil.which("nginx"):
        print("installing nginx from Debian packages", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "nginx"], check=True, env=env)
    if not shutil.which("node"):
        sys.exit("node is not on the PATH")


def lines(path):
    path = Path(path)
    return sum(1 for _ in path.open()) if path.exists() else 0


class Server:
    """A real server on a loopback port, and how to read its own request count."""

    def __init__(self, name, keep_alive, start, count):
        self.name, self.keep_alive, self._start, self._count = name, keep_alive, start, count

    def run(self, lab):
        self.port = free_port()
        self.lab = lab
        self.proc = self._start(self)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/warmup", timeout=1).read()
                return
            except OSError:
                time.sleep(0.2)
        self.proc.kill()
        sys.exit(f"{self.name} did not start")

    def stop_and_count(self):
        self.proc.send_signal(signal.SIGTERM if self.name != "nginx" else signal.SIGQUIT)
        self.proc.wait(timeout=15)
        # The warm-up request is not blast's.
        return self._count(self) - 1


def gunicorn(s):
    (s.lab / "wsgi_app.py").write_text(WSGI_APP)
    return subprocess.Popen(
        ["gunicorn", "--chdir", str(s.lab), "-w", "2", "--worker-class", "gthread", "--threads", "2",
         "-b", f"127.0.0.1:{s.port}", "--access-logfile", str(s.lab / "access.log"), "wsgi_app:app"],
        stderr=subprocess.DEVNULL)


def uvicorn(s):
    (s.lab / "asgi_app.py").write_text(ASGI_APP)
    log = (s.lab / "access.log").open("w")
    return subprocess.Popen(
        ["uvicorn", "--app-dir", str(s.lab), "--port", str(s.port), "--host", "127.0.0.1",
         "--access-log", "--log-level", "info", "asgi_app:app"],
        stdout=log, stderr=subprocess.STDOUT)


def nginx(s):
    conf = s.lab / "nginx.conf"
    conf.write_text(NGINX_CONF.format(lab=s.lab, port=s.port))
    return subprocess.Popen(["nginx", "-p", str(s.lab), "-c", str(conf), "-g", "daemon off;"],
                            stderr=subprocess.DEVNULL)


def node(s):
    (s.lab / "server.js").write_text(NODE_APP)
    return subprocess.Popen(["node", str(s.lab / "server.js"), str(s.port), str(s.lab / "served")])


def access_lines(s):
    return lines(s.lab / "access.log")


def uvicorn_lines(s):
    return sum(1 for l in (s.lab / "access.log").open() if '" 200' in l)


def node_count(s):
    return int((s.lab / "served").read_text())


SERVERS = [
    Server("gunicorn (gthread, 2 workers x 2 threads)", "2 s (default)", gunicorn, access_lines),
    Server("uvicorn", "5 s (default)", uvicorn, uvicorn_lines),
    Server("nginx", "1 s (keepalive_timeout 1s)", nginx, access_lines),
    Server("node http", "5 s (default)", node, node_count),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=12)
    ap.add_argument("--blast", help="a blast binary to test instead of this checkout's release build")
    args = ap.parse_args()
    ensure_tools()
    blast = args.blast
    if not blast:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "blast"], cwd=ROOT, check=True)
        blast = str(ROOT / "target/release/blast")

    rows, bad = [], 0
    for server in SERVERS:
        for wait in ("constant(3)", "between(1, 2)"):
            with tempfile.TemporaryDirectory() as tmp:
                lab = Path(tmp)
                scenario = lab / "resting.toml"
                scenario.write_text(SCENARIO.format(wait=wait))
                server.run(lab)
                out = lab / "run.json"
                try:
                    res = subprocess.run(
                        [blast, "-f", str(scenario), "--host", f"http://127.0.0.1:{server.port}",
                         "-u", str(args.users), "-r", str(args.users), "-t", f"{args.seconds}s",
                         "--json", str(out), "-q"], timeout=args.seconds + 60)
                finally:
                    counted = server.stop_and_count()
                if not out.exists():
                    sys.exit(f"blast wrote no record against {server.name} (exit {res.returncode})")
                r = json.loads(out.read_text())
                # Builds older than the connection record have no reconnect or retry counts.
                conn = r.get("connection", {"reconnects": "-", "retries": "-"})
                ok = r["failures"] == 0 and r["requests"] == counted and r["cancelled"] == 0
                bad += not ok
                rows.append((server.name, server.keep_alive, wait, r["requests"], counted,
                             r["failures"], r["connections"], conn["reconnects"], conn["retries"],
                             "yes" if ok else "NO"))
                print(f"  {server.name:45} {wait:14} blast {r['requests']:5} server {counted:5} "
                      f"failures {r['failures']} reconnects {conn['reconnects']} retries {conn['retries']}",
                      flush=True)

    print(f"\n{args.users} users, {args.seconds} s per run, loopback:\n")
    print("| server | idle keep-alive timeout | wait_time | blast requests | server's count "
          "| failures | connections | reconnects | retries | exact |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
