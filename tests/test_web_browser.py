"""The static edition (python -m charrnn export-web) in headless Chromium, served by a plain static file server,
at desktop (1366x900) and phone (390x844) sizes: the page's writing and scoring are the library's.

Needs Debian's chromium at /usr/bin/chromium, the playwright package and the runtime's npm package (`npm ci` in
ui/web); skipped with the reason when one is missing. Saves screenshots in screenshots/.
"""
from __future__ import annotations

import functools
import http.server
import math
import threading

import pytest
import torch

import charrnn
from charrnn import inside
from charrnn.cli import web_charts, web_loss_classes, web_views
from charrnn.data import SAMPLE_PROMPT
from charrnn.units import bits as to_bits
from charrnn.web import export_site
from ui import limits
from ui.inside import EXAMPLE, NEGATIVE, POSITIVE
from ui.render import LOSS_CLASSES, loss_class

from .test_web import PAGE, play_text
from .test_browser import SCREENSHOTS, SIZES, TIMEOUT_MS, browser  # noqa: F401 (browser: the fixture, shared)

if not (PAGE / "node_modules" / "onnxruntime-web").exists():
    pytest.skip("onnxruntime-web is not installed: run `npm ci` in ui/web", allow_module_level=True)
pytest.importorskip("onnx", reason="onnx is not installed (pip install -r requirements-dev.txt)")

NAMES = ["Paper RNN", "LSTM", "Slow LSTM (untrained)"]


@pytest.fixture(scope="module")
def web_models(tiny_checkpoints, inside_lstm) -> dict:
    """The tiny paper RNN, the tiny LSTM (with an inside record), and an untrained 2-layer LSTM big enough that a
    generation lasts a while (to stop it)."""
    lstm = charrnn.load(inside_lstm)
    torch.manual_seed(0)
    slow = charrnn.CharRNN(charrnn.ModelConfig(lstm.config.vocab, "lstm", hidden_size=512, num_layers=2, embed_size=16))
    return dict(zip(NAMES, [charrnn.load(tiny_checkpoints["paper"]), lstm, slow.eval()]))


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(web_models, tmp_path_factory):
    """The exported site served by Python's plain static file server on 127.0.0.1; yields (its URL, its directory)."""
    out = tmp_path_factory.mktemp("web") / "site"
    export_site(web_models, out, PAGE, limits.as_dict(), loss_classes=web_loss_classes(), charts=web_charts(web_models),
                views=web_views(web_models)[0], inside=web_views(web_models)[1])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", out
    server.shutdown()


@pytest.fixture(scope="module", params=list(SIZES))
def page(request, browser, site):  # noqa: F811 (the browser fixture)
    width, height = SIZES[request.param]
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(TIMEOUT_MS)
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(site[0])
    page.wait_for_function("() => window.charrnnPage && window.charrnnPage.ready")
    page.size, page.requests = request.param, requests
    yield page
    page.close()


def written(page, n: int, where: str = "#output") -> None:
    page.wait_for_function(f"() => (document.querySelector('{where} .status') || {{}}).textContent"
                           f"?.startsWith('{n:,} characters')")


def generate(page, model: str, prompt: str, length: int, temperature: float, seed: int = -1) -> None:
    page.get_by_role("tab", name="Write").click()
    page.locator("#model").select_option(value=str(NAMES.index(model)))
    page.locator("#prompt").fill(prompt)
    page.locator("#length").fill(str(length))
    page.locator("#temperature").fill(str(temperature))
    if not page.locator("#random-seed").is_visible():
        page.get_by_text("Advanced: top-k, top-p, random seed").click()
    page.locator("#random-seed").fill(str(seed))
    # The last writing's status ("200 characters in ...") would satisfy `written` before this one, still loading
    # its model, has begun.
    page.evaluate("() => { document.querySelector('#output').innerHTML = ''; }")
    page.locator("#generate").click()


