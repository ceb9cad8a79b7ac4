"""`python -m charrnn bench app`: the app's benchmark (not a test: it prints figures and asserts nothing).
Run from the project directory.

For each shipped model: time to the first character and characters/s of one generation, in this
process with the app's torch settings, for the float32 model and for its writing form (charrnn.fast),
beside the memory bandwidth of a float32 matrix-vector product as large as the model's weights, measured
in the same run (writing reads every weight once per character, so that figure lets runs on different
machines be compared); then the same through the served app. Also the wall time from
`python app.py` to its first answered request, the app's resident memory, `--clients` clients
generating `--length` characters at once (latency from each one's request to its complete text), the
first character of two visitors asking at the same moment, the Compare view (first characters, all
complete), the time Chromium takes to receive and draw a 5,000-character score beyond the
request's own time, the app's memory after 100 and 1,000 more requests, and how long a request that
needs seconds runs in an app whose time limit is 1 s. The served app is a real `python app.py` subprocess on a free port; its timings go
over HTTP to its REST API (server-sent events), the concurrent clients are gradio_client.Client objects.
--screenshots also saves every view at desktop and phone sizes with the shipped models, as the README
shows them (the browser parts need playwright and Debian's chromium, as the browser test does).
"""
from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import torch
import torch.nn.functional as F

from ..checkpoint import read_record
from ..data import SAMPLE_PROMPT
from ..fast import cpu_name, for_writing
from ..hub import load
from ..record import recorded_nats
from ..sample import configure_cpu_for_sampling, generate

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {"first_ms": 100, "chars_s": 2000, "start_s": 15, "rss_mb": 1024, "first_two_ms": 300, "draw_s": 2.0}


def _app():
    sys.path.insert(0, str(ROOT))  # app.py sits beside the package, not in it
    import app

    return app


def load_shipped(name: str):
    """The shipped model the app names `name`."""
    return load(_app().SHIPPED[name])


def in_process(model, reps: int, length: int) -> tuple[float, float, float]:
    """Median ms to the first character over `reps` generations, and characters/s of one `length`-long one:
    per second of wall time, and per second of this process's CPU time (which other processes sharing the
    cores do not lengthen: it tells the machine's speed apart from its load)."""
    firsts = []
    for seed in range(reps):
        t = time.perf_counter()
        next(generate(model, SAMPLE_PROMPT, length, temperature=0.8, seed=seed))
        firsts.append(time.perf_counter() - t)
    t, cpu = time.perf_counter(), time.process_time()
    n = sum(1 for _ in generate(model, SAMPLE_PROMPT, length, temperature=0.8, seed=0))
    return 1000 * statistics.median(firsts), n / (time.perf_counter() - t), n / (time.process_time() - cpu)


