"""The Gradio app: its actions called directly, then the served app through a real gradio_client.Client."""
from __future__ import annotations

import html
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import gradio as gr
import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from gradio_client.utils import Status

import app
import charrnn
from charrnn import report
from charrnn.bench import app as bench_app
from charrnn.data import SAMPLE_PROMPT
from ui import compare as compare_view
from ui import render
from ui import score as score_view
from ui import write as write_view
from ui.compare import Compare
from ui.learned import Learned
from ui.score import Score
from ui import validate
from ui.validate import Catalog
from ui.write import Write

PAPER, LSTM, UNFINISHED, SLOW = "Paper RNN (Mikolov 2010)", "LSTM", "LSTM (unfinished)", "Slow LSTM (untrained)"


@pytest.fixture(scope="module")
def write(app_models):
    return Write(Catalog(app_models))


@pytest.fixture(scope="module")
def scorer(app_models):
    return Score(Catalog(app_models))


@pytest.fixture(scope="module")
def learned(app_models):
    return Learned(Catalog(app_models))


@pytest.fixture(scope="module")
def compare(app_models):
    return Compare(Catalog(app_models))


@pytest.fixture(scope="module")
def client(served_app):
    return Client(served_app, verbose=False)


def reference(model, prompt, length, temperature=0.8, top_k=0, top_p=1.0, random_seed=0) -> str:
    return "".join(charrnn.generate(model, prompt, length, temperature, top_k, top_p, random_seed))


# --- the actions, called directly --------------------------------------------------------------------

def test_generate_streams_growing_prefixes_of_the_library_text(write, app_models):
    outs = list(write.generate(LSTM, "DORINE.\n\n", 300, 0.8, 0, 1.0, 5))
    assert len(outs[0]) == 1  # the first character goes out at once
    assert all(b.startswith(a) and len(b) > len(a) for a, b in zip(outs, outs[1:]))
    assert outs[-1] == reference(app_models[LSTM], "DORINE.\n\n", 300, random_seed=5)
    assert len(outs[-1]) == 300


def test_generate_seed_reproduces_and_minus_one_is_random(write):
    def run(random_seed):
        return list(write.generate(PAPER, "VALÈRE.\n\n", 200, 1.0, 0, 1.0, random_seed))[-1]

    assert run(11) == run(11)
    assert len({run(-1), run(None), run(-1)}) > 1  # 200 characters at temperature 1 never repeat by chance
    greedy = [list(write.generate(PAPER, "VALÈRE.\n\n", 100, 0, 0, 1.0, s))[-1] for s in (-1, 1, 2)]
    assert greedy[0] == greedy[1] == greedy[2]


def test_generate_accepts_the_bounds_themselves(write, app_models):
    vocab_size = len(app_models[PAPER].vocab)
    out = list(write.generate(PAPER, "", 1, write_view.MAX_TEMPERATURE, vocab_size, 1, write_view.MAX_RANDOM_SEED))[-1]
    assert len(out) == 1 and out in app_models[PAPER].vocab.chars
    out = list(write.generate(PAPER, "a" * write_view.MAX_PROMPT_CHARS, write_view.MAX_LENGTH, 0.5, 0, 1e-6, 0))[-1]
    assert len(out) == write_view.MAX_LENGTH


def test_generate_notes_and_drops_unknown_characters(write, app_models):
    seed = "HARPAGON.\n\nWow kiwi ☃ d’accord"  # W, w, k and the snowman are not in the tiny vocabulary
    note = r"5 character\(s\) the model has never seen were left out: 'W', 'k', 'w', '☃'"
    with pytest.warns(UserWarning, match=note):
        out = list(write.generate(LSTM, seed, 50, 0.8, 0, 1.0, 3))[-1]
    clean = "HARPAGON.\n\no ii  d'accord"  # the typographic apostrophe becomes the plain one the vocabulary has
    assert out == reference(app_models[LSTM], clean, 50, random_seed=3)


BAD_GENERATE = [  # (argument, value, what the error must say)
    ("model", "GPT-5", "unknown model 'GPT-5': choose one of 'Paper RNN (Mikolov 2010)'"),
    ("model", None, "unknown model None"),
    ("prompt", "a" * (write_view.MAX_PROMPT_CHARS + 1), "prompt is 2,001 characters long; at most 2,000 are allowed"),
    ("prompt", 42, "prompt must be text; got int"),
    ("length", 0, "length must be an integer from 1 to 2000; got 0"),
    ("length", write_view.MAX_LENGTH + 1, "length must be an integer from 1 to 2000; got 2001"),
    ("length", 10**12, "length must be an integer from 1 to 2000"),
    ("length", 2.5, "length must be an integer from 1 to 2000; got 2.5"),
    ("length", "100", "length must be an integer from 1 to 2000; got '100'"),
    ("length", None, "length must be an integer from 1 to 2000; got None"),
    ("length", True, "length must be an integer from 1 to 2000; got True"),
    ("temperature", -0.1, "temperature must be a number from 0 to 2; got -0.1"),
    ("temperature", 2.5, "temperature must be a number from 0 to 2"),
    ("temperature", math.nan, "temperature must be a number from 0 to 2; got nan"),
    ("temperature", math.inf, "temperature must be a number from 0 to 2; got inf"),
    ("top_k", -1, "top_k must be an integer from 0 to"),
    ("top_k", 1000, "top_k must be an integer from 0 to"),
    ("top_k", 1.5, "top_k must be an integer from 0 to"),
    ("top_p", 0, "top_p must be a number greater than 0 and at most 1; got 0"),
    ("top_p", 1.01, "top_p must be a number greater than 0 and at most 1"),
    ("top_p", -1, "top_p must be a number greater than 0 and at most 1"),
    ("random_seed", -2, "random_seed (or -1 for a new random seed) must be an integer from 0 to 2147483647"),
    ("random_seed", 2**31, "random_seed (or -1 for a new random seed) must be an integer from 0 to 2147483647"),
    ("random_seed", 0.5, "random_seed (or -1 for a new random seed) must be an integer"),
    ("random_seed", "seven", "random_seed (or -1 for a new random seed) must be an integer"),
]
GOOD = dict(model=LSTM, prompt="DORINE.\n\n", length=20, temperature=0.8, top_k=0, top_p=1.0, random_seed=1)


