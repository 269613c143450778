#!/usr/bin/env python3
"""Generator CPU per request: a locustfile run as it is against its `blast convert` TOML.

`blast -f locustfile.py` translates the file before the run, so both runs should cost the
same per request; this measures it. For each locustfile (default: the P4.3 deployments and
CAB users in locust/tests/locustfiles/), each round runs, in alternating order and pinned as
in scenario_cost.py (target on core 1, blast with one worker on core 0):

- py:   blast -f FILE.py   --host TARGET -u USERS -r USERS -t DURATION --threads 1
- toml: blast -f FILE.toml --host TARGET -u USERS -r USERS -t DURATION --threads 1
        (FILE.toml written by `blast convert FILE.py`)

and prints the medians of requests/s and CPU microseconds per request, and their ratio.

    python3 benches/locustfile_cost.py [--users 200] [--duration 10] [--rounds 3] [--bin DIR]

Builds blast and blast-target in release mode unless --bin names a folder with both.
Loopback only; every run is bounded by its run time.
"""

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

from scenario_cost import ROOT, measure, start_target

FILES = ["deployments.py", "cab.py"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bin", help="folder with built blast and blast-target binaries")
    ap.add_argument("files", nargs="*", default=FILES)
    args = ap.parse_args()
    if args.bin is None:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "blast", "-p", "blast-target"],
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
                toml = Path(tmp) / (py.stem + ".toml")
                subprocess.run([blast, "convert", str(py), "-o", str(toml)], check=True,
                               capture_output=True)
                runs = {"py": [blast, "-f", str(py), *load], "toml": [blast, "-f", str(toml), *load]}
                seen = {"py": [], "toml": []}
                for r in range(args.rounds):
                    for kind in (["py", "toml"] if r % 2 == 0 else ["toml", "py"]):
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
    print(f"\nmedians over {args.rounds} rounds, {args.users} users, {args.duration} s each:\n")
    print("| locustfile | py req/s | py CPU µs/req | toml req/s | toml CPU µs/req | py / toml |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, med in rows:
        (prps, pus), (trps, tus) = med["py"], med["toml"]
        print(f"| {name} | {prps:,.0f} | {pus:.2f} | {trps:,.0f} | {tus:.2f} | {pus / tus:.2f} |")


if __name__ == "__main__":
    main()
