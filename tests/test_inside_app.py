"""The Inside view through a real gradio_client.Client: /units, /horizon, /leans_on, and bad requests; the view's
shading of a text."""
from __future__ import annotations

import re

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

import charrnn
from charrnn import inside
from ui.inside import EXAMPLE, LEANS_ON_BACK, LEANS_ON_DEFAULT, MAX_INSIDE_CHARS, shade, shaded

LSTM, PAPER = "LSTM", "Paper RNN"
TEXT = "DORINE.\n\nEh bien, monsieur, que faut il?\n\nVALÈRE.\n\n"  # ',' is not in the tiny vocabulary


@pytest.fixture(scope="module")
def client(inside_app):
    return Client(inside_app[0], verbose=False)


@pytest.fixture(scope="module")
def models(inside_app):
    return inside_app[1]


def test_named_endpoints_and_their_parameters(client):
    """The view's public API is these three endpoints: its page events are private."""
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {name: [p["parameter_name"] for p in e["parameters"]] for name, e in api.items()} == {
        "/units": ["model", "text", "unit"], "/horizon": ["model"], "/leans_on": ["model", "text", "position"]}


def test_units_by_feature_are_the_recorded_best_unit_s_activations(client, models):
    best = models[LSTM].record["inside"]["units"]["features"]["speaker_line"]["units"][0]
    chars, note = client.predict(LSTM, TEXT, "speaker_line", api_name="/units")
    clean = TEXT.replace(",", "")
    assert "".join(c["char"] for c in chars) == clean
    expected = inside.unit_activations(models[LSTM], clean, best["unit"]).tolist()
    assert [c["activation"] for c in chars] == pytest.approx(expected, abs=1e-4)
    assert all(-1 <= c["activation"] <= 1 for c in chars)
    assert f"**Unit {best['unit']}** ({best['name']})" in note and f"ROC AUC **{best['auc']}**" in note
    assert "were left out: ','" in note


def test_units_by_number_for_a_model_with_no_record(client, models):
    chars, note = client.predict(PAPER, "VALÈRE.\n\nMon ami", 31, api_name="/units")
    assert [c["activation"] for c in chars] == pytest.approx(
        inside.unit_activations(models[PAPER], "VALÈRE.\n\nMon ami", 31).tolist(), abs=1e-4)
    assert "layer 1 state 31" in note and "names for no feature" in note
    assert [c["activation"] for c in client.predict(PAPER, "VALÈRE.", "7", api_name="/units")[0]] == pytest.approx(
        inside.unit_activations(models[PAPER], "VALÈRE.", 7).tolist(), abs=1e-4)


def test_horizon_is_the_recorded_curve(client, models):
    curve, note = client.predict(LSTM, api_name="/horizon")
    h = models[LSTM].record["inside"]["horizon"]
    assert curve == [{"k": k, "relative": r} for k, r in enumerate(h["relative"], 1)] and len(curve) == 16
    assert f"averaged over {h['positions']} positions" in note
    assert client.predict(PAPER, api_name="/horizon") == [[], f"{PAPER} has no inside record: `python -m charrnn "
                                                             "inside --checkpoint checkpoints/NAME --data "
                                                             "../shared/data/moliere.txt --record` writes one."]


def test_leans_on_gives_what_the_prediction_depends_on(client, models):
    text = "VALÈRE.\n\nMon ami"
    chars, note = client.predict(LSTM, text, 12, api_name="/leans_on")
    assert "".join(c["char"] for c in chars) == text
    values = [c["dependence"] for c in chars]
    dep = inside.leans_on(models[LSTM], text, 11)
    assert values[:11] == pytest.approx((dep / dep.max()).tolist(), abs=1e-4) and max(values[:11]) == 1.0
    assert values[11:] == [None] * (len(text) - 11)  # the predicted character and those after it
    assert "The prediction of **'n'** (character 12)" in note


def test_leans_on_measures_the_last_characters_of_a_long_text(client, models):
    text = "DORINE.\n\nEh bien monsieur que faut il?\n\n" * 15
    chars, note = client.predict(LSTM, text, 600, api_name="/leans_on")
    values = [c["dependence"] for c in chars]
    dep = inside.leans_on(models[LSTM], text, 599)
    far = 599 - LEANS_ON_BACK
    assert values[:far] == [None] * far  # not measured
    assert values[far:599] == pytest.approx((dep[far:] / dep[far:].max()).tolist(), abs=1e-4)
    assert "more than 512 back are not measured" in note