@pytest.mark.parametrize("arg, value, message", BAD_GENERATE, ids=[f"{a}={v!r:.20}" for a, v, _ in BAD_GENERATE])
def test_generate_refuses_bad_input_saying_what_is_allowed(write, app_models, arg, value, message):
    with pytest.raises(gr.Error) as e:
        next(write.generate(**{**GOOD, arg: value}))
    assert message in e.value.message
    if arg == "top_k":
        assert f"from 0 to {len(app_models[LSTM].vocab)}" in e.value.message


def test_the_page_shows_the_prompt_and_the_text_as_a_play(write, app_models):
    with pytest.warns(UserWarning, match="left out: '☃'"):
        pages = list(write.page(LSTM, "DORINE.\n\nEh ☃", 120, 0.8, 0, 1.0, 5))
    text = reference(app_models[LSTM], "DORINE.\n\nEh ", 120, random_seed=5)
    last = pages[-1]
    assert last.startswith("<div class='play'><b><span class='prompt'>DORINE.</span></b>")  # the prompt, a speaker
    assert html.unescape(re.sub(r"<[^>]+>", "", last.split("<div class='status'>")[0])) == "DORINE.\n\nEh " + text
    assert "writing… " in pages[0] and re.search(r"120 characters in \d+\.\d s", last)
    for line in text.split("\n"):  # every speaker line the model wrote is set apart
        if render.SPEAKER.match(line):
            assert f"<b>{html.escape(line)}</b>" in last


def test_compare_writes_every_model_with_the_same_settings_and_seed(compare, app_models, monkeypatch):
    outs = list(compare.compare("VALÈRE.\n\n", 80, 0.9, 3))
    assert list(outs[-1]) == list(app_models)  # in the order of the story
    for name, text in outs[-1].items():
        assert text == reference(app_models[name], "VALÈRE.\n\n", 80, 0.9, random_seed=3)
    assert all(len(t) == 1 for t in outs[0].values())  # every column starts at once
    assert all(all(b[n].startswith(a[n]) for n in a) for a, b in zip(outs, outs[1:]))
    random = [list(compare.compare("VALÈRE.\n\n", 60, 1.0, -1))[-1] for _ in range(2)]
    assert random[0] != random[1]
    # -1: one new seed, the same for every model
    monkeypatch.setattr(compare_view.os, "urandom", lambda n: (12345).to_bytes(n, "little"))
    drawn = list(compare.compare("VALÈRE.\n\n", 60, 1.0, -1))[-1]
    assert drawn == {n: reference(m, "VALÈRE.\n\n", 60, 1.0, random_seed=12345 >> 1) for n, m in app_models.items()}


@pytest.mark.parametrize("arg, value, message", [
    ("length", compare_view.MAX_COMPARE_LENGTH + 1, f"length must be an integer from 1 to {compare_view.MAX_COMPARE_LENGTH}"),
    ("length", 0, "length must be an integer from 1 to"),
    ("temperature", -1, "temperature must be a number from 0 to 2"),
    ("random_seed", "x", "random_seed (or -1 for a new random seed) must be an integer"),
    ("prompt", "a" * (write_view.MAX_PROMPT_CHARS + 1), "prompt is 2,001 characters long"),
    ("prompt", 7, "prompt must be text; got int"),
])
def test_compare_refuses_bad_input(compare, arg, value, message):
    good = dict(prompt="VALÈRE.\n\n", length=10, temperature=0.8, random_seed=1)
    with pytest.raises(gr.Error) as e:
        next(compare.compare(**{**good, arg: value}))
    assert message in e.value.message


def test_score_gives_each_character_its_bits_and_the_next_characters(scorer, app_models):
    text = "VALÈRE.\n\nMonsieur, je vous dis que la chose est faite."  # ',' is not in the tiny vocabulary
    clean = text.replace(",", "")
    chars, note, next_chars = scorer.score(LSTM, text)
    assert "".join(c["char"] for c in chars) == clean and chars[0]["bits"] is None
    bits = charrnn.char_losses(app_models[LSTM], clean) / math.log(2)
    assert [c["bits"] for c in chars[1:]] == pytest.approx(bits.tolist(), abs=1e-5)
    bpc = charrnn.evaluate(app_models[LSTM], clean)["bpc"]
    assert f"**{bpc:.2f} bits/char** over the {len(clean) - 1} characters" in note
    assert "1 character(s) the model has never seen were left out: ','" in note
    expected = charrnn.next_chars(app_models[LSTM], clean, score_view.GUESSES)
    assert [c["char"] for c in next_chars] == [c for c, _ in expected]
    assert [c["p"] for c in next_chars] == pytest.approx([p for _, p in expected], abs=1e-5)


