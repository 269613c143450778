#!/usr/bin/env python3
"""Generator CPU per request: a locustfile run as it is, its `blast convert` TOML, and Locust.

`blast -f locustfile.py` translates the file before the run, so it should cost what the TOML
costs per request; Locust runs the same file in Python. For each locustfile (default: the
P4.3 deployments and CAB users in locust/tests/locustfiles/), each round runs the three, in
rotating order, pinned as in scenario_cost.py (target on core 1, the generator on core 0):

- py:     blast -f FILE.py   --host TARGET -u USERS -r USERS -t DURATION --threads 1
- toml:   blast -f FILE.toml --host TARGET -u USERS -r USERS -t DURATION --threads 1
          (FILE.toml written by `blast convert FILE.py`)
- locust: python3 -m locust -f FILE.py --headless (same users, spawn rate, run time, host),
          one process; its requests read from its --csv stats

and prints the medians of requests/s and CPU microseconds per request (the process's user plus
system time from wait4, over its requests), py / toml, and locust / py: how many times the
requests per generator CPU-second blast sends on the same file.

As written, the files' wait times keep both tools far below what one core can send, so blast's
figure is mostly the cost of waking 1,000 resting users, not of requests. `--flat` runs a copy
of each file whose every `wait_time` is `constant(0)` (the same copy for all three), so each
tool sends as fast as its core (or the target) allows: requests per CPU-second at full load.

    python3 benches/locustfile_cost.py [--users 200] [--duration 10] [--rounds 3] [--flat] [--bin DIR]

Builds blast and blast-target in release mode unless --bin names a folder with both; Locust
comes from PyPI (`pip install locust==2.47.0`). Loopback only; every run is bounded by its
run time.
"""

import argparse
import csv
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from scenario_cost import GENERATOR_CORE, ROOT, measure, start_target


def measure_locust(cmd, prefix, duration):
    """Runs Locust pinned to the generator core; returns (requests/s, CPU µs per request)."""
    # Locust may log a great deal: to a file, so a full pipe never stalls it.
    with open(f"{prefix}.log", "w+") as log:
        proc = subprocess.Popen(["taskset", "-c", GENERATOR_CORE, *cmd, "--csv", str(prefix)],
                                stdout=subprocess.DEVNULL, stderr=log)
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) not in (0, 1):
            log.seek(0)
            sys.exit(f"{' '.join(cmd)} failed: {log.read()[-300:]}")
    with open(f"{prefix}_stats.csv", newline="") as f:
        total = next(row for row in csv.DictReader(f) if row["Name"] == "Aggregated")
    requests = int(total["Request Count"])
    return requests / duration, (usage.ru_utime + usage.ru_stime) * 1e6 / requests

FILES = ["deployments.py", "cab.py"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bin", help="folder with built blast and blast-target binaries")
    ap.add_argument("--flat", action="store_true", help="every wait_time set to constant(0)")
    ap.add_argument("files", nargs="*", default=FILES)
    args = ap.parse_args()
    if args.bin is None:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "blast"],
                       cwd=ROOT, check=True)
    bin_dir = Path(args.bin).resolve() if args.bin else ROOT / "target" / "release"
    blast = str(bin_dir / "blast")
    target, url = start_target(str(bin_dir / "blast-target"))
    load = ["--host", url, "-u", str(args.users), "-r", str(args.users),
            "-t", f"{args.duration}s", "--threads", "1"]
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in args.files:
                py = ROOT / "locust" / "tests" / "locustfiles" / name
                if args.flat:
                    flat = Path(tmp) / name
                    text = re.sub(r"(?m)^(\s+wait_time\s*=\s*).*$", r"\1constant(0)", py.read_text())
                    flat.write_text("from locust import constant\n" + text)
                    py = flat
                toml = Path(tmp) / (py.stem + ".toml")
                subprocess.run([blast, "convert", str(py), "-o", str(toml)], check=True,
                               capture_output=True)
                runs = {"py": [blast, "-f", str(py), *load], "toml": [blast, "-f", str(toml), *load],
                        "locust": [sys.executable, "-m", "locust", "-f", str(py), "--headless",
                                   "-u", str(args.users), "-r", str(args.users), "-t", f"{args.duration}s",
                                   "--host", url, "--only-summary", "--loglevel", "ERROR"]}
                seen = {"py": [], "toml": [], "locust": []}
                kinds = list(seen)
                for r in range(args.rounds):
                    for kind in kinds[r % 3:] + kinds[:r % 3]:
                        if kind == "locust":
                            rps, us = measure_locust(runs[kind], Path(tmp) / "locust", args.duration)
                        else:
                            rps, us = measure(runs[kind], Path(tmp) / f"{kind}.json")
                        seen[kind].append((rps, us))
                        print(f"  {name} round {r + 1} {kind:4} {rps:>9.0f} req/s {us:>7.2f} CPU-µs/request",
                              flush=True)
                med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
                       for k, v in seen.items()}
                rows.append((name, med))
    finally:
        target.terminate()
        target.wait(timeout=10)
    waits = ", every wait_time constant(0)" if args.flat else ""
    print(f"\nmedians over {args.rounds} rounds, {args.users} users, {args.duration} s each{waits}:\n")
    print("| locustfile | py req/s | py CPU µs/req | toml req/s | toml CPU µs/req | py / toml "
          "| Locust req/s | Locust CPU µs/req | Locust / py |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, med in rows:
        (prps, pus), (trps, tus), (lrps, lus) = med["py"], med["toml"], med["locust"]
        print(f"| {name} | {prps:,.0f} | {pus:.2f} | {trps:,.0f} | {tus:.2f} | {pus / tus:.2f} "
              f"| {lrps:,.0f} | {lus:.2f} | {lus / pus:.1f} |")


if __name__ == "__main__":
    main()
