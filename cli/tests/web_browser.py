#!/usr/bin/env python3
"""Drives `blast --web` in headless Chromium (Playwright over the DevTools protocol).

    python3 cli/tests/web_browser.py BLAST_BINARY [SCREENSHOT_DIR]

Starts blast's web UI on a free loopback port (the run goes to blast's built-in reference
target), opens the page, starts a run from the form, waits for the user count to rise and the
charts to gain points, changes the user count mid-run and sees it take effect, stops the run
and downloads the stats CSV. Between those steps, pages served from another origin (another
loopback port) try what a hostile site can: a form POST, a `fetch` with `no-cors` and an
`<img src=/stop>`; none may start, stop or reset a run. Exits non-zero with a message on the
first thing that fails.
Run by `cargo test` (cli/tests/web.rs), which fails when CI=true and Playwright or Chromium
is missing.
"""

import functools
import http.server
import json
import re
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


# Waits are hang guards, not measurements: CI may run this beside other heavy tests.
expect.set_options(timeout=60_000)

# What a hostile page can send without CORS: simple requests whose answers it cannot read.
ATTACKS = """<!doctype html><title>elsewhere</title>
<form id="f" method="POST" action="{ui}{path}" enctype="application/x-www-form-urlencoded">
<input name="user_count" value="9"><input name="run_time" value="60s"></form>
<script>
const sent = [
  fetch("{ui}{path}", {{method: "POST", mode: "no-cors", body: new URLSearchParams({{user_count: "8"}})}})
    .catch(() => null),
  fetch("{ui}/stats/reset", {{method: "POST", mode: "no-cors"}}).catch(() => null),
  new Promise((done) => {{ const i = new Image(); i.onload = i.onerror = done; i.src = "{ui}{path}"; }}),
];
Promise.all(sent).then(() => {{ window.fetched = true; }});
</script>
"""


def serve_elsewhere(ui):
    """Serves the attack pages from a folder on another loopback port: another origin."""
    folder = Path(tempfile.mkdtemp(prefix="blast-elsewhere-"))
    for name, path in [("start.html", "/swarm"), ("stop.html", "/stop")]:
        (folder / name).write_text(ATTACKS.format(ui=ui.rstrip("/"), path=path))
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def api(ui, path):
    """What a script reads from the API (no Origin, as curl or requests send)."""
    with urllib.request.urlopen(ui.rstrip("/") + path, timeout=60) as r:
        return json.load(r)


def attack(browser, elsewhere, page_name):
    """Opens a hostile page from another origin and waits until it has sent everything."""
    page = browser.new_page()
    page.goto(f"{elsewhere}/{page_name}")
    page.wait_for_function("() => window.fetched === true")
    # Then the form's POST, which navigates to blast's answer.
    with page.expect_navigation() as answer:
        page.evaluate("() => document.getElementById('f').submit()")
    if answer.value.status != 403:
        raise SystemExit(f"a form POST from another origin got {answer.value.status}, not 403")
    page.close()