def test_score_compares_with_the_models_test_loss(scorer, app_models):
    _, note, _ = scorer.score(LSTM, "DORINE.\n\nEh bien.")
    assert f"Molière's own test text costs this model {app_models[LSTM].record['final']['test']['bpc']:.2f}" in note
    _, note, _ = scorer.score(SLOW, "DORINE.\n\nEh bien.")  # a model with no record: no comparison
    assert "test text" not in note


def test_score_with_the_cache_reads_as_the_cached_model(scorer, app_models):
    from charrnn.testtime.cache import CachedModel

    text = "DORINE.\n\nEh bien monsieur.\n\nDORINE.\n\nEh bien."
    chars, note, next_chars = scorer.score(LSTM, text, cache=True)
    cached = CachedModel.from_record(app_models[LSTM])
    bits = charrnn.char_losses(cached, text) / math.log(2)
    assert [c["bits"] for c in chars[1:]] == pytest.approx(bits.tolist(), abs=1e-5)
    assert f"**{bits.mean().item():.2f} bits/char**" in note
    assert bits.mean().item() != pytest.approx(charrnn.char_losses(app_models[LSTM], text).mean().item() / math.log(2),
                                               abs=0.01)
    recorded = app_models[LSTM].record["final"]["cache"]["test"]["bpc"]
    assert f"Molière's own test text costs this model {recorded:.2f} bits/char with its cache" in note
    assert [c["p"] for c in next_chars] == pytest.approx([p for _, p in charrnn.next_chars(cached, text, 3)], abs=1e-5)
    with pytest.raises(gr.Error, match="records no cache settings"):
        scorer.score(PAPER, text, cache=True)
    with pytest.raises(gr.Error, match="cache must be true or false"):
        scorer.score(LSTM, text, cache="yes")


def test_the_scored_page_colours_each_character_and_reads_with_and_without_the_cache(scorer, app_models):
    text = "DORINE.\n\nEh bien monsieur.\n\nDORINE.\n\nEh bien."
    note, page = scorer.page(LSTM, text, False)
    runs = re.findall(r"<span class='l(-first|\d)' data-i='(\d+)' data-n='(\d+)'>([^<]*)</span>", page)
    assert "".join(html.unescape(r[3]) for r in runs).replace("↵\n", "\n") == text  # every character, in order
    bits = (charrnn.char_losses(app_models[LSTM], text) / math.log(2)).tolist()
    for cls, start, n, _ in runs:  # each run is one class, the class of each of its characters
        expected = {"-first" if i == 0 else str(render.loss_class(bits[i - 1])) for i in range(int(start), int(start) + int(n))}
        assert expected == {cls}
    assert len(runs) < len(text)  # runs, not one element per character
    assert "After your text the model expects:" in note
    note, page = scorer.page(LSTM, text, True)
    assert page.count("class='reading'") == 2 and "<h4>without the cache</h4>" in page and "<h4>with the cache</h4>" in page
    assert note.startswith("Without the cache: ") and "With the cache: " in note


@pytest.mark.parametrize("model, text, message", [
    ("nope", "abc", "unknown model 'nope'"),
    (LSTM, "a" * (score_view.MAX_SCORE_CHARS + 1), "text is 5,001 characters long; at most 5,000 are allowed"),
    (LSTM, ["a", "b"], "text must be text; got list"),
    (LSTM, "a", "text must hold at least two characters the model knows"),
    (LSTM, "a☃☃☃", "text must hold at least two characters the model knows"),
    (LSTM, "", "text must hold at least two characters the model knows"),
])
def test_score_refuses_bad_input(scorer, model, text, message):
    with pytest.raises(gr.Error, match=message.replace("(", r"\(")):
        scorer.score(model, text)


def test_history_of_a_finished_model(learned, app_models):
    record = app_models[PAPER].record
    curve, table = learned.history(PAPER)
    assert len(curve) == 2 * len(record["history"]) == 6
    test = [p for p in curve if p["split"] == "test"]
    assert [p["bits/char"] for p in test] == pytest.approx([h["test_loss"] / math.log(2) for h in record["history"]])
    assert [p["epoch"] for p in test] == [1.0, 2.0, 3.0]
    rows = dict(table)
    final = record["final"]
    assert rows["status"] == "complete"
    assert rows["test bits/char"] == f"{final['test']['bpc']:.3f}"
    assert rows["train bits/char"] == f"{final['train']['bpc']:.3f}"
    assert rows["test perplexity (per character)"] == f"{2 ** final['test']['bpc']:.2f}"
    gap = (final["test"]["nats"] - final["train"]["nats"]) / math.log(2)
    assert rows["generalisation gap, test − train"] == f"{gap:+.3f} bits/char"
    assert "the test plays differ from the training plays" in rows["the gap in words"]
    assert rows["parameters"] == f"{app_models[PAPER].num_params():,}"
    assert rows["training time"].endswith(" s on cpu")
    assert not any("nats" in q or "over-fitting" == q for q in rows)  # one unit, no verdict row


