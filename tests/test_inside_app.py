"""The Inside view through a real gradio_client.Client: /units, /horizon, /leans_on, and bad requests."""
from __future__ import annotations

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

import charrnn
from charrnn import inside
from ui.inside import EXAMPLE, LEANS_ON_BACK, LEANS_ON_DEFAULT, MAX_INSIDE_CHARS

LSTM, PAPER = "LSTM", "Paper RNN (Mikolov 2010)"
TEXT = "DORINE.\n\nEh bien, monsieur, que faut il?\n\nVALÈRE.\n\n"  # ',' is not in the tiny vocabulary


@pytest.fixture(scope="module")
def client(inside_app):
    return Client(inside_app[0], verbose=False)


@pytest.fixture(scope="module")
def models(inside_app):
    return inside_app[1]


def tokens(highlighted) -> tuple[str, list]:
    """The text shown, and the value of each character: a line break is shown as "↵" with its value, then a
    "\n" token with none (which only breaks the line)."""
    pairs = [(t["token"], t["class_or_confidence"]) for t in highlighted]
    breaks = [i for i, p in enumerate(pairs) if p == ("\n", None)]
    assert breaks == [i + 1 for i, (token, _) in enumerate(pairs) if token == "↵"]
    return "".join(token for token, _ in pairs), [v for p, (_, v) in enumerate(pairs) if p not in breaks]


def test_named_endpoints_and_their_parameters(client):
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {name: [p["parameter_name"] for p in api[name]["parameters"]] for name in api} == {
        "/units": ["model", "text", "unit"], "/horizon": ["model"], "/leans_on": ["model", "text", "position"]}


def test_units_by_feature_are_the_recorded_best_unit_s_activations(client, models):
    record = models[LSTM].record["inside"]["units"]["features"]["speaker_line"]["units"][0]
    highlighted, note = client.predict(LSTM, TEXT, "speaker_line", api_name="/units")
    shown, values = tokens(highlighted)
    clean = TEXT.replace(",", "")
    assert shown == clean.replace("\n", "↵\n")
    expected = inside.unit_activations(models[LSTM], clean, record["unit"])
    assert values == pytest.approx(expected.tolist(), abs=1e-4) and all(-1 <= v <= 1 for v in values)
    assert f"**Unit {record['unit']}** ({record['name']})" in note and f"ROC AUC **{record['auc']}**" in note
    assert "were left out: ','" in note


def test_units_by_number_for_a_model_with_no_record(client, models):
    highlighted, note = client.predict(PAPER, "VALÈRE.\n\nMon ami", 31, api_name="/units")
    assert tokens(highlighted)[1] == pytest.approx(
        inside.unit_activations(models[PAPER], "VALÈRE.\n\nMon ami", 31).tolist(), abs=1e-4)
    assert "layer 1 state 31" in note and "names for no feature" in note
    assert tokens(client.predict(PAPER, "VALÈRE.", "7", api_name="/units")[0])[1] == pytest.approx(
        inside.unit_activations(models[PAPER], "VALÈRE.", 7).tolist(), abs=1e-4)


def test_horizon_is_the_recorded_curve(client, models):
    curve, note = client.predict(LSTM, api_name="/horizon")
    h = models[LSTM].record["inside"]["horizon"]
    assert curve["columns"] == ["k", "relative", "log10 relative"]
    assert [row[0] for row in curve["data"]] == list(range(1, 17))
    assert [row[1] for row in curve["data"]] == h["relative"]
    assert f"averaged over {h['positions']} positions" in note
    empty, missing = client.predict(PAPER, api_name="/horizon")
    assert empty["data"] == [] and "python -m charrnn inside" in missing


def test_leans_on_colours_what_the_prediction_depends_on(client, models):
    text = "VALÈRE.\n\nMon ami"
    highlighted, note = client.predict(LSTM, text, 12, api_name="/leans_on")
    shown, values = tokens(highlighted)
    assert shown == text.replace("\n", "↵\n")
    dep = inside.leans_on(models[LSTM], text, 11)
    assert values[:11] == pytest.approx((dep / dep.max()).tolist(), abs=1e-4) and max(values[:11]) == 1.0
    assert values[11] == -1.0 and values[12:] == [0.0] * (len(text) - 12)
    assert "The prediction of **'n'** (character 12)" in note


def test_leans_on_measures_the_last_characters_of_a_long_text(client, models):
    text = "DORINE.\n\nEh bien monsieur que faut il?\n\n" * 15
    _, values = tokens(client.predict(LSTM, text, 600, api_name="/leans_on")[0])
    dep = inside.leans_on(models[LSTM], text, 599)
    far = 599 - LEANS_ON_BACK
    assert values[:far] == [0.0] * far  # not measured
    assert values[far:599] == pytest.approx((dep[far:] / dep[far:].max()).tolist(), abs=1e-4)
    assert "more than 512 back are not measured" in client.predict(LSTM, text, 600, api_name="/leans_on")[1]


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
]


def test_every_bad_request_gets_its_error_and_the_app_answers_the_next(client, models):
    for endpoint, args, message in BAD:
        with pytest.raises(AppError) as e:
            client.predict(*args, api_name=endpoint)
        assert message in str(e.value), (endpoint, args)
        assert tokens(client.predict(PAPER, "ab", 0, api_name="/units")[0])[0] == "ab"


def test_the_example_is_in_the_shipped_vocabulary_and_its_default_position_is_a_name():
    vocab = charrnn.ModelConfig(**charrnn.checkpoint.read_record("checkpoints/lstm")["model"]).vocab
    assert set(EXAMPLE) <= set(vocab)
    assert EXAMPLE[LEANS_ON_DEFAULT - 2 : LEANS_ON_DEFAULT] == "OR"  # position 1-based: the R of the last ORGON
