"""The Gradio app: its actions called directly, then the served app through a real gradio_client.Client."""
from __future__ import annotations

import concurrent.futures
import math
import os
import socket
import subprocess
import sys
import time

import gradio as gr
import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

import app
import charrnn
from charrnn import report
from charrnn.bench import app as bench_app
from charrnn.data import SAMPLE_PROMPT
from ui import score as score_view
from ui import write as write_view
from ui.learned import Learned
from ui.score import Score
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


def test_score_colours_each_character_by_its_loss(scorer, app_models):
    text = "VALÈRE.\n\nMonsieur, je vous dis que la chose est faite."  # ',' is not in the tiny vocabulary
    clean = text.replace(",", "")
    highlighted, note, next_label = scorer.score(LSTM, text)
    assert "".join(c for c, _ in highlighted) == clean.replace("\n", "↵\n")
    assert highlighted[0][1] is None  # the first character is only read
    bits = charrnn.char_losses(app_models[LSTM], clean) / math.log(2)
    for (c, label), b in zip(highlighted[1:], bits.tolist()):
        bound = next(bd for bd, lb in score_view.LOSS_CLASSES if lb == label)
        lower = [bd for bd, _ in score_view.LOSS_CLASSES if bd < bound]
        assert b <= bound and (not lower or b > max(lower))
    bpc = charrnn.evaluate(app_models[LSTM], clean)["bpc"]
    assert f"**{bpc:.2f} bits/char** over the {len(clean) - 1} characters" in note
    assert "1 character(s) the model has never seen were left out: ','" in note
    expected = charrnn.next_chars(app_models[LSTM], clean, 5)
    assert list(next_label) == [score_view.SHOWN_AS.get(c, c) for c, _ in expected]
    assert list(next_label.values()) == pytest.approx([p for _, p in expected])


def test_score_compares_with_the_models_test_loss(scorer, app_models):
    _, note, _ = scorer.score(LSTM, "DORINE.\n\nEh bien.")
    assert f"Molière's own test text costs this model {app_models[LSTM].record['final']['test']['bpc']:.2f}" in note
    _, note, _ = scorer.score(SLOW, "DORINE.\n\nEh bien.")  # a model with no record: no comparison
    assert "test text" not in note


def test_score_with_the_cache_reads_as_the_cached_model(scorer, app_models):
    from charrnn.testtime.cache import CachedModel

    text = "DORINE.\n\nEh bien monsieur.\n\nDORINE.\n\nEh bien."
    highlighted, note, next_label = scorer.score(LSTM, text, cache=True)
    cached = CachedModel.from_record(app_models[LSTM])
    bpc = charrnn.char_losses(cached, text).mean().item() / math.log(2)
    assert f"**{bpc:.2f} bits/char**" in note
    assert bpc != pytest.approx(charrnn.char_losses(app_models[LSTM], text).mean().item() / math.log(2), abs=0.01)
    recorded = app_models[LSTM].record["final"]["cache"]["test"]["bpc"]
    assert f"Molière's own test text costs this model {recorded:.2f} bits/char with its cache" in note
    assert list(next_label.values()) == pytest.approx([p for _, p in charrnn.next_chars(cached, text, 5)])
    with pytest.raises(gr.Error, match="records no cache settings"):
        scorer.score(PAPER, text, cache=True)
    with pytest.raises(gr.Error, match="cache must be true or false"):
        scorer.score(LSTM, text, cache="yes")


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
    meta = app_models[PAPER].record
    curve, table = learned.history(PAPER)
    assert len(curve) == 2 * len(meta["history"]) == 6
    test = curve[curve["split"] == "test"]
    assert test["bits/char"].tolist() == pytest.approx([h["test_loss"] / math.log(2) for h in meta["history"]])
    assert test["epoch"].tolist() == [1.0, 2.0, 3.0]
    rows = dict(zip(table["quantity"], table["value"]))
    final = meta["final"]
    assert rows["status"] == "complete"
    assert rows["test loss (nats/char)"] == f"{final['test']['nats']:.4f}"
    assert rows["train bits/char"] == f"{final['train']['bpc']:.3f}"
    assert rows["test perplexity"] == f"{math.exp(final['test']['nats']):.2f}"
    assert rows["gap test − train (nats/char)"] == f"{final['test']['nats'] - final['train']['nats']:+.4f}"
    assert rows["over-fitting"].split(":")[0] in ("none", "slight", "clear", "strong")
    assert rows["losses from"] == "final evaluation of the stored weights"
    assert rows["parameters"] == f"{app_models[PAPER].num_params():,}"
    assert rows["training time"].endswith(" s on cpu")