def test_history_shows_the_validation_loss_of_a_run_that_held_one_out(learned, app_models):
    record = app_models[LSTM].record
    curve, table = learned.history(LSTM)
    assert [p["split"] for p in curve][:3] == ["train", "val", "test"] and len(curve) == 3 * len(record["history"])
    val = [p["bits/char"] for p in curve if p["split"] == "val"]
    assert val == pytest.approx([h["val_loss"] / math.log(2) for h in record["history"]])
    rows = dict(table)
    assert rows["validation bits/char"] == f"{record['final']['val']['bpc']:.3f}"
    assert "generalisation gap, validation − train" in rows
    assert dict(learned.history(PAPER)[1])["validation bits/char"] == "none held out"


def test_history_of_a_model_still_training(learned, app_models):
    last = app_models[UNFINISHED].record["history"][-1]
    rows = dict(learned.history(UNFINISHED)[1])
    assert rows["status"] == "training: epoch 3 of 3 (last evaluation shown)"
    assert rows["test bits/char"] == f"{last['test_loss'] / math.log(2):.3f}"


def test_history_of_a_model_without_record(learned):
    curve, table = learned.history(SLOW)
    assert curve == [] and dict(table)["losses"] == "none recorded in this checkpoint"
    caption, sample = learned.training_sample(SLOW, 1)
    assert caption == "This checkpoint recorded no samples during training."


def test_history_refuses_unknown_model(learned):
    with pytest.raises(gr.Error, match="unknown model 'LSTM ': choose one of"):
        learned.history("LSTM ")


def test_training_sample_at_each_evaluation(learned, app_models):
    history = app_models[LSTM].record["history"]
    for i, h in enumerate(history, 1):
        caption, sample = learned.training_sample(LSTM, i)
        assert sample == render.play(SAMPLE_PROMPT, h["sample"])
        assert caption.startswith(f"Epoch {h['epoch']:g}: {h['chars']:,} characters seen")
    for bad in (0, len(history) + 1, 1.5, "2"):
        with pytest.raises(gr.Error, match=f"index must be an integer from 1 to {len(history)}"):
            learned.training_sample(LSTM, bad)


def test_the_bars_show_every_model_s_test_figures_beside_the_compressors(learned, app_models):
    svg = learned.test_bars()
    titles = dict(re.findall(r"<title>(.+?): ([\d.]+) bits/char</title>", svg))
    for name, m in app_models.items():
        final = m.record.get("final")
        if final and "test" in final:
            assert titles[f"{html.escape(name)}, weights alone"] == f"{final['test']['bpc']:.3f}"
    assert titles[f"{LSTM}, continuous cache"] == f"{app_models[LSTM].record['final']['cache']['test']['bpc']:.3f}"
    assert f"{SLOW}," not in svg  # a model without a record has no bar
    assert "xz -9e: 2.12 bits/char" in svg and "zpaq -m5: 1.59 bits/char" in svg


def test_the_curves_are_one_panel_per_model_with_its_splits(learned, app_models):
    svg = learned.loss_curves()
    panels = re.findall(r"<figcaption>(.*?)</figcaption>(.*?)</figure>", svg)
    assert [html.unescape(t) for t, _ in panels] == list(app_models)
    lines = {html.unescape(t): re.findall(r"<title>(\w+)</title></polyline>", body) for t, body in panels}
    assert lines[PAPER] == ["train", "test"] and lines[LSTM] == ["train", "validation", "test"] and lines[SLOW] == []
    n = len(app_models[LSTM].record["history"])
    assert all(len(p.split()) == n for p in re.findall(r"points='([^']*)'", dict(panels)[LSTM]))


def test_key_figures_and_every_figure_side_by_side(learned, app_models):
    final = app_models[LSTM].record["final"]
    words = learned.key_figures(LSTM)
    assert f"**{final['test']['bpc']:.2f} bits/char** on Molière's test text" in words
    assert f"read with continuous cache, {final['cache']['test']['bpc']:.2f}" in words
    assert learned.key_figures(SLOW) == f"**{SLOW}** recorded no losses."
    table = learned.side_by_side()
    assert list(table.columns) == ["quantity", *app_models]
    rows = table.set_index("quantity")
    assert rows.loc["status", PAPER] == "complete" and rows.loc["status", UNFINISHED].startswith("training")
    assert rows.loc["test bits/char", SLOW] == ""  # a model with no losses leaves its cells empty


def test_the_catalog_offers_the_best_model_first_and_marks_it(app_models):
    catalog = Catalog(app_models)
    held = {n: m.record["final"]["val"]["nats"] for n, m in app_models.items() if "val" in (m.record.get("final") or {})}
    assert catalog.best == min(held, key=held.get) == LSTM
    assert (f"{LSTM} · best", LSTM) in catalog.choices() and (PAPER, PAPER) in catalog.choices()


# --- report: the computations behind the loss panel -------------------------------------------------

