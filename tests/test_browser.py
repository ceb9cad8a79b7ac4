"""The app in headless Chromium: write and watch the text stream, stop a generation, read the loss panel, score.

Needs Debian's chromium at /usr/bin/chromium and the playwright package (requirements-dev.txt); skipped
with the reason when either is missing. Saves a screenshot of each view in screenshots/.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import charrnn
from charrnn.data import SAMPLE_PROMPT

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed (pip install -r requirements-dev.txt)")

SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000
# Records every distinct length of the output box, every 5 ms, from inside the page.
WATCH_OUTPUT = """() => { window.lens = [];
  setInterval(() => { const n = document.querySelector('#output textarea').value.length;
                      if (window.lens[window.lens.length - 1] !== n) window.lens.push(n); }, 5); }"""


@pytest.fixture(scope="module")
def page(served_app):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(served_app)
        page.wait_for_selector("#prompt textarea")
        SCREENSHOTS.mkdir(exist_ok=True)
        yield page
        browser.close()


def choose_model(page, name):
    page.locator("#model input").click()
    page.get_by_role("option", name=name, exact=True).click()
    page.wait_for_function(f"() => document.querySelector('#model input').value === {json.dumps(name)}")


def set_number(page, selector, value):
    box = page.locator(f"{selector} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def output_length(page) -> int:
    return page.locator("#output textarea").evaluate("e => e.value.length")


def test_write_streams_the_text_to_the_chosen_length(page, app_models):
    choose_model(page, "LSTM")
    page.locator("#prompt textarea").fill("VALÈRE.\n\n☃")  # a character the model does not know
    set_number(page, "#length", 1500)
    page.locator("#random-seed input").fill("7")
    page.evaluate(WATCH_OUTPUT)
    page.locator("#generate").click()
    page.wait_for_function("() => document.querySelector('#output textarea').value.length === 1500")
    lens = page.evaluate("() => window.lens")
    assert any(0 < n < 1500 for n in lens), f"the text did not grow in steps: {lens}"
    assert lens == sorted(lens)
    expected = "".join(charrnn.generate(app_models["LSTM"], "VALÈRE.\n\n", 1500, 0.8, seed=7))
    assert page.locator("#output textarea").input_value() == expected
    page.get_by_text("1 character(s) the model has never seen were left out: '☃'").wait_for()
    page.screenshot(path=SCREENSHOTS / "app-write.png", full_page=True)


def test_stop_ends_a_generation(page):
    choose_model(page, "Slow LSTM (untrained)")  # seconds for 2,000 characters: time to press Stop
    set_number(page, "#length", 2000)
    page.locator("#generate").click()
    page.wait_for_function("() => document.querySelector('#output textarea').value.length > 0")
    page.locator("#stop").click()
    page.wait_for_timeout(1000)
    stopped = output_length(page)
    page.wait_for_timeout(1000)
    assert output_length(page) == stopped < 2000


def test_loss_panel_shows_plot_table_and_samples(page, app_models):
    choose_model(page, "LSTM")
    page.get_by_role("tab", name="How it learned").click()
    plot = page.locator("#loss-plot")
    plot.locator("svg").first.wait_for()
    assert plot.locator("svg path[aria-roledescription='line mark']").count() == 3  # train, validation, test
    final = app_models["LSTM"].record["final"]
    summary = page.locator("#summary")
    summary.get_by_text(f"{final['test']['bpc']:.3f}", exact=True).wait_for()
    assert summary.get_by_text("over-fitting", exact=True).count() == 1
    lines = page.locator("#all-plot svg path[aria-roledescription='line mark']")
    assert lines.count() == 2 + 3 + 3  # paper: train, test; the LSTM and its unfinished copy: also validation
    history = app_models["LSTM"].record["history"]
    sample = page.locator("#sample textarea")
    assert sample.input_value() == SAMPLE_PROMPT + history[-1]["sample"]
    set_number(page, "#epoch", 1)
    page.wait_for_function("() => document.querySelector('#epoch input[type=number]').value === '1'")
    page.get_by_text(f"Epoch {history[0]['epoch']:g}:").wait_for()
    assert sample.input_value() == SAMPLE_PROMPT + history[0]["sample"]
    page.screenshot(path=SCREENSHOTS / "app-learned.png", full_page=True)


def test_score_colours_every_character(page):
    page.get_by_role("tab", name="How Molière is your text?").click()
    page.locator("#score-text textarea").fill("DORINE.\n\nEh bien, madame, que faut il?")  # ',' is unknown
    page.locator("#score-button").click()
    page.locator("#score-note").get_by_text("bits/char").wait_for()
    assert page.locator("#colored .token").count() == len("DORINE.\n\nEh bien madame que faut il?")
    assert "were left out: ','" in page.locator("#score-note").inner_text()
    page.screenshot(path=SCREENSHOTS / "app-score.png", full_page=True)
    choose_model(page, "LSTM")  # the model with a cache record
    page.locator("#score-cache input").check()
    page.locator("#score-button").click()
    page.locator("#score-note").get_by_text("with its cache").wait_for()