def matvec_gbps(n_weights: int, reps: int = 100) -> float:
    """GB/s of one float32 matrix-vector product over a (n_weights / 1024, 1024) matrix, best of `reps`."""
    W, x = torch.randn(max(1, n_weights // 1024), 1024), torch.randn(1, 1024)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        F.linear(x, W)  # (1, n_weights / 1024)
        best = min(best, time.perf_counter() - t)
    return 4 * W.numel() / best / 1e9


def _call(http: httpx.Client, endpoint: str, data: list):
    """One REST call: yields (seconds since the request, event, data) for each server-sent event."""
    t = time.perf_counter()
    event_id = http.post(f"/gradio_api/call/{endpoint}", json={"data": data}).raise_for_status().json()["event_id"]
    event = None
    with http.stream("GET", f"/gradio_api/call/{endpoint}/{event_id}") as r:
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                yield time.perf_counter() - t, event, json.loads(line[6:])


def served(http: httpx.Client, name: str, reps: int, length: int) -> tuple[float, float]:
    """As in_process, through the app: first streamed character, and characters/s of the whole answer."""
    firsts = []
    for seed in range(reps):
        for t, event, _ in _call(http, "generate", [name, SAMPLE_PROMPT, length, 0.8, 0, 1.0, seed]):
            if event == "generating":
                firsts.append(t)
                break
    for t, event, data in _call(http, "generate", [name, SAMPLE_PROMPT, length, 0.8, 0, 1.0, 0]):
        if event == "complete":
            return 1000 * statistics.median(firsts), len(data[0]) / t
        if event == "error":
            raise RuntimeError(f"the app refused the request: {data}")
    raise RuntimeError("the app closed the stream without an answer")


def concurrent(url: str, name: str, clients: int, length: int) -> list[float | None]:
    """Seconds each of `clients` simultaneous gradio_client users waits for `length` characters (None: failed)."""
    from gradio_client import Client

    users = [Client(url, verbose=False) for _ in range(clients)]  # connected before the clock starts
    latencies: list[float | None] = [None] * clients
    start = threading.Barrier(clients)

    def user(i: int) -> None:
        start.wait()
        t = time.perf_counter()
        text = users[i].predict(name, SAMPLE_PROMPT, length, 0.8, 0, 1.0, i, api_name="/generate")
        if len(text) == length:
            latencies[i] = time.perf_counter() - t

    threads = [threading.Thread(target=user, args=(i,)) for i in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return latencies


def memory_mb(pid: int) -> tuple[float, float]:
    """Resident memory now and at its peak (VmRSS, VmHWM), in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def start_app(port: int, name: str, timeout: float = 120.0, **env_vars: str) -> tuple[subprocess.Popen, float]:
    """`python app.py` on `port` (with `env_vars` set); returns the process and the seconds until it answered a
    /score request for model `name`."""
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), **env_vars}
    env.pop("CHARRNN_MODELS", None)  # the shipped models only
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    while time.perf_counter() - t < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with code {proc.returncode}:\n{proc.stderr.read()}")
        try:
            events = list(_call(http, "score", [name, SAMPLE_PROMPT + "Ah!", False]))
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        if events[-1][1] == "complete":
            return proc, time.perf_counter() - t
        raise RuntimeError(f"app.py answered with an error: {events[-1][2]}")
    proc.terminate()
    raise RuntimeError(f"app.py did not answer within {timeout:.0f} s")


VIEWS = {"write": "Write", "compare": "Compare", "learned": "Learning", "score": "Your text", "inside": "Inside"}
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}
CHROMIUM = dict(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--headless", "--disable-gpu",
                                                           "--no-first-run", "--disable-background-networking"])


def screenshots(url: str, out: Path, label: str) -> list[Path]:
    """Headless Chromium at desktop and phone sizes: every view, with the model whose dropdown label is `label`
    writing 600 characters, every model comparing, and a scored text read with and without the cache."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    with sync_playwright() as p:
        browser = p.chromium.launch(**CHROMIUM)
        for size, (width, height) in SIZES.items():
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(120_000)
            page.goto(url)
            page.locator("#model input").click()
            page.get_by_role("option", name=label, exact=True).click()
            page.locator("#length input[type=number]").fill("600")
            page.locator("#length input[type=number]").press("Enter")
            page.locator("#generate").click()
            page.wait_for_function("() => document.querySelector('#output .status').textContent"
                                   ".startsWith('600 characters in')")
            for view, tab in VIEWS.items():
                page.get_by_role("tab", name=tab, exact=True).click()
                if view == "compare":
                    page.locator("#compare-button").click()
                    page.wait_for_function("() => document.querySelector('#compare-stop').disabled === false")
                    page.wait_for_function("() => document.querySelector('#compare-stop').disabled === true")
                elif view == "learned":
                    page.locator("#test-bars svg").wait_for()
                elif view == "inside":
                    page.locator("#horizon-chart svg").wait_for()
                elif view == "score":  # the names that come again, read without and with the cache
                    page.locator("#score-cache input").check()
                    page.get_by_text("Names that come again").click()
                    page.locator("#score-note").get_by_text("bits/char").first.wait_for()
                paths.append(out / f"app-{view}-{size}.png")
                page.screenshot(path=paths[-1], full_page=view != "write")  # Write: what is on screen first
            page.close()
        browser.close()
    return paths


def score_draw_time(url: str, http: httpx.Client, name: str, label: str, chars: int = 5000) -> tuple[float, float]:
    """Seconds from Score to the coloured text on screen in Chromium, and seconds of the same request through the
    REST API, for a `chars`-character text the model wrote itself (no corpus text needed). Their difference is
    what the browser spends receiving and drawing the answer."""
    from playwright.sync_api import sync_playwright

    text = "".join(generate(load_shipped(name), SAMPLE_PROMPT, chars - len(SAMPLE_PROMPT), temperature=0.8, seed=0))
    text = SAMPLE_PROMPT + text
    t = time.perf_counter()
    events = list(_call(http, "score", [name, text, False]))
    client_s = time.perf_counter() - t
    if events[-1][1] != "complete":
        raise RuntimeError(f"the app refused the request: {events[-1][2]}")
    with sync_playwright() as p:
        browser = p.chromium.launch(**CHROMIUM)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(url)
        page.locator("#model input").click()
        page.get_by_role("option", name=label, exact=True).click()
        page.get_by_role("tab", name=VIEWS["score"], exact=True).click()
        page.locator("#score-text textarea").fill(text)
        # Time in the page: from the click to two animation frames after the coloured text is in the page.
        browser_ms = page.evaluate("""() => new Promise((done) => {
            const t0 = performance.now();
            new MutationObserver((_, obs) => {
                if (!document.querySelector('#colored .scored')) return;
                obs.disconnect();
                requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0)));
            }).observe(document.querySelector('#colored'), {childList: true, subtree: true});
            document.querySelector('#score-button').click();
        })""")
        browser.close()
    return browser_ms / 1000, client_s


def compare_served(http: httpx.Client, reps: int) -> tuple[float, float]:
    """/compare through the app: median ms to the first characters of every model, and seconds until all
    models have written the default 300 characters."""
    firsts, complete = [], []
    for seed in range(reps):
        for t, event, data in _call(http, "compare", [SAMPLE_PROMPT, 300, 0.8, seed]):
            if event == "generating" and len(firsts) <= seed:
                firsts.append(t)
            elif event == "complete":
                complete.append(t)
            elif event == "error":
                raise RuntimeError(f"the app refused the request: {data}")
    return 1000 * statistics.median(firsts), statistics.median(complete)


def first_character_two_visitors(http: httpx.Client, name: str, length: int = 1000) -> list[float]:
    """Milliseconds to the first streamed character for each of two visitors who ask at the same moment."""
    firsts: list[float] = []
    start = threading.Barrier(2)

    def visitor(seed: int) -> None:
        start.wait()
        for t, event, _ in _call(http, "generate", [name, SAMPLE_PROMPT, length, 0.8, 0, 1.0, seed]):
            if event == "generating":
                firsts.append(1000 * t)
                break

    threads = [threading.Thread(target=visitor, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return firsts


def memory_under_load(http: httpx.Client, pid: int, name: str, counts=(100, 1000)) -> dict[int, float]:
    """Resident MiB of the app after each of `counts` mixed requests (write, score, history, compare with
    model `name`, each a session of its own as API calls are)."""
    requests = [("generate", [name, SAMPLE_PROMPT, 20, 0.8, 0, 1.0, 1]), ("score", [name, SAMPLE_PROMPT + "Ah!", False]),
                ("history", [name]), ("compare", [SAMPLE_PROMPT, 5, 0.8, 1])]
    rss = {}
    for i in range(max(counts)):
        endpoint, data = requests[i % len(requests)]
        list(_call(http, endpoint, data))
        if i + 1 in counts:
            rss[i + 1] = memory_mb(pid)[0]
    return rss


def time_limited_request(name: str, limit_s: float = 1.0) -> tuple[float, str]:
    """Seconds a 5,000-character score with the cache (several seconds of work for the larger models) takes
    in an app whose request time limit is `limit_s`, and how it ended."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc, _ = start_app(port, name, CHARRNN_TIME_LIMIT_S=str(limit_s))
    try:
        text = SAMPLE_PROMPT + "".join(generate(load_shipped(name), SAMPLE_PROMPT, 5000 - len(SAMPLE_PROMPT),
                                                temperature=0.8, seed=0))
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        t, event, data = list(_call(http, "score", [name, text, True]))[-1]
        return t, "stopped by the limit" if event == "error" and "time limit" in str(data) else f"{event}: {data}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def run(reps: int = 5, length: int = 500, rate_length: int = 2000, clients: int = 8,
        screenshots_dir: Path | None = None) -> None:
    """Print the app's benchmark (see the module's docstring)."""
    app = _app()
    names = [n for n, path in app.SHIPPED.items() if path.exists()]
    if not names:
        raise FileNotFoundError(f"no shipped checkpoint under {ROOT / 'checkpoints'}: train them first (see the README)")
    print(f"python -m charrnn bench app --reps {reps} --length {length} --rate-length {rate_length} "
          f"--clients {clients}   ({os.cpu_count()} CPUs, torch {torch.__version__})\n")

    configure_cpu_for_sampling(threads=1)  # as app.main() does
    print(f"In this process on {cpu_name()} (load average {os.getloadavg()[0]:.1f}), with the app's torch settings "
          f"(charrnn.generate),\nthe float32 model and its writing form (charrnn.fast.for_writing; the target is the "
          f"writing form's):")
    for name in names:
        model = load_shipped(name)
        writer = for_writing(model)
        mb = 4 * model.num_weights() / 1e6
        print(f"  {name:<26} {mb:5.1f} MB of float32 weights; a matrix-vector product that large: "
              f"{matvec_gbps(model.num_weights()):5.1f} GB/s")
        for label, m in (("model (float32)", model), (f"writing ({writer.form})", writer)):
            first, rate, cpu_rate = in_process(m, reps, rate_length)
            line = f"    {label:<17} first character {first:6.1f} ms   {rate:7,.0f} chars/s ({cpu_rate:,.0f} per CPU s)"
            if m is writer:
                ok = rate >= TARGETS["chars_s"]
                short = "" if ok else f" by {1 - rate / TARGETS['chars_s']:.0%}"
                line += f"   [first {_mark(first <= TARGETS['first_ms'])}, chars/s {_mark(ok)}{short}]"
            print(line)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc, start_s = start_app(port, names[0])
    try:
        print(f"\n`python app.py` to its first answered request: {start_s:.1f} s "
              f"[{_mark(start_s <= TARGETS['start_s'])}]\n\nThrough the served app (REST API, server-sent events):")
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        for name in names:
            first, rate = served(http, name, reps, rate_length)
            print(f"  {name:<26} first character {first:6.1f} ms [{_mark(first <= TARGETS['first_ms'])}]   "
                  f"{rate:7,.0f} chars/s")
        print(f"\n{clients} gradio_client clients at once, {length} characters each:")
        for name in names:
            lat = concurrent(f"http://127.0.0.1:{port}/", name, clients, length)
            done = sorted(x for x in lat if x is not None)
            p95 = done[min(len(done) - 1, round(0.95 * (len(done) - 1)))] if done else float("nan")
            print(f"  {name:<26} {len(done)}/{clients} complete [{_mark(len(done) == clients)}]   "
                  f"median {statistics.median(done) if done else float('nan'):.2f} s   p95 {p95:.2f} s")
        print("\nTwo visitors asking at the same moment, first character of each:")
        for name in names:
            firsts = first_character_two_visitors(http, name)
            print(f"  {name:<26} " + ", ".join(f"{t:.0f} ms" for t in sorted(firsts))
                  + f" [{_mark(max(firsts) <= TARGETS['first_two_ms'])}]")
        first, complete = compare_served(http, reps)
        print(f"\nCompare (every model, 300 characters each): first characters {first:.0f} ms, all complete in "
              f"{complete:.2f} s")
        # The best model: the lowest validation loss (never chosen on the test split); the README shows it.
        best = min(names, key=lambda n: recorded_nats(read_record(app.SHIPPED[n]), "val") or float("inf"))
        browser_s, client_s = score_draw_time(f"http://127.0.0.1:{port}/", http, best, f"{best} · best")
        print(f"\nScoring 5,000 characters ({best}): {client_s:.2f} s through the REST API, {browser_s:.2f} s from "
              f"Score to the coloured text in Chromium: {browser_s - client_s:.2f} s to receive and draw it "
              f"[{_mark(browser_s - client_s <= TARGETS['draw_s'])}]")
        rss, peak = memory_mb(proc.pid)
        print(f"\napp resident memory: {rss:.0f} MiB now, {peak:.0f} MiB at peak "
              f"[{_mark(peak <= TARGETS['rss_mb'])}]")
        after = memory_under_load(http, proc.pid, names[0])
        print("after more mixed requests (each a session of its own): "
              + ", ".join(f"{mib:.0f} MiB after {n:,}" for n, mib in after.items()))
        if screenshots_dir:
            shots = screenshots(f"http://127.0.0.1:{port}/", screenshots_dir, f"{best} · best")
            print("\nscreenshots: " + ", ".join(str(s) for s in shots))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    seconds, how = time_limited_request(best)
    print(f"\nA 5,000-character score with the cache ({best}) in an app whose time limit is 1 s: {how} after "
          f"{seconds:.2f} s [{_mark(seconds <= 1.5)}]")