def test_the_gap_in_words_states_what_is_measured_without_a_verdict():
    assert report.gap_in_words(1.5, 1.5) == ("the test text costs no more than the training text (the test plays differ "
                                             "from the training plays: part of the gap is the text, not memorisation)")
    assert report.gap_in_words(1.0, 1.1, split="val") == "the validation text costs 10% more than the training text"
    falling = [{"epoch": 1.0, "val_loss": 2.0}, {"epoch": 2.0, "val_loss": 1.8}]
    rising = falling + [{"epoch": 3.0, "val_loss": 1.9}]
    assert report.gap_in_words(1.5, 1.8, falling, "val").endswith("; its loss was still falling at the last evaluation")
    assert report.gap_in_words(1.4, 1.9, rising, "val").endswith("; its loss has risen since epoch 2, a sign of "
                                                                 "over-fitting")
    assert "over-fitting" not in report.gap_in_words(1.0, 2.0, falling, "val")


def test_the_gap_is_the_validation_slice_s_where_a_run_held_one_out():
    history = [{"epoch": 1.0, "chars": 10, "train_loss": 1.2, "val_loss": 1.15, "test_loss": 1.5, "time_s": 1.0},
               {"epoch": 2.0, "chars": 20, "train_loss": 1.0, "val_loss": 1.1, "test_loss": 1.4, "time_s": 2.0}]
    record = {"status": "complete", "history": history,
              "final": {"train": {"nats": 1.0}, "val": {"nats": 1.1}, "test": {"nats": 1.4}, "train_time_s": 2.0}}
    s = report.summary(record)
    assert (s["gap_split"], s["gap_nats"]) == ("val", pytest.approx(0.1))
    without = {**record, "final": {k: v for k, v in record["final"].items() if k != "val"}}
    assert report.summary(without)["gap"].startswith("the test text costs 40% more")


def test_summary_prefers_final_losses_over_history():
    record = {"num_params": 10, "status": "complete", "training": {"epochs": 2},
              "history": [{"epoch": 2.0, "chars": 100, "train_loss": 9.0, "test_loss": 9.0, "time_s": 5.0}],
              "final": {"train": {"nats": 1.0}, "test": {"nats": 1.2}, "train_time_s": 7.0}}
    s = report.summary(record)
    assert (s["train_nats"], s["test_nats"], s["train_time_s"]) == (1.0, 1.2, 7.0)
    assert s["test_bpc"] == pytest.approx(1.2 / math.log(2))
    assert s["test_perplexity"] == pytest.approx(math.exp(1.2)) == pytest.approx(2 ** s["test_bpc"])
    assert s["gap_nats"] == pytest.approx(0.2)


# --- the command line ----------------------------------------------------------------------------------

def test_load_models_skips_what_fails_and_says_why(monkeypatch, capsys, tiny_checkpoints, tmp_path):
    monkeypatch.setattr(app, "SHIPPED", {"Tiny": tiny_checkpoints["paper"], "Gone": tmp_path / "gone"})
    models = app.load_models([str(tmp_path)])  # a directory that is no checkpoint
    assert list(models) == ["Tiny"] and models["Tiny"].record["status"] == "complete"
    err = capsys.readouterr().err
    assert f"skipping model 'Gone' ({tmp_path / 'gone'}): CheckpointError: no checkpoint directory" in err
    assert f"skipping model '{tmp_path}'" in err and "has no config.json" in err


def test_a_malformed_extra_model_is_reported_and_the_others_still_serve(monkeypatch, capsys, tiny_checkpoints,
                                                                         tmp_path):
    bad = shutil.copytree(tiny_checkpoints["paper"], tmp_path / "bad")
    record = json.loads((bad / "config.json").read_text())
    record["final"] = {"train": {}, "test": "x"}  # loads no loss the page could show
    (bad / "config.json").write_text(json.dumps(record))
    monkeypatch.setattr(app, "SHIPPED", {"Tiny": tiny_checkpoints["paper"]})
    models = app.load_models([str(bad)])
    assert list(models) == ["Tiny"]
    assert f"skipping model '{bad}' ({bad}): CheckpointError: {bad / 'config.json'}" in capsys.readouterr().err
    app.build_app(models)  # the page builds with the models that loaded


def test_the_time_limit_stops_a_request_inside_its_computation(monkeypatch, client, write, scorer):
    monkeypatch.setattr(validate, "TIME_LIMIT_S", 0.3)  # the slow model needs seconds for 2,000 characters
    written = ""
    with pytest.raises(gr.Error) as e:
        for written in write.generate(SLOW, "HARPAGON.\n\n", 2000, 1.0, 0, 1.0, 0):
            pass
    assert re.fullmatch(r"the time limit ran out after [0-9,]+ of 2,000 characters generated: a request may take "
                        r"0\.3 s at most here; ask for less", e.value.message)
    assert 0 < len(written) < 2000
    page = list(write.page(SLOW, "HARPAGON.\n\n", 2000, 1.0, 0, 1.0, 0))[-1]
    assert re.search(r"[0-9,]+ characters, stopped at the time limit \(0\.3 s\), in", page)
    with pytest.raises(AppError, match="the time limit ran out after"):
        client.predict(SLOW, "HARPAGON.\n\n", 2000, 1.0, 0, 1.0, 0, api_name="/generate")
    monkeypatch.setattr(validate, "TIME_LIMIT_S", 0)
    with pytest.raises(gr.Error, match="the time limit ran out after 0 of 17 characters read"):
        scorer.score(LSTM, "DORINE.\n\nEh bien.")


