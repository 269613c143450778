#!/usr/bin/env python3
"""Does blast's web API answer what scripts written for Locust's read? A side-by-side check.

Starts blast's reference target, then real Locust (from PyPI) with its web UI and blast with
`--web`, both on loopback, both swarming 2 users at the target. It reads `/stats/requests` from
each while they run, and compares the key sets: at the top level, in `stats[]` rows (the
Aggregated row included) and in `errors[]` rows. Every key Locust has must be in blast's;
blast may have more. Then it checks the CSV endpoints' headers against each other.

    python3 benches/locust_api.py

Installs Locust with pip when missing. Loopback only; both runs are stopped after a few seconds.
"""

import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LOCUSTFILE = """
from locust import HttpUser, task, constant

class Visitor(HttpUser):
    wait_time = constant(0.05)

    @task(3)
    def home(self):
        self.client.get("/")

    @task
    def missing(self):
        self.client.get("/status/503")
"""

SCENARIO = """
name = "visitor"
[[user]]
class = "Visitor"
wait_time = "constant(0.05)"
[[user.task]]
weight = 3
request = "GET /"
[[user.task]]
request = "GET /status/503"
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, data=None):
    body = None if data is None else data.encode()
    with urllib.request.urlopen(url, data=body, timeout=10) as r:
        return r.read().decode()


def wait_for(url):
    for _ in range(100):
        try:
            return get(url)
        except OSError:
            time.sleep(0.2)
    sys.exit(f"{url} did not answer")


def keys(stats):
    rows = stats["stats"]
    return {
        "top level": set(stats),
        "stats[] row": set().union(*(set(r) for r in rows)) if rows else set(),
        "errors[] row": set().union(*(set(e) for e in stats["errors"])) if stats["errors"] else set(),
    }


def sample(base, swarm):
    get(base + "swarm", swarm)
    time.sleep(4)
    stats = json.loads(get(base + "stats/requests"))
    headers = {path: get(base + path).splitlines()[0] if get(base + path) else ""
               for path in ["stats/requests/csv", "stats/failures/csv", "exceptions/csv"]}
    # Locust 2.x stops on POST (its UI's button), as blast does (GET gets 405).
    get(base + "stop", "")
    return stats, headers


def main():
    if not shutil.which("locust"):
        print("installing locust from PyPI", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "locust"], check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "blast"],
                   cwd=ROOT, check=True)
    procs = []
    try:
        target_port = free_port()
        procs.append(subprocess.Popen([str(ROOT / "target/release/blast-target"), "--port",
                                       str(target_port)], stdout=subprocess.DEVNULL))
        host = f"http://127.0.0.1:{target_port}"
        wait_for(host + "/")
        with tempfile.TemporaryDirectory() as tmp:
            locustfile = Path(tmp) / "locustfile.py"
            locustfile.write_text(LOCUSTFILE)
            scenario = Path(tmp) / "visitor.toml"
            scenario.write_text(SCENARIO)
            locust_port = free_port()
            procs.append(subprocess.Popen(
                ["locust", "-f", str(locustfile), "--host", host, "--web-host", "127.0.0.1",
                 "--web-port", str(locust_port)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            locust = f"http://127.0.0.1:{locust_port}/"
            wait_for(locust)
            blast_proc = subprocess.Popen(
                [str(ROOT / "target/release/blast"), "--web", "--web-port", "0", "-f",
                 str(scenario), "--host", host],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            procs.append(blast_proc)
            blast = re.search(r"http://\S+/", blast_proc.stdout.readline()).group(0)
            swarm = f"user_count=2&spawn_rate=2&host={host}"
            locust_stats, locust_csv = sample(locust, swarm)
            blast_stats, blast_csv = sample(blast, swarm)
    finally:
        for p in procs:
            p.kill()
            p.wait()

    missing_any = False
    print(f"Locust {subprocess.run(['locust', '--version'], capture_output=True, text=True).stdout.split()[1]}"
          " vs blast, /stats/requests while swarming 2 users:\n")
    theirs, mine = keys(locust_stats), keys(blast_stats)
    for part in theirs:
        missing = sorted(theirs[part] - mine[part])
        extra = sorted(mine[part] - theirs[part])
        missing_any |= bool(missing)
        print(f"{part}: Locust has {len(theirs[part])} keys, blast has all of them"
              if not missing else f"{part}: blast LACKS {missing}")
        if extra:
            print(f"  blast adds: {extra}")
        if missing:
            print(f"  Locust's: {sorted(theirs[part])}")
    for path in locust_csv:
        same = locust_csv[path] == blast_csv[path]
        missing_any |= not same
        print(f"{path} header: {'identical' if same else 'DIFFERS'}")
        if not same:
            print(f"  Locust: {locust_csv[path]}\n  blast:  {blast_csv[path]}")
    sys.exit(1 if missing_any else 0)


if __name__ == "__main__":
    main()
