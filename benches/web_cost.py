#!/usr/bin/env python3
"""What an open web UI costs the load: the burst profile headless vs with the page watching.

Each round runs the plan's burst profile (up to 1000 users at 30 tasks/s each, against blast's
built-in reference target, generator and target sharing the cores) twice, in alternating
order: headless, and as `blast --web --autostart --autoquit 1` with a client doing what the
page does every second (GET /stats/requests and /blast/state) while following blast's event
stream. It reads the requests/s from each run's JSON record and prints the medians and their
ratio.

    python3 benches/web_cost.py [--rounds 3] [--ramp 3] [--hold 12]

Loopback only; every run is bounded by its stages.
"""

import argparse
import json
import re
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def watch(base, stop):
    """Polls the API as the page does, and keeps the event stream open, until `stop` is set."""
    def stream():
        try:
            with urllib.request.urlopen(base + "blast/stream", timeout=60) as r:
                while not stop.is_set() and r.readline():
                    pass
        except OSError:
            pass
    threading.Thread(target=stream, daemon=True).start()
    while not stop.is_set():
        for path in ("stats/requests", "blast/state"):
            try:
                urllib.request.urlopen(base + path, timeout=5).read()
            except OSError:
                pass
        stop.wait(1.0)


def run(blast, stages, record, web):
    args = [blast, "--profile", "burst", "--stages", stages, "--json", str(record), "-q"]
    if not web:
        # Exit code 3 (a profile criterion such as "rps>=N for 1m" on a short run) is fine here.
        subprocess.run(args)
    else:
        proc = subprocess.Popen(args + ["--web", "--web-port", "0", "--autostart", "--autoquit", "1"],
                                stdout=subprocess.PIPE, text=True)
        base = re.search(r"http://\S+/", proc.stdout.readline()).group(0)
        stop = threading.Event()
        watcher = threading.Thread(target=watch, args=(base, stop))
        watcher.start()
        proc.wait(timeout=600)
        stop.set()
        watcher.join()
    return json.loads(record.read_text())["rps"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ramp", type=int, default=3, help="seconds to reach 1000 users")
    ap.add_argument("--hold", type=int, default=12, help="seconds at 1000 users")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "blast"], cwd=ROOT, check=True)
    blast = str(ROOT / "target/release/blast")
    stages = f"{args.ramp}s:1000,{args.hold}s:1000"
    results = {"headless": [], "web": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = ["headless", "web"] if r % 2 == 0 else ["web", "headless"]
            for mode in order:
                rps = run(blast, stages, Path(tmp) / f"{mode}-{r}.json", mode == "web")
                results[mode].append(rps)
                print(f"  round {r + 1} {mode:8} {rps:10.0f} req/s", flush=True)
    headless, web = (statistics.median(results[m]) for m in ("headless", "web"))
    print(f"\nburst profile, stages {stages}, medians of {args.rounds} rounds:")
    print(f"| mode | requests/s |\n| --- | --- |\n| headless | {headless:,.0f} |\n"
          f"| web UI open (polled each second, event stream followed) | {web:,.0f} |")
    print(f"\nweb / headless = {web / headless:.3f}")


if __name__ == "__main__":
    main()
