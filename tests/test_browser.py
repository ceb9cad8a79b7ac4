"""The app in headless Chromium, as a visitor meets it, at desktop (1366x900) and phone (390x844) sizes.

Needs Debian's chromium at /usr/bin/chromium and the playwright package (requirements-dev.txt); skipped
with the reason when either is missing. Saves a screenshot of each view at each size in screenshots/.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

import charrnn
from charrnn import report
from charrnn.data import SAMPLE_PROMPT
from ui.write import EXAMPLES, example_label

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed (pip install -r requirements-dev.txt)")

SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}
TABS = {"write": "Write", "compare": "Compare", "learned": "Learning", "score": "Your text", "inside": "Inside"}


def done(n: int) -> str:
    """A page function that is true once the Write view has written n characters (not before: the status of
    an earlier text may still be on screen when a new one is asked for)."""
    return f"() => document.querySelector('#output .status').textContent.startsWith('{n:,} characters in ')"


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium, shared by the browser tests of the app, its Inside view and the static edition."""
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        SCREENSHOTS.mkdir(exist_ok=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module", params=list(SIZES))
def page(request, browser, served_app):
    width, height = SIZES[request.param]
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(served_app)
    page.wait_for_selector("#prompt textarea")
    page.size = request.param
    yield page
    page.close()


def choose_model(page, label):
    page.locator("#model input").click()
    page.get_by_role("option", name=label, exact=True).click()
    page.wait_for_function(f"() => document.querySelector('#model input').value === {json.dumps(label)}")


def open_tab(page, tab_id):
    page.get_by_role("tab", name=TABS[tab_id], exact=True).click()


def text_of(locator) -> str:
    return locator.evaluate("e => e.innerText")


def test_every_view_is_a_tab_at_this_size(page):
    for tab_id, label in TABS.items():
        tab = page.get_by_role("tab", name=label, exact=True)
        assert tab.is_visible(), f"the {label} tab is hidden at {page.size} size"
    open_tab(page, "write")


def test_after_generate_the_text_is_on_screen_without_scrolling(page, app_models):
    open_tab(page, "write")
    page.evaluate("() => window.scrollTo(0, 0)")
    page.locator("#prompt textarea").fill("VALÈRE.\n\n☃")  # a character the model does not know
    page.locator("#generate").click()
    page.wait_for_function(done(500))
    assert page.evaluate("() => window.scrollY") == 0
    box = page.locator("#output .play").bounding_box()
    assert 0 <= box["y"] and box["y"] + 40 <= SIZES[page.size][1], f"the text starts at {box['y']} px"
    shown = text_of(page.locator("#output .play"))
    assert shown.startswith("VALÈRE.\n\n")  # the prompt, without the character the model does not know
    page.get_by_text("1 character(s) the model has never seen were left out: '☃'").first.wait_for()
    page.screenshot(path=SCREENSHOTS / f"app-write-{page.size}.png", full_page=True)


@pytest.mark.parametrize("page", ["desktop"], indirect=True)  # the same at both sizes
def test_the_text_streams_and_is_the_library_s(page, app_models):
    open_tab(page, "write")
    page.locator("#prompt textarea").fill(SAMPLE_PROMPT)
    page.get_by_text("Advanced: top-k, top-p, random seed").click()
    page.locator("#random-seed input").fill("7")
    page.locator("#random-seed input").press("Enter")
    page.locator("#length input[type=number]").fill("1500")
    page.locator("#length input[type=number]").press("Enter")
    page.evaluate("""() => { window.lens = []; setInterval(() => { const p = document.querySelector('#output .play');
        const n = p ? p.innerText.length : 0; if (window.lens[window.lens.length - 1] !== n) window.lens.push(n); }, 5); }""")
    page.locator("#generate").click()
    page.wait_for_function(done(1500))
    lens = page.evaluate("() => window.lens")
    final = len(SAMPLE_PROMPT) + 1500
    assert any(len(SAMPLE_PROMPT) < n < final for n in lens), f"the text did not grow in steps: {lens}"
    expected = "".join(charrnn.generate(app_models["LSTM"], SAMPLE_PROMPT, 1500, 0.8, seed=7))
    assert text_of(page.locator("#output .play")) == SAMPLE_PROMPT + expected


def test_stop_is_active_only_while_writing(page):
    open_tab(page, "write")
    stop = page.locator("#stop")
    assert stop.is_disabled() and page.locator("#generate").is_enabled()
    choose_model(page, "Slow LSTM (untrained)")  # seconds for 2,000 characters: time to press Stop
    page.locator("#prompt textarea").fill(SAMPLE_PROMPT)
    page.locator("#length input[type=number]").fill("2000")
    page.locator("#length input[type=number]").press("Enter")
    page.locator("#generate").click()
    page.wait_for_function("() => document.querySelector('#output .status').textContent.startsWith('writing')")
    assert stop.is_enabled() and page.locator("#generate").is_disabled()
    stop.click()
    page.wait_for_function("() => document.querySelector('#output .status').textContent.includes('stopped')")
    assert stop.is_disabled() and page.locator("#generate").is_enabled()
    stopped = text_of(page.locator("#output"))
    assert re.fullmatch(r"HARPAGON\.\n\n.+\n[0-9,]+ characters, stopped, in [0-9.]+ s", stopped, re.S), stopped
    assert int(re.search(r"([0-9,]+) characters, stopped", stopped)[1].replace(",", "")) < 2000
    # A full round trip through the server later, the stopped text has not grown.
    choose_model(page, "LSTM · best")
    open_tab(page, "learned")
    page.locator("#key-figures").get_by_text("bits/char").first.wait_for()
    open_tab(page, "write")
    assert text_of(page.locator("#output")) == stopped


def test_the_examples_fit_the_screen(page):
    """Every example of the Write and Your text views is whole on screen, at phone size too: nothing runs off
    the right edge, and no example needs scrolling sideways (a table of the examples' settings did)."""
    for tab_id in ("write", "score"):
        open_tab(page, tab_id)
        examples = page.locator(f"#{tab_id}-examples")
        examples.wait_for()
        overflow = examples.evaluate("""e => [e, ...e.querySelectorAll('*')].filter(x => x.offsetParent !== null)
            .filter(x => x.scrollWidth > x.clientWidth + 1 || x.getBoundingClientRect().right > window.innerWidth)
            .map(x => x.tagName + ' ' + (x.textContent || '').trim().slice(0, 30))""")
        assert overflow == [], f"at {page.size} size, these run off the screen in the {tab_id} view: {overflow}"
    labels = page.locator("#write-examples button").all_inner_texts()
    assert [label.strip() for label in labels] == [example_label(*e) for e in EXAMPLES]  # whole, not cut short
    open_tab(page, "write")


@pytest.mark.parametrize("page", ["desktop"], indirect=True)  # the same at both sizes
def test_an_example_runs_on_click(page, app_models):
    open_tab(page, "write")
    page.get_by_text("TARTUFFE.").first.click()
    page.wait_for_function(done(300))
    expected = "".join(charrnn.generate(app_models["LSTM"], "TARTUFFE.\n\n", 300, 0.0))  # greedy: no seed needed
    prompt = app_models["LSTM"].vocab.normalize("TARTUFFE.\n\n")[0]  # the tiny model knows no U
    assert text_of(page.locator("#output .play")) == prompt + expected
    assert page.locator("#prompt textarea").input_value() == "TARTUFFE.\n\n"


def test_compare_streams_every_model_side_by_side(page, app_models):
    open_tab(page, "compare")
    page.locator("#compare-button").click()
    page.wait_for_function("() => document.querySelector('#compare-stop').disabled === false")
    page.wait_for_function("() => document.querySelector('#compare-stop').disabled === true")
    columns = page.locator("#compare-output .play")
    assert columns.count() == len(app_models)
    for i, (name, model) in enumerate(app_models.items()):
        expected = "".join(charrnn.generate(model, SAMPLE_PROMPT, 300, 0.8, seed=1))
        assert text_of(columns.nth(i)) == SAMPLE_PROMPT + expected, name
    page.screenshot(path=SCREENSHOTS / f"app-compare-{page.size}.png", full_page=True)


def test_the_learning_view_draws_every_model(page, app_models):
    choose_model(page, "LSTM · best")
    open_tab(page, "learned")
    bars = page.locator("#test-bars svg")
    bars.wait_for()
    with_records = [n for n, m in app_models.items() if (m.record.get("final") or {}).get("test")]
    assert bars.locator("text.label").evaluate_all("els => els.map(e => e.textContent)") == with_records
    assert page.locator("#loss-curves figure").count() == len(app_models)
    history = app_models["LSTM"].record["history"]
    assert text_of(page.locator("#sample .play")) == SAMPLE_PROMPT + history[-1]["sample"]
    box = page.locator("#epoch input[type=number]")
    box.fill("1")
    box.press("Enter")
    page.get_by_text(f"Epoch {history[0]['epoch']:g}:").wait_for()
    page.wait_for_function(f"() => document.querySelector('#sample .play').innerText === "
                           f"{json.dumps(SAMPLE_PROMPT + history[0]['sample'])}")
    page.screenshot(path=SCREENSHOTS / f"app-learned-{page.size}.png", full_page=True)


def test_score_colours_the_text_and_says_what_the_model_expected(page, app_models):
    choose_model(page, "LSTM · best")
    open_tab(page, "score")
    text = "DORINE.\n\nEh bien, madame, que faut il?"  # ',' is not in the tiny vocabulary
    page.locator("#score-text textarea").fill(text)
    page.locator("#score-button").click()
    page.locator("#score-note").get_by_text("bits/char").first.wait_for()
    assert "were left out: ','" in text_of(page.locator("#score-note"))
    clean = text.replace(",", "")
    shown = "".join(page.locator("#colored .scored > span").all_inner_texts()).replace("↵\n", "\n")
    assert shown == clean
    runs = page.locator("#colored .scored > span").count()
    assert runs < len(clean)  # runs of one colour, not one element per character
    target = page.locator("#colored .scored > span").nth(2)
    target.hover()  # the run under the pointer is split into characters
    cell = target.locator("span").first
    cell.hover()
    i = int(cell.get_attribute("data-c"))
    bits = report.score(app_models["LSTM"], clean)["bits"][i - 1]
    name = {"\n": "↵ (new line)", " ": "␣ (space)"}.get(clean[i], clean[i])
    assert text_of(page.locator("#colored .hover-info")).startswith(f"{name}: {round(bits, 2)} bits. The model "
                                                                    "expected: ")
    page.screenshot(path=SCREENSHOTS / f"app-score-{page.size}.png", full_page=True)


def test_the_score_is_cleared_when_the_model_changes_and_after_an_error(page):
    choose_model(page, "LSTM · best")
    open_tab(page, "score")
    page.locator("#score-text textarea").fill("DORINE.\n\nEh bien.")
    page.locator("#score-button").click()
    note = page.locator("#score-note")
    note.get_by_text("bits/char").first.wait_for()
    choose_model(page, "Paper RNN (Mikolov 2010)")
    page.wait_for_function("() => !document.querySelector('#score-note').innerText.includes('bits/char')")
    assert page.locator("#colored .scored").count() == 0
    page.locator("#score-button").click()
    note.get_by_text("bits/char").first.wait_for()
    page.locator("#score-text textarea").fill("☃☃")  # nothing the model knows: an error
    page.locator("#score-button").click()
    page.get_by_text("text must hold at least two characters the model knows").first.wait_for()
    assert "bits/char" not in text_of(note) and page.locator("#colored .scored").count() == 0