@pytest.mark.parametrize("page", ["desktop"], indirect=True)
@pytest.mark.parametrize("name, prompt", [(NAMES[0], "VALÈRE.\n\n"), (NAMES[1], "VALÈRE.\n\n"), (NAMES[1], "")])
def test_greedy_writing_in_the_page_is_the_library_s(page, web_models, name, prompt):
    generate(page, name, prompt, 200, 0)
    written(page, 200)
    expected = "".join(charrnn.generate(web_models[name].float(), prompt, 200, temperature=0))
    # textContent: the tiny LSTM writes only line breaks, and Chromium's innerText sometimes drops trailing ones
    assert page.locator("#output .play").evaluate("e => e.textContent") == prompt + expected


@pytest.mark.parametrize("page", ["desktop"], indirect=True)
@pytest.mark.parametrize("i, name", list(enumerate(NAMES[:2])))
def test_the_page_s_bits_per_character_are_the_library_s(page, web_models, i, name):
    text = play_text(1500, seed=3)
    bits = page.evaluate("([i, text]) => window.charrnnPage.bits(i, text)", [i, text])
    expected = (charrnn.char_losses(web_models[name].float(), text) / math.log(2)).tolist()
    assert len(bits) == len(expected) == len(text) - 1
    assert max(abs(a - b) for a, b in zip(bits, expected)) < 1e-3


@pytest.mark.parametrize("page", ["desktop"], indirect=True)
def test_the_page_normalises_user_text_as_the_library_does(page, web_models):
    vocab = web_models["LSTM"].vocab
    for text in ["VALE\u0300RE.\r\nC\u2019est \u00abbien\u00bb\u2026 \u2014 ☃ 😀 dit-il\u00a0!\t",
                 "\u201cQuoi\u201d, \u2018non\u2019 \r ÉLISE 1789 «»"]:
        clean, n = vocab.normalize(text)
        got = page.evaluate("([text]) => window.charrnnPage.normalize(1, text)", [text])
        assert (got["text"], got["n"], got["dropped"]) == (clean, n, vocab.dropped_chars(text))


@pytest.mark.parametrize("page", ["desktop"], indirect=True)
@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, 0, 1.0), (0.7, 5, 1.0), (1.3, 0, 0.6), (0.5, 3, 0.9)])
def test_the_page_s_sampling_distribution_is_the_library_s(page, temperature, top_k, top_p):
    from charrnn.sample import next_char_probs

    logits = torch.randn(40, generator=torch.Generator().manual_seed(top_k)) * 3
    got = page.evaluate("([l, t, k, p]) => window.charrnnPage.probs(l, t, k, p)",
                        [logits.tolist(), temperature, top_k, top_p])
    expected = next_char_probs(logits, temperature, top_k, top_p)
    assert max(abs(a - b) for a, b in zip(got, expected.tolist())) < 1e-6
    assert sum(p > 0 for p in got) == int((expected > 0).sum())


@pytest.mark.parametrize("page", ["desktop"], indirect=True)
def test_the_text_streams_and_stop_stops_it(page):
    page.evaluate("""() => { window.lens = []; setInterval(() => { const p = document.querySelector('#output .play');
        const n = p ? p.innerText.length : 0; if (window.lens[window.lens.length - 1] !== n) window.lens.push(n); }, 5); }""")
    generate(page, NAMES[2], "HARPAGON.\n\n", limits.MAX_LENGTH, 1.0)
    page.wait_for_function("() => document.querySelector('#output .status')?.textContent.startsWith('writing…')")
    assert page.locator("#generate").is_disabled() and page.locator("#stop").is_enabled()
    page.locator("#stop").click()
    page.wait_for_function("() => document.querySelector('#output .status').textContent.includes('stopped')")
    status = page.locator("#output .status").inner_text()
    n = int(status.split()[0].replace(",", ""))
    assert 0 < n < limits.MAX_LENGTH, status
    lens = page.evaluate("() => window.lens")
    assert len([k for k in lens if len("HARPAGON.\n\n") < k]) >= 2, f"the text did not grow in steps: {lens}"
    assert page.locator("#generate").is_enabled() and page.locator("#stop").is_disabled()