def test_history_shows_the_validation_loss_of_a_run_that_held_one_out(learned, app_models):
    meta = app_models[LSTM].record
    curve, table = learned.history(LSTM)
    assert curve["split"].tolist()[:3] == ["train", "val", "test"] and len(curve) == 3 * len(meta["history"])
    val = curve[curve["split"] == "val"]
    assert val["bits/char"].tolist() == pytest.approx([h["val_loss"] / math.log(2) for h in meta["history"]])
    rows = dict(zip(table["quantity"], table["value"]))
    assert rows["validation loss (nats/char)"] == f"{meta['final']['val']['nats']:.4f}"
    paper_rows = dict(zip(*learned.history(PAPER)[1].T.values))
    assert paper_rows["validation loss (nats/char)"] == "none held out"


def test_history_of_a_model_still_training(learned, app_models):
    last = app_models[UNFINISHED].record["history"][-1]
    _, table = learned.history(UNFINISHED)
    rows = dict(zip(table["quantity"], table["value"]))
    assert rows["status"] == "training: epoch 3 of 3"
    assert rows["test loss (nats/char)"] == f"{last['test_loss']:.4f}"
    assert rows["losses from"] == "evaluation at epoch 3; training not finished"


def test_history_of_a_model_without_record(learned):
    curve, table = learned.history(SLOW)
    assert len(curve) == 0 and list(curve.columns) == ["epoch", "characters seen", "split", "bits/char"]
    assert dict(zip(table["quantity"], table["value"]))["losses"] == "none recorded in this checkpoint"
    assert learned.training_sample(SLOW, 1) == ("This checkpoint recorded no samples during training.", "")


def test_history_refuses_unknown_model(learned):
    with pytest.raises(gr.Error, match="unknown model 'LSTM ': choose one of"):
        learned.history("LSTM ")


def test_training_sample_at_each_evaluation(learned, app_models):
    history = app_models[LSTM].record["history"]
    for i, h in enumerate(history, 1):
        caption, sample = learned.training_sample(LSTM, i)
        assert sample == SAMPLE_PROMPT + h["sample"]
        assert caption.startswith(f"Epoch {h['epoch']:g}: {h['chars']:,} characters seen")
    for bad in (0, len(history) + 1, 1.5, "2"):
        with pytest.raises(gr.Error, match=f"index must be an integer from 1 to {len(history)}"):
            learned.training_sample(LSTM, bad)


def test_all_models_side_by_side(learned, app_models):
    curves, table = learned.all_models()
    assert sorted(set(curves["model · split"])) == sorted([f"{PAPER} · train", f"{PAPER} · test"] +
                                                          [f"{n} · {s}" for n in (LSTM, UNFINISHED)
                                                           for s in ("train", "val", "test")])
    assert list(table.columns) == ["quantity", *app_models]
    rows = table.set_index("quantity")
    assert rows.loc["status", PAPER] == "complete" and rows.loc["status", UNFINISHED].startswith("training")
    assert rows.loc["test loss (nats/char)", SLOW] == ""  # a model with no losses leaves its cells empty


# --- report: the computations behind the loss panel -------------------------------------------------

@pytest.mark.parametrize("train, test, verdict", [
    (1.5, 1.5, "none"), (1.5, 1.45, "none"), (1.5, 1.55, "slight"), (1.5, 1.7, "clear"), (1.5, 2.0, "strong")])
