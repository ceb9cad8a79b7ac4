"""`python -m charrnn bench app`: the app's benchmark (not a test: it prints figures and asserts nothing).
Run from the project directory.

For each shipped model: time to the first character and characters/s of one generation, in this
process with the app's torch settings, for the float32 model and for its writing form (charrnn.fast),
beside the memory bandwidth of a float32 matrix-vector product as large as the model's weights, measured
in the same run (writing reads every weight once per character, so that figure lets runs on different
machines be compared); then the same through the served app. Also the wall time from
`python app.py` to its first answered request, the app's resident memory, and `--clients` clients
generating `--length` characters at once (latency from each one's request to its complete text).
The served app is a real `python app.py` subprocess on a free port; its timings go over HTTP to its
REST API (server-sent events), the concurrent clients are gradio_client.Client objects.
--screenshots also saves the app's three views with the shipped models, as the README shows them
(needs playwright and Debian's chromium, as the browser test does).
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
TARGETS = {"first_ms": 100, "chars_s": 2000, "start_s": 15, "rss_mb": 1024}


def _app():
    sys.path.insert(0, str(ROOT))  # app.py sits beside the package, not in it
    import app

    return app


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


def start_app(port: int, name: str, timeout: float = 120.0) -> tuple[subprocess.Popen, float]:
    """`python app.py` on `port`; returns the process and the seconds until it answered a /score request
    for model `name`."""
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)}
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


def screenshots(url: str, out: Path, model: str) -> list[Path]:
    """Headless Chromium: `model` writing 600 characters, its loss panel, and its score of a line."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"app-{view}.png" for view in ("write", "learned", "score")]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(url)
        page.locator("#model input").click()
        page.get_by_role("option", name=model, exact=True).click()
        page.locator("#length input[type=number]").fill("600")
        page.locator("#length input[type=number]").press("Enter")
        page.locator("#random-seed input").fill("1")
        page.locator("#generate").click()
        page.wait_for_function("() => document.querySelector('#output textarea').value.length === 600")
        page.screenshot(path=paths[0], full_page=True)
        page.get_by_role("tab", name="How it learned").click()
        page.locator("#loss-plot svg").first.wait_for()
        page.screenshot(path=paths[1], full_page=True)
        page.get_by_role("tab", name="How Molière is your text?").click()
        page.locator("#score-button").click()
        page.locator("#score-note").get_by_text("bits/char").wait_for()
        page.screenshot(path=paths[2], full_page=True)
        browser.close()
    return paths


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
        model = load(app.SHIPPED[name])
        writer = for_writing(model)
        mb = 4 * model.num_weights() / 1e6
        print(f"  {name:<26} {mb:5.1f} MB of float32 weights; a matrix-vector product that large: "
              f"{matvec_gbps(model.num_weights()):5.1f} GB/s")
        for label, m in (("model (float32)", model), (f"writing ({writer.form})", writer)):
            first, rate, cpu_rate = in_process(m, reps, rate_length)
            line = f"    {label:<17} first character {first:6.1f} ms   {rate:7,.0f} chars/s ({cpu_rate:,.0f} per CPU second)"
            if m is writer:
                short = "" if rate >= TARGETS["chars_s"] else f" by {1 - rate / TARGETS['chars_s']:.0%}"
                line += f"   [first {_mark(first <= TARGETS['first_ms'])}, chars/s {_mark(rate >= TARGETS['chars_s'])}{short}]"
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
        rss, peak = memory_mb(proc.pid)
        print(f"\napp resident memory: {rss:.0f} MiB now, {peak:.0f} MiB at peak "
              f"[{_mark(peak <= TARGETS['rss_mb'])}]")
        if screenshots_dir:
            # The README shows the best model: the lowest validation loss (never chosen on the test split).
            best = min(names, key=lambda n: recorded_nats(read_record(app.SHIPPED[n]), "val") or float("inf"))
            shots = screenshots(f"http://127.0.0.1:{port}/", screenshots_dir, best)
            print("\nscreenshots: " + ", ".join(str(s) for s in shots))
    finally:
        proc.terminate()
        proc.wait(timeout=30)