def test_write_at_this_size_fits_and_names_what_it_left_out(page):
    generate(page, "LSTM", "VALÈRE.\n\n☃", 300, 0.8, seed=5)
    written(page, 300)
    assert page.locator("#output .play").evaluate("e => e.innerText").startswith("VALÈRE.\n\n")
    assert page.locator("#output .play b").first.inner_text() == "VALÈRE."  # the speaker line set apart
    assert "1 character(s) the model has never seen were left out: '☃'" in page.locator("#write-note").inner_text()
    width = SIZES[page.size][0]
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width, "the page scrolls sideways"
    page.screenshot(path=SCREENSHOTS / f"web-write-{page.size}.png", full_page=True)


def test_the_app_s_limits_are_the_page_s(page):
    generate(page, "LSTM", "a" * (limits.MAX_PROMPT_CHARS + 1), 10, 0.8)
    page.wait_for_function("() => document.querySelector('#write-note').textContent.includes('at most')")
    assert page.locator("#write-note").inner_text() == "prompt is 2,001 characters long; at most 2,000 are allowed"
    generate(page, "LSTM", "A", limits.MAX_LENGTH + 1, 0.8)
    page.wait_for_function("() => document.querySelector('#write-note').textContent.startsWith('length')")
    assert page.locator("#write-note").inner_text() == "length must be an integer from 1 to 2000; got 2001"


def test_compare_writes_every_model_with_the_same_seed(page, site):
    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare-prompt").fill("DORINE.\n\n")
    page.locator("#compare-length").fill("120")
    page.locator("#compare-seed").fill("3")
    page.locator("#compare-button").click()
    page.wait_for_function("() => !document.querySelector('#compare-button').disabled")
    headings = page.locator("#compare-output h3").all_inner_texts()
    assert [h.splitlines()[0] for h in headings] == ["Paper RNN", "LSTM · best", "Slow LSTM (untrained)"]
    columns = page.locator("#compare-output .play").evaluate_all("es => es.map(e => e.innerText)")
    for i, text in enumerate(columns):
        alone = page.evaluate("([i]) => window.charrnnPage.write(i, 'DORINE.\\n\\n', 120, {temperature: 0.8, seed: 3})", [i])
        assert text == "DORINE.\n\n" + alone  # each column is that model's own writing with that seed
    assert page.evaluate("() => document.documentElement.scrollWidth") <= SIZES[page.size][0]
    page.screenshot(path=SCREENSHOTS / f"web-compare-{page.size}.png", full_page=True)
    host = site[0]
    assert all(u.startswith(host) or u.startswith("data:") for u in page.requests), "a request left the site"


def test_your_text_colours_each_character_by_its_cost_in_bits(page, web_models):
    text = play_text(400, seed=4)
    page.get_by_role("tab", name="Write").click()
    page.locator("#model").select_option(value="1")
    page.get_by_role("tab", name="Your text").click()
    page.locator("#score-text").fill(text + "☃")
    page.locator("#score-button").click()
    page.wait_for_selector("#score-output .scored")
    expected = (charrnn.char_losses(web_models["LSTM"].float(), text) / math.log(2)).tolist()
    summary = page.locator("#score-summary").inner_text()
    assert summary.startswith(f"{sum(expected) / len(expected):.2f} bits/char over the {len(text) - 1} characters")
    assert "1 character(s) the model has never seen were left out: '☃'" in page.locator("#score-note").inner_text()
    classes = page.locator("#score-output .scored span").evaluate_all("es => es.map(e => e.className)")
    assert len(classes) == len(text) and classes[0] == ""  # the first character is only read
    for cls, b in zip(classes[1:], expected):
        if all(abs(b - bound) > 1e-3 for bound, _ in LOSS_CLASSES):
            assert cls == f"l{loss_class(b)}"
    assert page.evaluate("() => document.documentElement.scrollWidth") <= SIZES[page.size][0]
    page.screenshot(path=SCREENSHOTS / f"web-score-{page.size}.png", full_page=True)
    page.locator("#score-text").fill("V☃")
    page.locator("#score-button").click()
    page.wait_for_function("() => document.querySelector('#score-note').textContent.startsWith('text must hold')")