def test_overfitting_in_words(train, test, verdict):
    assert report.overfitting_in_words(train, test) == {
        "none": "none: it predicts the test text, never seen, as well as its training text",
        "slight": "slight: the test text, never seen, costs 3% more than training text",
        "clear": "clear: the test text, never seen, costs 13% more than training text",
        "strong": "strong: the test text, never seen, costs 33% more than training text"}[verdict]


def test_overfitting_in_words_reads_the_test_loss_trend():
    falling = [{"epoch": 1.0, "test_loss": 2.0}, {"epoch": 2.0, "test_loss": 1.8}]
    rising = falling + [{"epoch": 3.0, "test_loss": 1.9}]
    assert report.overfitting_in_words(1.5, 1.8, falling).endswith("; the test loss was still falling at the last "
                                                                   "evaluation")
    assert report.overfitting_in_words(1.4, 1.9, rising) == ("strong: the test text, never seen, costs 36% more than "
                                                             "training text; the test loss has risen since epoch 2: "
                                                             "later training memorised")


def test_overfitting_is_judged_on_the_validation_slice_where_a_run_held_one_out():
    """The test plays differ from the training plays; the validation slice is the same plays, so it judges."""
    history = [{"epoch": 1.0, "chars": 10, "train_loss": 1.2, "val_loss": 1.15, "test_loss": 1.5, "time_s": 1.0},
               {"epoch": 2.0, "chars": 20, "train_loss": 1.0, "val_loss": 1.1, "test_loss": 1.4, "time_s": 2.0}]
    meta = {"status": "complete", "history": history,
            "final": {"train": {"nats": 1.0}, "val": {"nats": 1.1}, "test": {"nats": 1.4}, "train_time_s": 2.0}}
    assert report.summary(meta)["overfitting"] == ("clear: the validation text, never seen, costs 10% more than "
                                                   "training text; the validation loss was still falling at the "
                                                   "last evaluation")
    rising = [*history, {**history[-1], "epoch": 3.0, "val_loss": 1.2, "test_loss": 1.3}]
    assert report.overfitting_in_words(1.0, 1.2, rising, "val").endswith(
        "the validation loss has risen since epoch 2: later training memorised")
    without = {**meta, "final": {k: v for k, v in meta["final"].items() if k != "val"}}
    assert report.summary(without)["overfitting"].startswith("strong: the test text, never seen, costs 40% more")


def test_summary_prefers_final_losses_over_history():
    meta = {"num_params": 10, "status": "complete", "training": {"epochs": 2},
            "history": [{"epoch": 2.0, "chars": 100, "train_loss": 9.0, "test_loss": 9.0, "time_s": 5.0}],
            "final": {"train": {"nats": 1.0}, "test": {"nats": 1.2}, "train_time_s": 7.0}}
    s = report.summary(meta)
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


def test_main_exits_clearly_without_any_model(monkeypatch, tmp_path):
    monkeypatch.setattr(app, "SHIPPED", {"Gone": tmp_path / "gone"})
    monkeypatch.setenv("CHARRNN_MODELS", f"{tmp_path / 'a'}, {tmp_path / 'b'}")
    with pytest.raises(SystemExit, match="no model could be loaded"):
        app.main(["--model", str(tmp_path / "c")])


# --- the served app, through gradio_client --------------------------------------------------------------

def test_named_endpoints_and_their_parameters(client):
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    params = {name: [p["parameter_name"] for p in api[name]["parameters"]]
              for name in ("/generate", "/score", "/history")}
    assert params == {"/generate": ["model", "prompt", "length", "temperature", "top_k", "top_p", "random_seed"],
                      "/score": ["model", "text", "cache"], "/history": ["model"]}


