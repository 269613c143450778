#!/usr/bin/env python3
"""Generator CPU per request: the P4.3 burst scenario against `blast URL`, same target.

The reference target (blast-target, one thread) is pinned to core 1 and blast (one worker) to
core 0. Each round runs, in rotating order:

- url:      blast http://TARGET/ -u USERS -t DURATION   (one pre-encoded GET /, no wait: the
            cheapest request, and the generator saturated)
- url-post: blast http://TARGET/api/v1/deployments/ -X POST -H 'Authorization: Token ...'
            --body '{...}' -u USERS -t DURATION   (the burst's request, pre-encoded: same
            target work, same load level, no scenario machinery)
- burst:    blast --profile burst --host http://TARGET --stages ...   (login, then
            POST /api/v1/deployments/ with a templated JSON body and a token header, at up to
            30 tasks/s per user)
- url-rate: blast http://TARGET/ --rate RAMP:USERS*30,...   (the cheapest request at the
            burst's own offered load and shape: the same load level without the scenario)
- paced-get: a scenario of USERS users doing GET / at constant_throughput(30), the burst's
            stages   (the burst's users and pacing with the cheapest request)
- url-post-rate: the burst's POST, pre-encoded, at the burst's load and shape (--rate): the
            burst's request without the scenario machinery

and reads blast's CPU time (user + system, from the kernel's accounting of the child process)
and its request count from --json. The table shows medians over rounds of requests per second,
CPU microseconds per request and their ratio.

    python3 benches/scenario_cost.py [--users 1000] [--duration 20] [--rounds 3]

Loopback only; every run is bounded by its run time.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACED_GET = '''name = "paced-get"
[[user]]
class = "Getter"
wait_time = "constant_throughput(30)"
[[user.task]]
task = "get"
request = "GET /"
'''
GENERATOR_CORE, TARGET_CORE = "0", "1"


def start_target(binary):
    proc = subprocess.Popen(["taskset", "-c", TARGET_CORE, binary, "--threads", "1"],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        sys.exit(f"blast-target did not start: {line!r}")
    return proc, line.split("listening on")[1].strip()


def login(url):
    """A token for the burst's user, as the profile's on-start request gets one."""
    body = json.dumps({"username": "loadtest_user", "password": "loadtest-pass"}).encode()
    req = urllib.request.Request(url + "/api/v1/auth/token/", data=body,
                                 headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=5).read())["token"]


def measure(cmd, out):
    """Runs blast pinned to the generator core; returns (requests/s, CPU µs per request)."""
    proc = subprocess.Popen(["taskset", "-c", GENERATOR_CORE, *cmd, "--json", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    # Exit code 3 only says a criterion failed (the burst's are sized for 1000 users).
    if code not in (0, 3):
        sys.exit(f"{' '.join(cmd)} exited {code}: {proc.stderr.read()[-300:]}")
    s = json.loads(out.read_text())
    cpu = usage.ru_utime + usage.ru_stime
    return s["requests"] / s["duration_s"], cpu * 1e6 / s["requests"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "blast"],
                   cwd=ROOT, check=True)
    blast = str(ROOT / "target/release/blast")
    target, url = start_target(str(ROOT / "target/release/blast-target"))
    d, ramp = args.duration, max(1, args.duration // 5)
    deployment = '{"app_name":"burst-1","version":"1.0.1","target_ring":"canary"}'
    runs = {
        "url": [blast, url + "/", "-u", str(args.users), "-t", f"{d}s", "--threads", "1"],
        "url-post": [blast, url + "/api/v1/deployments/", "-X", "POST",
                     "-H", f"Authorization: Token {login(url)}",
                     "-H", "Content-Type: application/json", "--body", deployment,
                     "-u", str(args.users), "-t", f"{d}s", "--threads", "1"],
        "burst": [blast, "--profile", "burst", "--host", url, "--threads", "1",
                  "--stages", f"{ramp}s:{args.users},{d - ramp}s:{args.users}"],
        # The burst's users rest to 30 tasks/s each (constant_throughput(30)).
        "url-rate": [blast, url + "/", "--threads", "1", "--rate",
                     f"{ramp}s:{args.users * 30},{d - ramp}s:{args.users * 30}"],
    }
    # The burst's own request, pre-encoded, at the burst's load and shape: what is left of
    # the burst's cost over this is the scenario machinery (users, pacing, templates).
    post = runs["url-post"][1:runs["url-post"].index("-u")]
    runs["url-post-rate"] = [blast, *post, *runs["url-rate"][2:]]
    results = {name: [] for name in runs}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            paced = Path(tmp) / "paced-get.toml"
            paced.write_text(PACED_GET)
            runs["paced-get"] = [blast, "-f", str(paced), "--host", url, "--threads", "1",
                                 "--stages", f"{ramp}s:{args.users},{d - ramp}s:{args.users}"]
            results["paced-get"] = []
            for r in range(args.rounds):
                names = list(runs)
                order = names[r % len(names):] + names[:r % len(names)]
                for name in order:
                    rps, us = measure(runs[name], Path(tmp) / f"{name}.json")
                    results[name].append((rps, us))
                    print(f"  round {r + 1} {name:13} {rps:>10.0f} req/s {us:>7.2f} CPU-µs/request",
                          flush=True)
    finally:
        target.terminate()
        target.wait(timeout=10)

    med = {n: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
           for n, v in results.items()}
    print(f"\nmedians over {args.rounds} rounds, {args.users} users, {d} s each, "
          f"target on core {TARGET_CORE}, blast on core {GENERATOR_CORE}:\n")
    print("| run | requests/s | generator CPU µs per request |")
    print("| --- | --- | --- |")
    for name, (rps, us) in med.items():
        print(f"| {name} | {rps:,.0f} | {us:.2f} |")
    for base in ("url", "url-post", "url-rate", "paced-get", "url-post-rate"):
        print(f"burst / {base} CPU per request = {med['burst'][1] / med[base][1]:.2f}")


if __name__ == "__main__":
    main()