def test_learning_shows_the_app_s_charts_of_every_model_s_record(page):
    page.get_by_role("tab", name="Learning").click()
    bars = page.locator("#test-bars svg")
    assert bars.is_visible() and all(n in bars.inner_html() for n in NAMES[:2])  # the untrained one has no record
    captions = page.locator("#loss-curves figcaption").all_inner_texts()
    assert captions[:2] == NAMES[:2]
    assert page.locator("#loss-curves svg polyline").count() >= 2
    assert page.evaluate("() => document.documentElement.scrollWidth") <= SIZES[page.size][0]
    page.screenshot(path=SCREENSHOTS / f"web-learning-{page.size}.png", full_page=True)


def test_inside_shows_the_recorded_horizons_and_says_leans_on_needs_the_full_app(page):
    page.get_by_role("tab", name="Inside").click()
    assert page.locator("#horizon-chart svg polyline").count() == 1  # the LSTM's: the others have no record
    assert page.locator("#horizon-table td").first.inner_text() == "LSTM"
    assert "in the full app only" in page.locator("#leans-on").inner_text()


@pytest.mark.parametrize("page", ["desktop"], indirect=True)
@pytest.mark.parametrize("i, unit", [(0, 5), (1, 3), (2, 2 * 512 + 7)])  # the paper RNN, the LSTM, a second layer
def test_the_page_s_unit_activations_are_the_inside_view_s(page, web_models, i, unit):
    model = web_models[NAMES[i]]
    text = model.vocab.normalize(EXAMPLE)[0]
    got = page.evaluate("([i, text, unit]) => window.charrnnPage.units(i, text, unit)", [i, text, unit])
    expected = inside.unit_activations(model, text, unit).tolist()
    assert len(got) == len(expected) == len(text)
    assert max(abs(a - b) for a, b in zip(got, expected)) < 1e-4


def shades(page) -> list[tuple[tuple[int, int, int], float]]:
    """Each shaded character's background colour (RGB) and opacity, as its style attribute says (the browser keeps
    the opacity it paints to 1/255 only)."""
    styles = page.locator("#unit-shaded .shaded span").evaluate_all("es => es.map(e => e.getAttribute('style'))")
    out = []
    for st in styles:
        r, g, b, *a = (float(x) for x in st[st.index("(") + 1 : -1].split(","))
        out.append(((int(r), int(g), int(b)), a[0] if a else 1.0))
    return out


def test_inside_shades_a_text_by_a_recorded_unit_in_the_app_s_colours(page, web_models):
    lstm = web_models["LSTM"]
    units = lstm.record["inside"]["units"]["features"]
    H = lstm.config.hidden_size
    name, feature = next((n, f) for n, f in units.items() if f["units"] and f["units"][0]["unit"] < H)  # hidden
    page.get_by_role("tab", name="Write").click()
    page.locator("#model").select_option(value="1")
    page.get_by_role("tab", name="Inside").click()
    page.locator("#inside-text").fill(EXAMPLE + "☃")
    page.locator("#unit").select_option(value=name)
    page.locator("#unit-button").click()
    page.wait_for_selector("#unit-shaded .shaded")
    clean = lstm.vocab.normalize(EXAMPLE)[0]
    expected = inside.unit_activations(lstm, clean, feature["units"][0]["unit"]).tolist()
    got = shades(page)
    assert len(got) == len(clean)
    for (rgb, alpha), a in zip(got, expected):  # ui/inside.shade: red for +, purple for -, as strong as |a|
        assert rgb == (POSITIVE if a >= 0 else NEGATIVE) or abs(a) < 1e-3
        assert abs(alpha - abs(a)) < 6e-4  # shown to 3 decimals, as the app shows it
    note = page.locator("#unit-note").inner_text()
    assert note.startswith(f"Unit {feature['units'][0]['unit']} ({feature['units'][0]['name']}), the unit that best "
                           f"tells {feature['about']}") and "Red: activation near +1" in note
    assert note.endswith(", '☃'.") and "character(s) the model has never seen were left out: '('" in note
    assert page.evaluate("() => document.documentElement.scrollWidth") <= SIZES[page.size][0]
    page.screenshot(path=SCREENSHOTS / f"web-inside-{page.size}.png", full_page=True)