def test_generate_streams_through_the_client(client, app_models):
    job = client.submit(model=LSTM, prompt="HARPAGON.\n\n", length=2000, temperature=0.9, top_k=0, top_p=1.0,
                        random_seed=7, api_name="/generate")
    outs = list(job)
    assert len(outs) >= 3 and len(outs[0]) == 1  # the first character, at least one batch in between, the end
    assert all(b.startswith(a) and len(b) > len(a) for a, b in zip(outs, outs[1:]))
    assert job.result() == outs[-1] == reference(app_models[LSTM], "HARPAGON.\n\n", 2000, 0.9, random_seed=7)


def test_concurrent_requests_do_not_affect_each_other(client, app_models):
    seeds = [1, 2, 3, 1, 2, 3]
    jobs = [client.submit(LSTM, "ÉLISE.\n\n", 400, 1.0, 0, 1.0, s, api_name="/generate") for s in seeds]
    results = [j.result(timeout=60) for j in jobs]
    assert results == [reference(app_models[LSTM], "ÉLISE.\n\n", 400, 1.0, random_seed=s) for s in seeds]


def test_score_and_history_through_the_client(client, app_models):
    highlighted, note, label = client.predict(LSTM, "DORINE.\n\nEh bien.", api_name="/score")
    assert "".join(t["token"] for t in highlighted) == "DORINE.↵\n↵\nEh bien."
    assert "bits/char** over the 16 characters after the first" in note
    assert len(label["confidences"]) == 5
    _, cached_note, _ = client.predict(LSTM, "DORINE.\n\nEh bien.", True, api_name="/score")
    assert "with its cache" in cached_note and cached_note != note
    curve, table = client.predict(PAPER, api_name="/history")
    assert curve["columns"] == ["epoch", "characters seen", "split", "bits/char"] and len(curve["data"]) == 6
    assert dict(table["data"])["status"] == "complete"


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


def test_every_bad_request_gets_its_error_and_the_app_answers_the_next(client, app_models):
    expected = reference(app_models[PAPER], "VALÈRE.\n\n", 30, random_seed=4)
    for endpoint, args, message in client_bad_requests(len(app_models[LSTM].vocab)):
        with pytest.raises(AppError) as e:
            client.predict(*args, api_name=endpoint)
        assert message in str(e.value), (endpoint, args)
        assert client.predict(PAPER, "VALÈRE.\n\n", 30, 0.8, 0, 1.0, 4, api_name="/generate") == expected


def test_a_cancelled_generation_frees_its_worker(client, app_models):
    job = client.submit(SLOW, "HARPAGON.\n\n", write_view.MAX_LENGTH, 1.0, 0, 1.0, 0, api_name="/generate")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(lambda: next(iter(job)))
        assert len(first.result(timeout=60)) >= 1
    job.cancel()
    # With the queue's two workers, two more requests still run at once and answer correctly.
    jobs = [client.submit(PAPER, "VALÈRE.\n\n", 30, 0.8, 0, 1.0, 4, api_name="/generate") for _ in range(2)]
    assert {j.result(timeout=60) for j in jobs} == {reference(app_models[PAPER], "VALÈRE.\n\n", 30, random_seed=4)}


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


def test_python_app_py_serves_on_the_port_from_the_environment(tiny_checkpoints):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "CHARRNN_MODELS": f"{tiny_checkpoints['lstm']},{tiny_checkpoints['paper'] / 'missing'}"}
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=app.HERE, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        client, deadline = None, time.monotonic() + 120
        while client is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            except (httpx.HTTPError, ValueError):
                time.sleep(0.2)
        assert client is not None, proc.stderr.read() if proc.poll() is not None else "no answer in 120 s"
        name = str(tiny_checkpoints["lstm"])
        _, note, _ = client.predict(name, "DORINE.\n\nEh bien.", api_name="/score")
        assert "bits/char** over the 16 characters" in note
    finally:
        proc.terminate()
        stderr = proc.communicate(timeout=30)[1]
    assert f"skipping model '{tiny_checkpoints['paper'] / 'missing'}'" in stderr
    assert "app.py: serving " in stderr and name in stderr