BAD = [
    ("/units", ["nope", TEXT, 0], "unknown model 'nope'"),
    ("/units", [LSTM, "a" * (MAX_INSIDE_CHARS + 1), 0], "at most 2,000 are allowed"),
    ("/units", [LSTM, "☃", 0], "at least one character"),
    ("/units", [LSTM, TEXT, 64], "unit must be an integer from 0 to 63"),
    ("/units", [LSTM, TEXT, -1], "unit must be an integer from 0 to 63"),
    ("/units", [LSTM, TEXT, 2.5], "unit must be an integer"),
    ("/units", [LSTM, TEXT, "nonsense"], "a recorded feature (speaker_line, "),
    ("/units", [LSTM, TEXT, "verse"], "verse never holds on the text"),  # the tiny text has no verse
    ("/units", [PAPER, TEXT, "speaker_line"], "a unit number from 0 to 31"),
    ("/units", [LSTM, TEXT, True], "a unit number"),
    ("/horizon", ["../../etc/passwd"], "unknown model"),
    ("/leans_on", [LSTM, TEXT, 1], "position must be an integer from 2 to"),
    ("/leans_on", [LSTM, "ab", 3], "position must be an integer from 2 to 2"),
    ("/leans_on", [LSTM, "a☃", 2], "at least two characters"),
    ("/leans_on", [LSTM, TEXT, "x"], "position must be an integer"),
    # Unicode digits that str.isdigit() takes (int() refuses "²"), a number typed with 5,000 digits, and numbers too
    # large for a float
    ("/units", [LSTM, TEXT, "²"], "a unit number from 0 to 63; got '²'"),
    ("/units", [LSTM, TEXT, "٣"], "a unit number from 0 to 63; got '٣'"),
    ("/units", [LSTM, TEXT, "1" * 5000], "a unit number from 0 to 63; got '1111111111"),
    ("/units", [LSTM, TEXT, 10**400], "unit must be an integer from 0 to 63; got an integer of about 400 digits"),
    ("/units", [LSTM, TEXT, -10**400], "unit must be an integer from 0 to 63; got an integer of about 400 digits"),
    ("/units", [10**400, TEXT, 0], "unknown model an integer of about 400 digits"),
    ("/leans_on", [LSTM, TEXT, 10**400], "position must be an integer from 2 to 49; got an integer of about 400"),
    ("/units", [LSTM, TEXT, None], "a unit number from 0 to 63; got None"),
    ("/units", [LSTM, TEXT, ["0"]], "a unit number from 0 to 63; got ['0']"),
]


def test_every_bad_request_gets_its_error_and_the_app_answers_the_next(client):
    for endpoint, args, message in BAD:
        with pytest.raises(AppError) as e:
            client.predict(*args, api_name=endpoint)
        assert message in str(e.value), (endpoint, args)
        assert "".join(c["char"] for c in client.predict(PAPER, "ab", 0, api_name="/units")[0]) == "ab"


def test_shaded_text_gives_each_character_its_shade():
    page = shaded("a\nb", [1.0, -0.5, None], target=2)
    assert re.findall(r"<span data-c='(\d)'( class='target')? style='([^']*)'>([^<]*)</span>", page) == [
        ("0", "", "background: rgba(239, 68, 60, 1.000)", "a"),
        ("1", "", "background: rgba(128, 90, 213, 0.500)", "↵\n"),
        ("2", " class='target'", "", "b")]
    assert shade(0.0) == "background: rgba(239, 68, 60, 0.000)" and shaded("<", [0.25]).count("&lt;") == 1


def test_the_example_is_in_the_shipped_vocabulary_and_its_default_position_is_a_name():
    vocab = charrnn.ModelConfig(**charrnn.checkpoint.read_record("checkpoints/lstm")["model"]).vocab
    assert set(EXAMPLE) <= set(vocab)
    assert EXAMPLE[LEANS_ON_DEFAULT - 2 : LEANS_ON_DEFAULT] == "OR"  # position 1-based: the R of the last ORGON


def test_decay_chart_puts_each_value_on_its_decade():
    from ui.charts import decay

    svg = decay([("a", [1.0, 0.1, 0.01, 0.0])], floor=-4)
    points = [tuple(map(float, p.split(","))) for p in re.search(r"points='([^']*)'", svg).group(1).split()]
    ys = [y for _, y in points]
    assert ys[1] - ys[0] > 0 and ys[1] - ys[0] == pytest.approx(ys[2] - ys[1], abs=0.1)  # a decade, the same height
    floor_y = ys[0] + 4 * (ys[1] - ys[0])
    assert ys[3] > floor_y  # 0 (an underflow) goes below the floor, cut by the clip, not drawn on it
    assert "clip-path='url(#decay-clip)'" in svg and svg.count("class='ref'") == 2  # 10 % and 1 %


def test_the_unit_box_offers_only_the_features_with_a_recorded_unit(models):
    """A feature that never held where the units were chosen (the tiny text has no verse) has no unit to show."""
    from ui.inside import Inside
    from ui.validate import Catalog

    view = Inside(Catalog(models))
    features = models[LSTM].record["inside"]["units"]["features"]
    choices, value = view.unit_options(LSTM)
    assert [name for _, name in choices] == [name for name, f in features.items() if f["units"]]
    assert "verse" not in [name for _, name in choices] and value == choices[0][1]
    assert view.unit_options(PAPER) == ([], "0")  # no record: unit numbers only
    assert view.unit_options(LSTM, "7")[1] == "7"
