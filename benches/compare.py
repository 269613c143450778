#!/usr/bin/env python3
"""Side-by-side comparison of blast, wrk and oha (HTTP/2: h2load and oha) against nginx on loopback.

nginx (one worker, benches/nginx-bench.conf) is pinned to one core and each generator to the
other. Runs are interleaved (each round runs every tool once, in a rotating order) so machine
noise hits all tools alike; the table shows medians over rounds. For each run it reads the
generator's own request count and, from the process accounting of the generator process
(/usr/bin/time: user+sys CPU seconds and peak RSS), computes requests per generator CPU-second.

    python3 benches/compare.py [--duration 10] [--rounds 3] [--conns 64,1000] [--no-oha] [--tls]
                               [--base REV] [--only blast,wrk] [--http2 --streams 100]

--base REV adds blast as built from an earlier commit (in a git worktree, with its own target
folder kept in /tmp/blastlab between runs) and prints the working tree's requests per
CPU-second against it: how to find which change cost the engine its lead.

With --tls, nginx also serves HTTPS on 127.0.0.1:18443 with a certificate from a CA the
script makes with openssl; blast verifies it (--ca-cert), wrk never verifies certificates, and
oha is left out. Connections are keep-alive, so handshakes happen once per connection.

With --http2, the generators speak HTTP/2 to nginx (h2c with prior knowledge on 127.0.0.1:18082,
or with --tls over TLS on 18443 chosen by ALPN) with --conns connections of --streams concurrent
streams each: blast -u conns*streams --streams S, h2load -c conns -m S (Debian's
nghttp2-client), oha --http2 -c conns -p S.

Installs wrk, nginx and GNU time from Debian packages when missing, and oha with
`cargo install oha` (skipped with a note if that fails). Loopback only, every run bounded.
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAB = Path("/tmp/blastlab")
URL = "http://127.0.0.1:18080/"
H2C_URL = "http://127.0.0.1:18082/"
TLS_URL = "https://127.0.0.1:18443/"
GENERATOR_CORE, SERVER_CORE = "0", "1"


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def ensure_tools(want_oha):
    missing = [p for p, b in [("wrk", "wrk"), ("nginx", "nginx"), ("time", "/usr/bin/time"),
                              ("nghttp2-client", "h2load")]
               if not shutil.which(b)]
    if missing:
        print(f"installing {' '.join(missing)} from Debian packages", flush=True)
        sh(["apt-get", "update", "-qq"])
        sh(["apt-get", "install", "-y", "-qq", *missing], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    oha = shutil.which("oha") or str(Path.home() / ".cargo/bin/oha")
    if want_oha and not Path(oha).exists():
        print("installing oha with cargo install (a few minutes)", flush=True)
        if subprocess.run(["cargo", "install", "oha", "--locked"]).returncode != 0:
            print("oha could not be installed: it is left out of the comparison", flush=True)
    return oha if want_oha and Path(oha).exists() else None


def tls_conf(http2=False):
    """The bench config plus an HTTPS listener on 18443 (offering HTTP/2 too with `http2`) with
    a fresh certificate from a fresh CA; returns (config path, CA certificate path)."""
    tls = LAB / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    ca, ca_key = tls / "ca.pem", tls / "ca.key"
    cert, key, csr, ext = tls / "cert.pem", tls / "key.pem", tls / "server.csr", tls / "server.ext"
    # A CA and a server certificate it signs: a CA certificate cannot be a server's own
    # (webpki refuses it, as browsers do).
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    quiet = {"stderr": subprocess.DEVNULL}
    sh(["openssl", "req", "-x509", *ec, "-days", "2", "-subj", "/CN=blast bench CA",
        "-keyout", str(ca_key), "-out", str(ca)], **quiet)
    sh(["openssl", "req", *ec, "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(csr)],
       **quiet)
    ext.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    sh(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert)], **quiet)
    base = (ROOT / "benches" / "nginx-bench.conf").read_text().rstrip()
    assert base.endswith("}")
    server = f"""
    server {{
        listen 127.0.0.1:18443 ssl{" http2" if http2 else ""} backlog=4096;
        server_name _;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_session_cache shared:bench:10m;
        location / {{
            return 200 "ok";
        }}
    }}
}}
"""
    conf = LAB / "nginx-tls.conf"
    conf.write_text(base[:-1] + server)
    return conf, ca


def start_nginx(conf, url):
    (LAB / "logs").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(["taskset", "-c", SERVER_CORE, "nginx", "-p", f"{LAB}/", "-e",
                             str(LAB / "logs/error.log"), "-c", str(conf), "-g", "daemon off;"])
    import ssl
    import urllib.request
    unverified = ssl._create_unverified_context()
    for _ in range(50):
        try:
            urllib.request.urlopen(url, timeout=1, context=unverified).read()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("nginx did not start; is port 18080 free?")


def timed(cmd, out_path):
    """Runs cmd pinned to the generator core; returns (stdout, cpu_seconds, peak_rss_mb)."""
    acct = out_path.with_suffix(".time")
    full = ["/usr/bin/time", "-o", str(acct), "-f", "%U %S %M", "taskset", "-c", GENERATOR_CORE, *cmd]
    res = subprocess.run(full, capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {res.stderr.strip()[-300:]}")
    user, sys_, rss_kb = acct.read_text().split()[-3:]
    return res.stdout, float(user) + float(sys_), int(rss_kb) / 1024


def run_blast(blast, client, url, extra, conns, duration, tmp, io=None):
    """blast with its default I/O (io_uring where allowed), or `--io io`."""
    out = tmp / f"blast-{client}-{io}-{conns}.json"
    io_flag = ["--io", io] if io else []
    _, cpu, rss = timed([blast, url, "-u", str(conns), "-t", f"{duration}s", "--client", client,
                         *io_flag, "--json", str(out), *extra], out)
    s = json.loads(out.read_text())
    return s["requests"], s["duration_s"], cpu, rss


def run_blast_h2(blast, url, extra, conns, streams, duration, tmp):
    out = tmp / f"blast-h2-{conns}.json"
    _, cpu, rss = timed([blast, url, "--http2", "-u", str(conns * streams), "--streams",
                         str(streams), "-t", f"{duration}s", "--json", str(out), *extra], out)
    s = json.loads(out.read_text())
    assert s["protocol"] == "h2", s["protocol"]
    return s["requests"], s["duration_s"], cpu, rss


def run_h2load(url, conns, streams, duration, tmp):
    stdout, cpu, rss = timed(["h2load", "-c", str(conns), "-m", str(streams), "-D", str(duration),
                              url], tmp / f"h2load-{conns}")
    done = int(re.search(r"requests: \d+ total, \d+ started, (\d+) done", stdout).group(1))
    m = re.search(r"finished in ([\d.]+)(m?s)", stdout)
    secs = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
    return done, secs, cpu, rss


def run_oha_h2(oha, url, conns, streams, duration, tmp):
    stdout, cpu, rss = timed([oha, "--http2", "-z", f"{duration}s", "-c", str(conns), "-p",
                              str(streams), "--insecure", "--no-tui", "--output-format", "json",
                              url], tmp / f"oha-h2-{conns}")
    s = json.loads(stdout)
    requests = sum(s["statusCodeDistribution"].values()) + sum(s.get("errorDistribution", {}).values())
    return requests, s["summary"]["total"], cpu, rss


def run_wrk(url, conns, duration, tmp):
    stdout, cpu, rss = timed(["wrk", "-t1", f"-c{conns}", f"-d{duration}s", url], tmp / f"wrk-{conns}")
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", stdout)
    secs = float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)
    return int(m.group(1)), secs, cpu, rss


def run_oha(oha, conns, duration, tmp):
    stdout, cpu, rss = timed([oha, "-z", f"{duration}s", "-c", str(conns), "--no-tui",
                              "--output-format", "json", URL], tmp / f"oha-{conns}")
    s = json.loads(stdout)
    requests = sum(s["statusCodeDistribution"].values()) + sum(s.get("errorDistribution", {}).values())
    return requests, s["summary"]["total"], cpu, rss


def build_at(rev):
    """blast built in release mode from commit `rev` (a worktree under /tmp/blastlab)."""
    tree = LAB / "base-tree"
    if tree.exists():
        sh(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT)
    sh(["git", "worktree", "add", "-q", "--detach", str(tree), rev], cwd=ROOT)
    target = LAB / "base-target"
    sh(["cargo", "build", "--release", "-q", "-p", "blast"], cwd=tree,
       env={**os.environ, "CARGO_TARGET_DIR": str(target)})
    return str(target / "release/blast")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conns", default="64,1000")
    ap.add_argument("--no-oha", action="store_true")
    ap.add_argument("--tls", action="store_true", help="load nginx over HTTPS instead")
    ap.add_argument("--base", metavar="REV", help="also run blast built from this commit")
    ap.add_argument("--only", help="comma-separated generators to run (default: all)")
    ap.add_argument("--http2", action="store_true", help="HTTP/2: blast, h2load and oha")
    ap.add_argument("--streams", type=int, default=100, help="HTTP/2 streams per connection")
    args = ap.parse_args()

    oha = ensure_tools(not args.no_oha and (args.http2 or not args.tls))
    sh(["cargo", "build", "--release", "-q", "-p", "blast"], cwd=ROOT)
    blast = str(ROOT / "target/release/blast")
    if args.tls:
        conf, cert = tls_conf(args.http2)
        url, extra = TLS_URL, ["--ca-cert", str(cert)]
    else:
        conf, extra = ROOT / "benches" / "nginx-bench.conf", []
        url = H2C_URL if args.http2 else URL
    if args.http2:
        m = args.streams
        tools = {
            "blast": lambda c, d, t: run_blast_h2(blast, url, extra, c, m, d, t),
            "h2load": lambda c, d, t: run_h2load(url, c, m, d, t),
        }
        if oha:
            tools["oha"] = lambda c, d, t: run_oha_h2(oha, url, c, m, d, t)
    else:
        tools = {
            "blast": lambda c, d, t: run_blast(blast, "raw", url, extra, c, d, t),
            "blast-epoll": lambda c, d, t: run_blast(blast, "raw", url, extra, c, d, t, "epoll"),
            "blast-hyper": lambda c, d, t: run_blast(blast, "hyper", url, extra, c, d, t),
            "wrk": lambda c, d, t: run_wrk(url, c, d, t),
        }
        if oha:
            tools["oha"] = lambda c, d, t: run_oha(oha, c, d, t)
    if args.base:
        base = build_at(args.base)
        tools["blast@base"] = lambda c, d, t: run_blast(base, "raw", url, extra, c, d, t)
    if args.only:
        tools = {k: v for k, v in tools.items() if k in args.only.split(",") or k == "blast@base"}

    # nginx answers the readiness check in HTTP/1.1, which its h2c port does not speak.
    nginx = start_nginx(conf, URL if url == H2C_URL else url)
    results = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            for conns in [int(c) for c in args.conns.split(",")]:
                names = list(tools)
                for r in range(args.rounds):
                    order = names[r % len(names):] + names[:r % len(names)]
                    for name in order:
                        reqs, secs, cpu, rss = tools[name](conns, args.duration, tmp)
                        row = (reqs / secs, reqs / cpu, rss)
                        results.setdefault((name, conns), []).append(row)
                        print(f"  round {r + 1} {name:12} c={conns:<5} {row[0]:>10.0f} req/s "
                              f"{row[1]:>10.0f} req/cpu-s {rss:7.1f} MB", flush=True)
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(timeout=10)

    streams = f" x {args.streams} streams" if args.http2 else ""
    print(f"\nmedians over {args.rounds} interleaved rounds, {args.duration} s each, {url}{streams}, "
          f"nginx on core {SERVER_CORE}, generator on core {GENERATOR_CORE}:\n")
    print(f"| generator | conns | requests/s | requests per generator CPU-second | peak RSS |")
    print(f"| --- | --- | --- | --- | --- |")
    med = {}
    for (name, conns), rows in results.items():
        rps = statistics.median(r[0] for r in rows)
        per_cpu = statistics.median(r[1] for r in rows)
        rss = max(r[2] for r in rows)
        med[(name, conns)] = per_cpu
        print(f"| {name} | {conns} | {rps:,.0f} | {per_cpu:,.0f} | {rss:.1f} MB |")
    print()
    for conns in sorted({c for _, c in med}):
        for other in ("wrk", "h2load", "oha", "blast@base"):
            for mine in ("blast", "blast-epoll", "blast-hyper"):
                if (other, conns) in med and (mine, conns) in med:
                    print(f"c={conns}: {mine} / {other} requests per CPU-second = "
                          f"{med[(mine, conns)] / med[(other, conns)]:.2f}")


if __name__ == "__main__":
    main()
