"""The Inside view in headless Chromium, on a page of its own over the tiny models: a text shaded by a unit, the
horizon chart, what a prediction leans on, a click on a character. Saves a screenshot in screenshots/.

Skipped with the reason, as tests/test_browser.py is, without Chromium or playwright.
"""
from __future__ import annotations

import pytest

from ui.inside import EXAMPLE

from .test_browser import SCREENSHOTS, TIMEOUT_MS, browser  # noqa: F401 (browser: the fixture, shared)


@pytest.fixture(scope="module")
def page(browser, inside_app):  # noqa: F811 (the browser fixture)
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(inside_app[0])
    page.wait_for_selector("#inside-text textarea")
    yield page
    page.close()


def test_a_unit_shades_every_character_line_by_line(page, inside_app):
    clean, _ = inside_app[1]["LSTM"].vocab.normalize(EXAMPLE)
    assert page.locator("#unit input").input_value() == "inside a speaker's name line (speaker_line)"
    page.locator("#unit-note").get_by_text("ROC AUC").wait_for()  # shaded as the page opens
    page.locator("#unit input").fill("5")  # a unit number instead of a feature
    page.locator("#unit input").press("Enter")
    page.locator("#unit-button").click()
    page.locator("#unit-note").get_by_text("Unit 5").wait_for()
    cells = page.locator("#unit-shaded .shaded span")
    assert cells.count() == len(clean)
    shades = cells.evaluate_all("cs => cs.map(c => getComputedStyle(c).backgroundColor)")
    assert len(set(shades)) > 10  # shaded by a continuous activation, not a few colours
    # Each line of the text starts a line on the page: the first characters of its lines are left-aligned.
    lefts = cells.evaluate_all("cs => cs.map(c => c.getBoundingClientRect().left)")
    starts = {lefts[i] for i in range(len(clean)) if i == 0 or clean[i - 1] == "\n"}
    assert len(starts) == 1 and min(lefts) == min(starts)


def test_the_horizon_chart_draws_every_recorded_model(page):
    assert page.locator("#horizon-chart svg polyline").count() == 1  # the tiny paper RNN has no record
    assert page.locator("#horizon-table").get_by_text("LSTM").count() == 1


def test_a_click_on_a_character_shows_what_its_prediction_leans_on(page, inside_app):
    clean, _ = inside_app[1]["LSTM"].vocab.normalize(EXAMPLE)
    page.locator("#unit-shaded .shaded span").nth(119).click()  # the 120th character
    page.locator("#leans-note").get_by_text("(character 120)").wait_for()
    assert page.locator("#position input").input_value() == "120"
    assert page.locator("#leans-shaded span.target").inner_text() == clean[119]
    assert page.locator("#leans-shaded .shaded span").count() == len(clean)
    page.screenshot(path=SCREENSHOTS / "app-inside.png", full_page=True)
