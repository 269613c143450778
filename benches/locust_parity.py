#!/usr/bin/env python3
"""Do Locust and blast send the same traffic for the same locustfile? A side-by-side check.

For each locustfile in locust/tests/locustfiles/ that blast translates, runs real Locust (from
PyPI) and `blast -f FILE` with the same users, spawn rate and run time against blast's
reference target, each through a logging proxy that records every request as it reached the
server. Then it compares, per file:

- the set of request names (method and path, with ids and query values folded: `/a/17/` and
  `/a/42/?page=3` are both `/a/{n}/?page=`);
- each name's share of the requests. Each share is a proportion estimated from n requests; the
  two runs differ by chance with a standard error of sqrt(p(1-p)(1/n1 + 1/n2)). A share passes
  within 4.5 standard errors plus 2 percentage points: 4.5 makes a false alarm across the few
  dozen names checked here less likely than 1 in 10,000, and the 2 points absorb what the
  runs' edges do (Locust and blast start and stop users a little differently, and a run of
  seconds has few tasks);
- for every name, whether its requests carry an Authorization header, and the keys of their
  JSON or form bodies;
- the order inside each SequentialTaskSet (read from `blast convert`'s `sequential = true`
  tables): on every connection (one per user in both tools), each request of the set must be
  followed, among the set's requests, by the next one in the set's order, round and round. Both
  tools are held to it, so a check that misreads Locust fails on Locust first.

    python3 benches/locust_parity.py [--seconds 15] [--users 20] [--bin DIR] [FILE.py ...]

Builds blast with cargo (or takes `blast` and `blast-target` from --bin DIR, as the test
cli/tests/locust_parity.rs does) and installs Locust with pip when missing. Loopback only; every run is
bounded by --seconds. Prints a table per file and exits 1 when a check fails.
"""

import argparse
import http.client
import http.server
import json
import math
import re
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = ROOT / "locust" / "tests" / "locustfiles"


def need_locust():
    if subprocess.run([sys.executable, "-c", "import locust"], capture_output=True).returncode:
        print("installing locust from PyPI", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "locust==2.47.0"], check=True)


def build(bin_dir):
    if bin_dir is None:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "blast"],
                       cwd=ROOT, check=True)
        bin_dir = ROOT / "target" / "release"
    bin_dir = Path(bin_dir).resolve()
    return bin_dir / "blast", bin_dir / "blast-target"


class Target:
    """blast's reference target on a free loopback port."""

    def __init__(self, binary):
        self.proc = subprocess.Popen([str(binary), "--port", "0"], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        self.port = int(re.search(r":(\d+)", line.split("listening on")[1]).group(1))

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Proxy:
    """Forwards every request to the target and logs what reached it, one JSON line each."""

    def __init__(self, upstream):
        self.records = []
        lock = threading.Lock()
        records = self.records

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                with lock:
                    records.append({
                        "connection": self.client_address,
                        "method": self.command,
                        "path": self.path,
                        "authorization": self.headers.get("authorization") is not None,
                        "form": "x-www-form-urlencoded" in (self.headers.get("content-type") or ""),
                        "body": body.decode("utf-8", "replace"),
                    })
                if not hasattr(self.server.local, "conn"):
                    self.server.local.conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=30)
                conn = self.server.local.conn
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                r = conn.getresponse()
                data = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = forward

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client that resets its connection at the end of a run

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.local = threading.local()
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def name_of(record):
    path = re.sub(r"=[^&]*", "=", record["path"])
    path = re.sub(r"/[0-9a-fA-F-]{8,}(?=/|$|\?)|/\d+(?=/|$|\?)", "/{n}", path)
    return f'{record["method"]} {path}'


def summary(records):
    names = {}
    for r in records:
        entry = names.setdefault(name_of(r), {"n": 0, "auth": 0, "keys": set()})
        entry["n"] += 1
        entry["auth"] += r["authorization"]
        try:
            body = json.loads(r["body"]) if r["body"] and not r["form"] else None
        except ValueError:
            body = None
        if r["form"]:
            body = {k: "" for k in urllib.parse.parse_qs(r["body"], keep_blank_values=True)}
        if isinstance(body, dict):
            entry["keys"].add(tuple(sorted(body)))
    return names


def sequences(blast, locustfile):
    """Each sequential task set's request names in order, from the translated scenario."""
    import tomllib
    toml = subprocess.run([str(blast), "convert", str(locustfile)], capture_output=True, text=True, check=True)
    out = []
    for taskset in tomllib.loads(toml.stdout).get("taskset", []):
        if not taskset.get("sequential"):
            continue
        order = []
        for task in taskset.get("task", []):
            steps = task.get("step", [task])
            names = [s["request"] for s in steps if "request" in s]
            order += names * task.get("weight", 1)
        order = [name_of({"method": r.split(" ", 1)[0], "path": re.sub(r"\{\{[^}]*\}\}", "1", r.split(" ", 1)[1])})
                 for r in order]
        if order and len(set(order)) == len(order):
            out.append((taskset["name"], order))
    return out