def check_staged_profile(blast):
    """`--profile burst`: the form shows the burst's stages and no user count (Start runs what
    it shows), the criteria are listed before the run, and typing users clears the stages."""
    proc = subprocess.Popen([blast, "--web", "--web-port", "0", "--no-pin", "--profile", "burst"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = re.search(r"http://\S+/", proc.stdout.readline()).group(0)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page()
            page.goto(url)
            expect(page.locator("#stages")).not_to_have_value("")
            expect(page.locator("#users")).to_have_value("")
            rows = page.locator("#criteria tbody tr")
            expect(rows).to_have_count(4)
            expect(rows.first).to_contain_text("judged while the run goes")
            page.fill("#users", "5")
            page.dispatch_event("#users", "input")
            expect(page.locator("#stages")).to_have_value("")
            browser.close()
    finally:
        proc.kill()
        proc.wait()


def main():
    blast, shots = sys.argv[1], Path(sys.argv[2]) if len(sys.argv) > 2 else None
    proc = subprocess.Popen([blast, "--web", "--web-port", "0", "--no-pin"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://\S+/", line).group(0)
        # Keep draining blast's stdout (each run prints its summary).
        import threading
        threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1300, "height": 1000}, accept_downloads=True)
            page.set_default_timeout(60_000)
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            elsewhere = serve_elsewhere(url)
            attack(browser, elsewhere, "start.html")
            state = api(url, "/blast/state")
            if state["runs"] != 0 or state["state"] != "ready":
                raise SystemExit(f"a page from another origin started a run: {state}")
            page.goto(url)
            expect(page.locator("#status")).to_have_text("ready")
            page.fill("#users", "3")
            page.fill("#spawn", "30")
            page.fill("#runtime", "60s")
            page.click("#startbtn")
            # The user count rises to 3 and the charts gain points.
            expect(page.locator("#users-now")).to_have_text("3")
            page.wait_for_function("() => points.length >= 2")
            rows = page.locator("#stats tbody tr")
            expect(rows.last).to_contain_text("Aggregated")
            drawn = page.evaluate("""() => {
                const c = document.getElementById('chart-rps');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let ink = 0; for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) ink++; }
                return ink;
            }""")
            if drawn < 100:
                raise SystemExit(f"the requests/s chart has no line ({drawn} pixels drawn)")
            if shots:
                page.screenshot(path=str(shots / "web-running.png"), full_page=True)
            before = api(url, "/stats/requests")["stats"][-1]["num_requests"]
            attack(browser, elsewhere, "stop.html")
            stats = api(url, "/stats/requests")
            if stats["state"] != "running" or stats["user_count"] != 3:
                raise SystemExit(f"a page from another origin stopped or retargeted the run: {stats}")
            if stats["stats"][-1]["num_requests"] < before:
                raise SystemExit("a page from another origin reset the stats")
            # Change the user count mid-run.
            page.fill("#retarget", "6")
            page.click("#retargetbtn")
            expect(page.locator("#users-now")).to_have_text("6")
            # Stop, then download the stats CSV.
            page.click("#stop")
            expect(page.locator("#status")).to_have_text("stopped")
            link = page.locator("#downloads a", has_text="stats CSV")
            with page.expect_download() as download:
                link.click()
            text = Path(download.value.path()).read_text()
            if not text.startswith("Type,Name,Request Count,Failure Count"):
                raise SystemExit(f"the downloaded stats CSV is not Locust's: {text[:80]!r}")
            if "Aggregated" not in text:
                raise SystemExit("the downloaded stats CSV has no Aggregated row")
            if shots:
                page.screenshot(path=str(shots / "web-stopped.png"), full_page=True)
            # Stopped: nothing is being sent, so the current rate reads zero.
            expect(page.locator("#rps-now")).to_have_text(re.compile(r"^0(\.0+)?$"))
            # The generator panel keeps what happened earlier: a stall an interval ago is
            # still said while the last interval keeps up (the outcome judges the whole run).
            panel = page.evaluate("""() => {
                const p = {t: 1, rps: 1, fails_per_s: 0, p50: 1, p95: 1, p99: 1, users: 1,
                           worker_cpu_pct: 5, loop_lag_ms: 150, saturated: false, stalled: true};
                points = [p, {...p, t: 2, loop_lag_ms: 1, stalled: false}];
                draw();
                return document.getElementById('health').innerText;
            }""")
            if "keeping up now; stalled in 1 earlier interval" not in panel:
                raise SystemExit(f"the generator panel forgot the stall: {panel!r}")
            if errors:
                raise SystemExit(f"script errors on the page: {errors}")
            browser.close()
    finally:
        proc.kill()
        proc.wait()
    check_staged_profile(blast)
    print("ok: pages from another origin started, stopped and reset nothing; started from the "
          "form, users rose to 3, charts drawn, retargeted to 6, stopped (rate 0), stats CSV "
          "downloaded, earlier stalls kept in the panel; the burst's form shows its stages and "
          "its four criteria")


if __name__ == "__main__":
    main()