@pytest.mark.parametrize("page", ["desktop"], indirect=True)
def test_an_lstm_cell_state_unit_is_said_to_need_the_full_app(page, web_models):
    H = web_models["LSTM"].config.hidden_size
    page.get_by_role("tab", name="Write").click()
    page.locator("#model").select_option(value="1")
    page.get_by_role("tab", name="Inside").click()
    page.locator("#inside-text").fill(EXAMPLE)
    page.locator("#unit").select_option(value="#")
    page.locator("#unit-number").fill(str(H + 4))  # the first layer's cell unit 4
    page.locator("#unit-button").click()
    page.locator("#unit-note").get_by_text("LSTM cell state").wait_for()
    note = page.locator("#unit-note").inner_text()
    assert note.startswith(f"Unit {H + 4} (layer 1 cell 4), ") and "after the last character only" in note
    assert page.locator("#unit-shaded span").count() == 0
    page.locator("#unit-number").fill(str(4 * H))  # past the last unit: the app's message
    page.locator("#unit-button").click()
    page.wait_for_function("() => document.querySelector('#unit-error').textContent.startsWith('unit must')")
    assert page.locator("#unit-error").inner_text() == f"unit must be an integer from 0 to {2 * H - 1}; got {4 * H}"


def test_learning_shows_the_chosen_model_s_key_figures_and_training_samples(page, web_models):
    lstm = web_models["LSTM"]
    history = lstm.record["history"]
    page.get_by_role("tab", name="Write").click()
    page.locator("#model").select_option(value="1")
    page.get_by_role("tab", name="Learning").click()
    figures = page.locator("#key-figures").inner_text()
    assert figures.startswith(f"LSTM: {to_bits(lstm.record['final']['test']['nats']):.2f} bits/char on Molière's "
                              "test text") and "Generalisation gap" in figures
    assert page.locator("#epoch").get_attribute("max") == str(len(history)) == page.locator("#epoch").input_value()
    page.locator("#epoch").fill("1")
    assert page.locator("#sample-caption").inner_text().startswith(f"Epoch {history[0]['epoch']:g}: "
                                                                   f"{history[0]['chars']:,} characters seen")
    assert page.locator("#sample .play").evaluate("e => e.innerText") == SAMPLE_PROMPT + history[0]["sample"]
    page.locator("#model").select_option(value="2")  # the untrained model: no record, no samples
    assert page.locator("#key-figures").inner_text() == "Slow LSTM (untrained) recorded no losses."
    assert page.locator("#sample-caption").inner_text() == "This checkpoint recorded no samples during training."
    assert page.locator("#epoch-label").is_hidden()
    page.locator("#model").select_option(value="1")


def test_opened_as_a_file_the_page_says_to_serve_it(browser, site):  # noqa: F811
    page = browser.new_page(viewport=dict(zip(("width", "height"), SIZES["phone"])))
    page.goto((site[1] / "index.html").as_uri())
    page.wait_for_selector("#fatal:not([hidden])", timeout=TIMEOUT_MS)
    assert "This page needs a web server" in page.locator("#fatal").inner_text()
    page.close()