def test_main_exits_clearly_without_any_model(monkeypatch, tmp_path):
    monkeypatch.setattr(app, "SHIPPED", {"Gone": tmp_path / "gone"})
    monkeypatch.setenv("CHARRNN_MODELS", f"{tmp_path / 'a'}, {tmp_path / 'b'}")
    with pytest.raises(SystemExit, match="no model could be loaded"):
        app.main(["--model", str(tmp_path / "c")])


# --- the served app, through gradio_client --------------------------------------------------------------

def test_named_endpoints_and_their_parameters(client):
    """The public API is exactly these endpoints: the page's own events are private."""
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    params = {name: [p["parameter_name"] for p in e["parameters"]] for name, e in api.items()}
    assert params == {"/generate": ["model", "prompt", "length", "temperature", "top_k", "top_p", "random_seed"],
                      "/compare": ["prompt", "length", "temperature", "random_seed"],
                      "/score": ["model", "text", "cache"], "/history": ["model"],
                      "/units": ["model", "text", "unit"], "/horizon": ["model"],
                      "/leans_on": ["model", "text", "position"]}


def test_every_model_argument_is_a_choice_among_the_loaded_names(client, app_models):
    """view_api() lists the model names, so that an API caller sees them without opening the page."""
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    models = {name: p["type"] for name, e in api.items() for p in e["parameters"] if p["parameter_name"] == "model"}
    assert set(models) == {"/generate", "/score", "/history", "/units", "/horizon", "/leans_on"}
    assert all(t.get("enum") == list(app_models) for t in models.values()), models


def test_generate_streams_through_the_client(client, app_models):
    """The slow model writes for seconds, so that batches STREAM_EVERY_S apart come between the first character
    and the end on any machine (the tiny LSTM could write 2,000 characters within one batch on a fast one)."""
    job = client.submit(model=SLOW, prompt="HARPAGON.\n\n", length=200, temperature=0.9, top_k=0, top_p=1.0,
                        random_seed=7, api_name="/generate")
    outs = list(job)
    assert len(outs) >= 3 and len(outs[0]) == 1  # the first character, at least one batch in between, the end
    assert all(b.startswith(a) and len(b) > len(a) for a, b in zip(outs, outs[1:]))
    assert job.result() == outs[-1] == reference(app_models[SLOW], "HARPAGON.\n\n", 200, 0.9, random_seed=7)


def test_concurrent_requests_do_not_affect_each_other(client, app_models):
    seeds = [1, 2, 3, 1, 2, 3]
    jobs = [client.submit(LSTM, "ÉLISE.\n\n", 400, 1.0, 0, 1.0, s, api_name="/generate") for s in seeds]
    results = [j.result(timeout=60) for j in jobs]
    assert results == [reference(app_models[LSTM], "ÉLISE.\n\n", 400, 1.0, random_seed=s) for s in seeds]


def test_score_and_history_through_the_client(client, scorer, learned):
    chars, note, next_chars = client.predict(LSTM, "DORINE.\n\nEh bien.", api_name="/score")
    assert [chars, note, next_chars] == json.loads(json.dumps(scorer.score(LSTM, "DORINE.\n\nEh bien.")))
    assert "bits/char** over the 16 characters after the first" in note and len(next_chars) == score_view.GUESSES
    _, cached_note, _ = client.predict(LSTM, "DORINE.\n\nEh bien.", True, api_name="/score")
    assert "with its cache" in cached_note and cached_note != note
    curve, table = client.predict(PAPER, api_name="/history")
    assert [curve, table] == json.loads(json.dumps(learned.history(PAPER)))
    assert len(curve) == 6 and dict(table)["status"] == "complete"


def test_compare_streams_every_model_through_the_client(client, app_models):
    job = client.submit("VALÈRE.\n\n", 300, 0.8, 2, api_name="/compare")
    outs = list(job)
    assert len(outs) >= 2 and all(len(t) == 1 for t in outs[0].values())
    assert job.result() == outs[-1] == {n: reference(m, "VALÈRE.\n\n", 300, random_seed=2) for n, m in app_models.items()}