def out_of_order(records, order):
    """(transitions seen, transitions out of order) among `order`'s requests, per connection."""
    following = {a: order[(i + 1) % len(order)] for i, a in enumerate(order)}
    streams = {}
    for r in records:
        name = name_of(r)
        if name in following:
            streams.setdefault(r["connection"], []).append(name)
    seen = wrong = 0
    for stream in streams.values():
        for a, b in zip(stream, stream[1:]):
            seen += 1
            wrong += following[a] != b
    return seen, wrong


def run(tool, blast, locustfile, port, users, seconds, workdir):
    host = f"http://127.0.0.1:{port}"
    if tool == "locust":
        cmd = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", str(users), "-r", str(users),
               "-t", f"{seconds}s", "--host", host, "--only-summary", "--loglevel", "ERROR"]
    else:
        cmd = [str(blast), "-f", str(locustfile), "-u", str(users), "-r", str(users),
               "-t", f"{seconds}s", "--host", host, "-q", "--no-pin"]
    done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=seconds + 120)
    if done.returncode not in (0, 1, 3):
        raise SystemExit(f"{tool} failed on {locustfile.name}: {done.stderr[-2000:]}")


def compare(locust, blast_):
    rows, ok = [], True
    n1 = sum(e["n"] for e in locust.values())
    n2 = sum(e["n"] for e in blast_.values())
    for name in sorted(set(locust) | set(blast_)):
        a, b = locust.get(name), blast_.get(name)
        if a is None or b is None:
            rows.append((name, a and a["n"], b and b["n"], "only in " + ("blast" if a is None else "Locust")))
            ok = False
            continue
        p1, p2 = a["n"] / n1, b["n"] / n2
        p = (a["n"] + b["n"]) / (n1 + n2)
        allowed = 4.5 * math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2)) + 0.02
        problems = []
        if abs(p1 - p2) > allowed:
            problems.append(f"share {p1:.3f} vs {p2:.3f} (allowed ±{allowed:.3f})")
        if (a["auth"] == a["n"]) != (b["auth"] == b["n"]) or (a["auth"] == 0) != (b["auth"] == 0):
            problems.append(f"authorization on {a['auth']}/{a['n']} vs {b['auth']}/{b['n']}")
        if a["keys"] != b["keys"]:
            problems.append(f"JSON keys {sorted(a['keys'])} vs {sorted(b['keys'])}")
        ok &= not problems
        rows.append((name, a["n"], b["n"], "; ".join(problems) or f"share {p1:.3f} vs {p2:.3f}, ok"))
    return ok, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--bin", help="folder with built blast and blast-target binaries")
    ap.add_argument("files", nargs="*")
    args = ap.parse_args()
    need_locust()
    blast, target_bin = build(args.bin)
    files = [Path(f).resolve() for f in args.files] or sorted(FILES.glob("*.py"))
    all_ok = True
    with tempfile.TemporaryDirectory() as workdir:
        for locustfile in files:
            check = subprocess.run([str(blast), "convert", "--check", str(locustfile)],
                                   capture_output=True, text=True)
            if check.returncode != 0:
                print(f"\n{locustfile.name}: skipped, does not translate yet "
                      f"({check.stderr.strip().splitlines()[0]})")
                continue
            seen, orders = {}, {}
            for tool in ("locust", "blast"):
                target = Target(target_bin)
                proxy = Proxy(target.port)
                try:
                    run(tool, blast, locustfile, proxy.port, args.users, args.seconds, workdir)
                    time.sleep(0.2)
                    records = list(proxy.records)
                    seen[tool] = summary(records)
                    orders[tool] = [(name, out_of_order(records, order))
                                    for name, order in sequences(blast, locustfile)]
                finally:
                    proxy.stop()
                    target.stop()
            ok, rows = compare(seen["locust"], seen["blast"])
            for (name, (n1, wrong1)), (_, (n2, wrong2)) in zip(orders["locust"], orders["blast"]):
                good = wrong1 == 0 and wrong2 == 0 and n1 > 0 and n2 > 0
                ok &= good
                rows.append((f"order in {name}", n1, n2,
                             f"{wrong1} and {wrong2} out of order" + (", ok" if good else "")))
            all_ok &= ok
            print(f"\n{locustfile.name}: {'same traffic' if ok else 'DIFFERENT'} "
                  f"({args.users} users, {args.seconds} s each)")
            print(f"  {'request':<48} {'Locust':>7} {'blast':>7}  check")
            for name, a, b, verdict in rows:
                print(f"  {name:<48} {a or 0:>7} {b or 0:>7}  {verdict}")
    sys.exit(0 if all_ok else 1)


if __name__ == "__main__":
    main()
