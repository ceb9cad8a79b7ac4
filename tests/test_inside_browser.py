"""The Inside view in headless Chromium: a text coloured by a unit, the horizon plot, a click on a character.

Needs Debian's chromium at /usr/bin/chromium and the playwright package (requirements-dev.txt); skipped
with the reason when either is missing. Saves a screenshot of the view in screenshots/.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from ui.inside import EXAMPLE

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed (pip install -r requirements-dev.txt)")

SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def page(inside_app):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(inside_app[0])
        page.wait_for_selector("#inside-text textarea")
        SCREENSHOTS.mkdir(exist_ok=True)
        yield page
        browser.close()


def test_a_unit_colours_every_character_and_the_horizon_is_plotted(page, inside_app):
    model = inside_app[1]["LSTM"]
    clean, _ = model.vocab.normalize(EXAMPLE)
    assert page.locator("#unit input").input_value() == "inside a speaker's name line (speaker_line)"
    page.locator("#unit-button").click()
    page.locator("#unit-note").get_by_text("ROC AUC").wait_for()
    tokens = page.locator("#unit-colored .token")
    assert tokens.count() == len(clean) + clean.count("\n")  # a line break is "↵", then a token that breaks the line
    backgrounds = {tokens.nth(i).evaluate("e => getComputedStyle(e).backgroundColor") for i in range(tokens.count())}
    assert len(backgrounds) > 10  # coloured by a continuous activation, not one colour
    # Each line of the text starts a line on the page: the first characters of its lines are left-aligned.
    lefts = page.locator("#unit-colored .token.highlighted").evaluate_all("ts => ts.map(t => t.getBoundingClientRect().left)")
    starts = [lefts[i] for i in range(len(clean)) if i == 0 or clean[i - 1] == "\n"]
    assert len(set(starts)) == 1 and all(x >= starts[0] for x in lefts)
    # The horizon plot draws the one model with a record.
    page.locator("#horizon-plot svg").first.wait_for()
    assert page.locator("#horizon-plot svg path[aria-roledescription='line mark']").count() == 1
    page.locator("#position input").fill("120")  # the tiny model's vocabulary drops some of the example's characters
    page.locator("#leans-button").click()
    page.locator("#leans-note").get_by_text("(character 120)").wait_for()
    assert page.locator("#leans-colored .token").count() == len(clean) + clean.count("\n")
    page.screenshot(path=SCREENSHOTS / "app-inside.png", full_page=True)


def test_a_click_on_a_character_shows_what_its_prediction_leans_on(page):
    page.locator("#leans-colored .token").nth(9).click()  # the 10th character
    page.wait_for_function("() => document.querySelector('#position input').value === '10'")
    page.locator("#leans-note").get_by_text("(character 10)").wait_for()