def client_bad_requests(vocab_size):
    good_gen = [LSTM, "DORINE.\n\n", 20, 0.8, 0, 1.0, 1]
    for arg, value, message in BAD_GENERATE:
        if isinstance(value, float) and not math.isfinite(value):
            continue  # JSON has no NaN or infinity: the client cannot send them
        args = list(good_gen)
        args[list(GOOD).index(arg)] = value
        yield "/generate", args, message
    yield "/score", ["nope", "abc"], "unknown model 'nope'"
    yield "/score", [LSTM, "a" * (score_view.MAX_SCORE_CHARS + 1)], "at most 5,000 are allowed"
    yield "/score", [LSTM, "☃"], "at least two characters"
    yield "/score", [LSTM, "abc", "yes"], "cache must be true or false"
    yield "/score", [PAPER, "abc", True], "records no cache settings"
    yield "/history", ["../../etc/passwd"], "unknown model '../../etc/passwd'"
    # An integer too large for a float (JSON has no limit): each number of each endpoint
    huge = "an integer of about 400 digits"
    for i, name in enumerate(["length", "top_k", "random_seed (or -1 for a new random seed)"]):
        args = list(good_gen)
        args[[2, 4, 6][i]] = 10**400
        yield "/generate", args, f"{name} must be an integer from "
    yield "/generate", [LSTM, "DORINE.", 20, 10**400, 0, 1.0, 1], f"temperature must be a number from 0 to 2; got {huge}"
    yield "/generate", [LSTM, "DORINE.", 20, 0.8, 0, -10**400, 1], f"top_p must be a number greater than 0 and at most 1; got"
    yield "/compare", ["VALÈRE.", 10**400, 0.8, 1], f"length must be an integer from 1 to 600; got {huge}"
    yield "/compare", ["VALÈRE.", 10, 0.8, -10**400], "random_seed (or -1 for a new random seed) must be an integer"
    yield "/score", [LSTM, "abc", 10**400], f"cache must be true or false, not {huge}"
    yield "/history", [10**400], f"unknown model {huge}"
    yield "/compare", ["VALÈRE.", compare_view.MAX_COMPARE_LENGTH + 1, 0.8, 1], "length must be an integer from 1 to 600"
    yield "/compare", ["VALÈRE.", 10, 5, 1], "temperature must be a number from 0 to 2"
    yield "/compare", ["VALÈRE.", 10, 0.8, "x"], "random_seed (or -1 for a new random seed) must be an integer"
    yield "/compare", [["not", "text"], 10, 0.8, 1], "prompt must be text; got list"


def test_every_bad_request_gets_its_error_and_the_app_answers_the_next(client, app_models):
    expected = reference(app_models[PAPER], "VALÈRE.\n\n", 30, random_seed=4)
    for endpoint, args, message in client_bad_requests(len(app_models[LSTM].vocab)):
        with pytest.raises(AppError) as e:
            client.predict(*args, api_name=endpoint)
        assert message in str(e.value), (endpoint, args)
        assert client.predict(PAPER, "VALÈRE.\n\n", 30, 0.8, 0, 1.0, 4, api_name="/generate") == expected


def wait_for(condition, what: str, timeout: float = 60) -> None:
    """Poll `condition` until it holds (a client job's state has no event to wait on), or fail after `timeout`."""
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"waited {timeout:.0f} s for {what}"
        time.sleep(0.01)


def started(job) -> None:
    """Wait until a streaming job has sent its first output: it holds a worker."""
    wait_for(lambda: job.outputs() or job.done(), "the first output")
    assert job.outputs(), "the job ended without an output"


def test_a_cancelled_request_frees_its_worker_for_the_next(client, app_models):
    """Two slow generations hold both workers and a third request waits in the queue. Cancelling one lets the
    waiting request run while the other still writes: the cancel freed its worker."""
    slow = [client.submit(SLOW, "HARPAGON.\n\n", write_view.MAX_LENGTH, 1.0, 0, 1.0, s, api_name="/generate")
            for s in (0, 1)]
    for job in slow:
        started(job)
    waiting = client.submit(PAPER, "VALÈRE.\n\n", 30, 0.8, 0, 1.0, 4, api_name="/generate")
    slow[0].cancel()
    assert waiting.result(timeout=60) == reference(app_models[PAPER], "VALÈRE.\n\n", 30, random_seed=4)
    written = len(slow[1].outputs()[-1])  # how far the other slow one got meanwhile
    assert written < write_view.MAX_LENGTH / 2, f"the waiting request ran only once {written} characters were written"
    slow[1].cancel()


def test_the_queue_refuses_requests_past_its_size(monkeypatch, app_models):
    monkeypatch.setattr(app, "QUEUE_SIZE", 1)
    demo = app.build_app(app_models)
    demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        small = Client(demo.local_url, verbose=False)
        slow = []
        for seed in (0, 1):  # one at a time: two at once would both wait in a queue of one
            slow.append(small.submit(SLOW, "HARPAGON.\n\n", write_view.MAX_LENGTH, 1.0, 0, 1.0, seed,
                                     api_name="/generate"))
            started(slow[-1])  # until both workers are busy
        queued = small.submit(PAPER, "VALÈRE.\n\n", 30, 0.8, 0, 1.0, 4, api_name="/generate")
        wait_for(lambda: queued.status().code == Status.IN_QUEUE, "the third request to wait in the queue")
        with pytest.raises(Exception, match="(?i)queue is full"):
            small.predict(PAPER, "VALÈRE.\n\n", 30, 0.8, 0, 1.0, 4, api_name="/generate")
        for job in slow:
            job.cancel()
        # The cancelled jobs free their workers at their next step; on a loaded 2-core machine that and the queued
        # request's own run took over 60 s once (CI's second run), hence the margin.
        assert queued.result(timeout=180) == reference(app_models[PAPER], "VALÈRE.\n\n", 30, random_seed=4)
    finally:
        demo.close()


def test_model_change_fits_the_top_k_slider_to_its_vocabulary(write, app_models):
    vocab_size = len(app_models[LSTM].vocab)
    kept, reset = write.top_k_slider(LSTM, 10), write.top_k_slider(LSTM, vocab_size + 1)
    assert (kept.maximum, kept.value) == (vocab_size, 10)
    assert (reset.maximum, reset.value) == (vocab_size, 0)


