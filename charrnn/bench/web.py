"""`python -m charrnn bench web`: the static edition in headless Chromium (not a test: it prints figures and asserts
nothing). Needs playwright, Debian's chromium and an exported site (python -m charrnn export-web).

For each model of the site, the best of `reps` runs (the machines are noisy: other processes only ever slow a run
down): its load time from a local static server in a fresh page (the model's file fetched and its session made, the
runtime's .wasm included for the first model a page loads), the first character after a writing starts with the
default prompt once the model is loaded, and characters/s of a `length`-character writing at temperature 0.8
(timed in the page, without painting). With the corpus beside it, also the largest difference between the page's
bits per character and charrnn.char_losses' on the first `chars` characters of its test split.
"""
from __future__ import annotations

import functools
import http.server
import json
import math
import threading
from pathlib import Path

from ..data import read_text, resolve_corpus, split
from ..hub import load
from ..scoring import char_losses

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def bench_web(site: Path, checkpoints: dict[str, str], reps: int = 3, length: int = 2000, data: str | None = None,
              chars: int = 2000) -> None:
    """Print the figures above for the site in directory `site`; `checkpoints` maps a model's name there to its
    checkpoint, for the exactness check (empty: no check)."""
    from playwright.sync_api import sync_playwright

    info = json.loads((site / "models.json").read_text(encoding="utf-8"))
    text = None
    if data is not None and checkpoints:
        text = split(read_text(resolve_corpus(data)))[1][:chars]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    print(f"{'model':<45} {'MB':>5} {'load ms':>8} {'first ms':>9} {'chars/s':>8} {'max Δ bits':>10}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for i, m in enumerate(info["models"]):
            load_ms, first_ms, rate = math.inf, math.inf, 0.0
            for _ in range(reps):
                page = browser.new_page()
                page.goto(url)
                page.wait_for_function("() => window.charrnnPage && window.charrnnPage.ready")
                load_ms = min(load_ms, page.evaluate("(i) => window.charrnnPage.loadMs(i)", i))
                t = page.evaluate("([i, p, n]) => window.charrnnPage.timed(i, p, n, {temperature: 0.8, seed: 1})",
                                  [i, info["sample_prompt"], length])
                first_ms, rate = min(first_ms, t["firstMs"]), max(rate, 1000 * t["n"] / t["totalMs"])
                if text is not None and m["name"] in checkpoints and _ == 0:
                    model = load(checkpoints[m["name"]]).float()
                    clean = model.vocab.normalize(text)[0]
                    bits = page.evaluate("([i, t]) => window.charrnnPage.bits(i, t)", [i, clean])
                    ref = (char_losses(model, clean) / math.log(2)).tolist()
                    delta = max(abs(a - b) for a, b in zip(bits, ref))
                page.close()
            shown = f"{delta:10.1e}" if text is not None and m["name"] in checkpoints else f"{'-':>10}"
            print(f"{m['name'][:45]:<45} {m['bytes'] / 1e6:5.1f} {load_ms:8.0f} {first_ms:9.1f} {rate:8.0f} {shown}")
        browser.close()
    server.shutdown()