def test_bench_measures_the_served_app(served_app):
    with httpx.Client(base_url=served_app, timeout=60) as http:
        first_ms, chars_s = bench_app.served(http, LSTM, reps=2, length=300)
        with pytest.raises(RuntimeError, match="unknown model 'nope'"):
            bench_app.served(http, "nope", reps=0, length=10)
    assert 0 < first_ms < 10_000 and chars_s > 0
    latencies = bench_app.concurrent(served_app, LSTM, clients=3, length=100)
    assert len(latencies) == 3 and all(t is not None and t > 0 for t in latencies)


def test_the_app_s_memory_levels_off_under_many_requests(tiny_checkpoints):
    """600 mixed requests to `python app.py` on 127.0.0.1, each a session of its own. Once more sessions than
    the app keeps (ui.validate.SESSIONS) have come, its resident memory stays level: within 20 MiB over the
    last 300 requests (Gradio's default kept 10,000 sessions, ~0.15 MiB each: about 45 MiB here)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "CHARRNN_MODELS": str(tiny_checkpoints["lstm"])}
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=app.HERE, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert any("Running on local URL:" in line for line in proc.stdout), "app.py did not start"
        url = f"http://127.0.0.1:{port}"
        name = str(tiny_checkpoints["lstm"])
        requests = [("generate", [name, "DORINE.\n\n", 10, 0.8, 0, 1.0, 1]), ("score", [name, "DORINE.\n\nEh.", False]),
                    ("history", [name]), ("compare", ["DORINE.\n\n", 2, 0.8, 1])]
        rss = []
        with httpx.Client(base_url=url.rstrip("/"), timeout=60) as http:
            for i in range(600):
                endpoint, data = requests[i % len(requests)]
                events = list(bench_app._call(http, endpoint, data))
                assert events[-1][1] == "complete", (endpoint, events[-1])
                if i + 1 in (300, 600):
                    rss.append(bench_app.memory_mb(proc.pid)[0])
        assert validate.SESSIONS < 300
        assert rss[1] - rss[0] < 20, f"resident memory grew from {rss[0]:.0f} to {rss[1]:.0f} MiB"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def python_app_py(*args: str, **env: str):
    """`python app.py ARGS` with `env` added to the environment, on a free port: yields a dict holding a "client";
    once the process has ended, it holds the process's "stderr" too."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), **env}
    proc = subprocess.Popen([sys.executable, "app.py", *args], cwd=app.HERE, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    served = {}
    try:
        client, deadline = None, time.monotonic() + 180
        while client is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            except (httpx.HTTPError, ValueError):
                time.sleep(0.2)
        assert client is not None, proc.stderr.read() if proc.poll() is not None else "no answer in 180 s"
        served["client"] = client
        yield served
    finally:
        proc.terminate()
        served["stderr"] = proc.communicate(timeout=30)[1]


def test_python_app_py_serves_on_the_port_from_the_environment(tiny_checkpoints):
    name = str(tiny_checkpoints["lstm"])
    with python_app_py(CHARRNN_MODELS=f"{name},{tiny_checkpoints['paper'] / 'missing'}") as served:
        _, note, _ = served["client"].predict(name, "DORINE.\n\nEh bien.", api_name="/score")
        assert "bits/char** over the 16 characters" in note
    assert f"skipping model '{tiny_checkpoints['paper'] / 'missing'}'" in served["stderr"]
    assert "app.py: serving " in served["stderr"] and name in served["stderr"]


def test_python_app_py_serves_the_shipped_mixture_and_skips_a_malformed_inside_record(inside_lstm, tmp_path):
    """As a user meets them: `python app.py --model checkpoints/mixture` (the mixture is the best model, so the page
    first shows it) with a checkpoint whose inside section is malformed beside it. The mixture writes and scores,
    the Inside view says it does not apply to it; the malformed one is skipped, and the shipped models serve."""
    bad = shutil.copytree(inside_lstm, tmp_path / "bad-inside")
    record = json.loads((bad / "config.json").read_text())
    record["inside"]["horizon"]["below"] = ["10%"]  # all_horizons raised TypeError at start
    (bad / "config.json").write_text(json.dumps(record))
    mixture = "checkpoints/mixture"
    with python_app_py("--model", mixture, "--model", str(bad)) as served:
        client = served["client"]
        _, note, _ = client.predict(mixture, "DORINE.\n\nEh bien, monsieur.", api_name="/score")
        assert re.search(r"\*\*\d\.\d\d bits/char\*\* over the 26 characters", note)
        assert len(client.predict(mixture, "DORINE.\n\n", 30, 0.8, 0, 1.0, 1, api_name="/generate")) == 30
        for endpoint, args in (("/units", ["Eh bien", 0]), ("/leans_on", ["Eh bien", 3])):
            with pytest.raises(AppError, match=f"the Inside view does not apply to {mixture}: it is a mixture of 3 "
                                               "models"):
                client.predict(mixture, *args, api_name=endpoint)
        assert client.predict("LSTM", "Eh bien", 0, api_name="/units")[0][0]["char"] == "E"
    assert f"skipping model '{bad}' ({bad}): CheckpointError: {bad / 'config.json'} has an inside horizon" in served["stderr"]
    serving = next(line for line in served["stderr"].splitlines() if line.startswith("app.py: serving "))
    assert mixture in serving and "LSTM" in serving and str(bad) not in serving
