"""The shipped checkpoints: present, small enough for a Space, on target, and their records reproducible."""
import functools
import os
from pathlib import Path

import pytest

import charrnn
from charrnn import testtime
from charrnn.card import model_card
from charrnn.data import MOLIERE_SHA256, hold_out, read_text, sha256_of, split
from charrnn.scoring import average

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ["paper-rnn", "gru", "gru-large", "lstm", "seed"]
GATED = ["gru", "gru-large", "lstm"]  # the candidates for the best model, all holding out the same validation slice
BEST = "gru-large"  # the one with the lowest validation loss
# The best model's stored weights miss the 1.25 target on their own: the check stays, marked as a known
# failure that turns red the day a shipped checkpoint meets it, so the mark is then removed. With the
# continuous cache, which changes no weight, it meets it (test_with_the_cache_the_best_model_meets_the_target),
# and so does every gated model read as the paper's dynamic model.
TARGETS = [("paper-rnn", 1.50),
           pytest.param(BEST, 1.25, marks=pytest.mark.xfail(strict=True, raises=AssertionError,
                                                        reason="the 704-wide GRU reaches 1.28, not 1.25"))]

def _corpus() -> Path | None:
    for p in (os.environ.get("CHARRNN_CORPUS"), ROOT.parent / "shared/data/moliere.txt", ROOT / "data/moliere.txt"):
        if p and Path(p).exists():
            return Path(p)
    return None


needs_corpus = pytest.mark.skipif(_corpus() is None, reason="the corpus is not beside the project "
                                                            "(../shared/data/moliere.txt)")
slow = pytest.mark.skipif(not os.environ.get("CHARRNN_SLOW_TESTS"),
                          reason="minutes on one thread, too long for CI: set CHARRNN_SLOW_TESTS=1")
# The dynamic model reads 50,000 characters in 1,000 SGD steps, which takes the GRUs 1 to 3 minutes on one thread;
# Krause's update measures its gradient statistics on 50,000 more first. The combination takes about a minute more
# than the reading of its network (its adapt setting); over the mixture it reads all three members, two by Krause's
# update (adapt "best").
SLOW_TUNING = {("gru", "dynamic"), ("gru-large", "dynamic"), *((name, "krause") for name in GATED + ["paper-rnn"]),
               ("mixture", "best")}


def _slow_tuning(name: str, key: str) -> bool:
    if key in ("combined", "mixing"):  # as slow as the networks' readings it mixes
        key = charrnn.checkpoint.read_record(ROOT / "checkpoints" / name)["final"][key]["adapt"]
    return (name, key) in SLOW_TUNING
MIXTURE = "mixture"  # the mixture of the gated models (python -m charrnn mix), a checkpoint without weights
# Every test-time reading a shipped checkpoint records (python -m charrnn dynamic|cache|krause|combined --record):
# not every model records every method (see the README).
RECORDED = [(name, key) for name in SHIPPED + [MIXTURE] for key in sorted(testtime.METHODS)
            if key in charrnn.checkpoint.read_record(ROOT / "checkpoints" / name)["final"]]


@functools.cache
def _split() -> tuple[str, str]:
    """The corpus's training and test splits, checked to be the corpus the checkpoints were trained on."""
    assert sha256_of(_corpus()) == MOLIERE_SHA256
    return split(read_text(_corpus()))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_is_complete_and_small(name):
    path = ROOT / "checkpoints" / name
    files = sorted(f.name for f in path.iterdir() if f.name != "training_state.pt")
    assert files == ["README.md", "config.json", "model.safetensors"]
    assert sum((path / f).stat().st_size for f in files) < 10 * 2**20  # a Space needs no large-file storage
    model = charrnn.load(path)
    meta = model.record
    assert meta["status"] == "complete" and meta["training"]["corpus_sha256"] == MOLIERE_SHA256
    assert meta["training"]["command"].startswith("python train.py")
    assert len(meta["history"]) >= 2 and meta["history"][-1]["test_loss"] < meta["history"][0]["test_loss"]
    # The card is generated from config.json: the shipped one says what the current card code says.
    card = model_card(charrnn.checkpoint.read_record(path), name)
    assert (path / "README.md").read_text(encoding="utf-8") == card


@pytest.mark.parametrize("name, target", TARGETS)
def test_shipped_checkpoint_meets_its_target(name, target):
    assert charrnn.checkpoint.read_record(ROOT / "checkpoints" / name)["final"]["test"]["nats"] <= target


@needs_corpus
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_test_loss_reproduces(name):
    """Re-evaluated here, the recorded test (and validation) loss comes back to ~1e-7 (the order of float sums
    changes with the number of threads). At 1e-4 a wrong evaluation shows: reading paper-rnn's test split in cold
    streams moves its loss by 1.9e-3 (the finer slips of evaluate are test_scoring.py's to catch)."""
    train_text, test_text = _split()
    model = charrnn.load(ROOT / "checkpoints" / name)
    final = model.record["final"]
    assert charrnn.evaluate(model, test_text)["nats"] == pytest.approx(final["test"]["nats"], abs=1e-4)
    if "val" in final:  # the held-out end of the training text
        training = model.record["training"]
        _, val_text = hold_out(train_text, training["val_chars"], training["max_chars"])
        assert charrnn.evaluate(model, val_text)["nats"] == pytest.approx(final["val"]["nats"], abs=1e-4)


def _reading(name: str, key: str):
    """A shipped model ready for the test-time method `key` (with what the method measures on its training text
    first), the method, its recorded reading and the settings it was made with."""
    model = charrnn.load(ROOT / "checkpoints" / name)
    method, reading = testtime.METHODS[key], model.record["final"][key]
    settings = method.settings_of(reading)
    trained_on = testtime.trained_on(_split()[0], model.record["training"])
    return method.ready(model, trained_on, settings), method, reading, settings


@needs_corpus
@pytest.mark.parametrize("name, key", [pytest.param(n, k, marks=slow) if _slow_tuning(n, k) else (n, k)
                                       for n, k in RECORDED])
def test_shipped_test_time_figure_on_the_tuning_text_reproduces(name, key):
    """The loss recorded with the chosen settings on the tuning text (final[key]["tuning"], rounded to 1e-6), read
    again: 50,000 characters (the validation slice, or the end of the training split). CI reads every model's cache
    figure and the dynamic figures of seed, paper-rnn and lstm (the slower ones: _slow_tuning). The test-split figures
    take minutes a model: CI reads them for seed only (test_shipped_test_time_figure_on_the_test_split_reproduces)."""
    model, method, reading, settings = _reading(name, key)
    text, words = testtime.tuning_text(_split()[0], charrnn.checkpoint.read_record(ROOT / "checkpoints" / name)["training"])
    assert words == reading["tuned_on"]
    recorded = reading["tuning"][",".join(f"{v:g}" for v in method.chosen(reading))]
    assert average(method.char_losses(model, text, settings))["nats"] == pytest.approx(recorded, abs=1e-4)


@needs_corpus
@pytest.mark.parametrize("name, key", [(n, k) if n == "seed" else pytest.param(n, k, marks=slow) for n, k in RECORDED])
def test_shipped_test_time_figure_on_the_test_split_reproduces(name, key):
    """The recorded test loss with the dynamic model or the cache, read again over the whole test split."""
    model, method, reading, settings = _reading(name, key)
    losses = method.char_losses(model, _split()[1], settings)
    assert average(losses)["nats"] == pytest.approx(reading["test"]["nats"], abs=1e-4)


@pytest.mark.parametrize("name", SHIPPED)
def test_dynamic_evaluation_chose_its_rate_off_the_test_split(name):
    """The dynamic test loss (python -m charrnn dynamic) is recorded with the rate that did best on the tuning text."""
    meta = charrnn.checkpoint.read_record(ROOT / "checkpoints" / name)
    d = meta["final"]["dynamic"]
    tuning = {float(lr): nats for lr, nats in d["tuning"].items()}
    assert d["lr"] == min(tuning, key=tuning.get) and 0.0 in tuning and "test" not in d["tuned_on"]
    held_out = meta["training"].get("val_chars")  # the runs made before validation slices existed have no key
    assert d["tuned_on"].startswith("the validation slice" if held_out else "the last 50,000 characters of the training")


@pytest.mark.parametrize("name", SHIPPED)
def test_the_cache_chose_its_settings_off_the_test_split(name):
    """The cache's test loss (python -m charrnn cache) is recorded with the (theta, lam) that did best on the tuning text."""
    meta = charrnn.checkpoint.read_record(ROOT / "checkpoints" / name)
    c = meta["final"]["cache"]
    tuning = {tuple(map(float, pair.split(","))): nats for pair, nats in c["tuning"].items()}
    assert (c["theta"], c["lam"]) == min(tuning, key=tuning.get) and (0.0, 0.0) in tuning
    thetas = sorted({theta for theta, lam in tuning if lam})
    assert thetas[0] < c["theta"] < thetas[-1]  # not at an edge of the grid: a wider one would not do better
    assert c["tuned_on"] == meta["final"]["dynamic"]["tuned_on"]  # the same text as the dynamic rate, off the test split


def test_with_the_cache_the_best_model_meets_the_target():
    assert charrnn.checkpoint.read_record(ROOT / "checkpoints" / BEST)["final"]["cache"]["test"]["nats"] <= 1.25


@pytest.mark.parametrize("name", GATED)
def test_read_dynamically_the_gated_models_meet_the_target(name):
    assert charrnn.checkpoint.read_record(ROOT / "checkpoints" / name)["final"]["dynamic"]["test"]["nats"] <= 1.25


def test_the_best_model_is_the_gated_one_with_the_lowest_validation_loss():
    val = {name: charrnn.checkpoint.read_record(ROOT / "checkpoints" / name)["final"]["val"]["nats"] for name in GATED}
    assert min(val, key=val.get) == BEST


def test_the_course_notebook_recipe_lands_near_the_notebook():
    """The seed preset reproduces the notebook's recipe: its training loss after 10 epochs was 1.66 nats/char."""
    meta = charrnn.load(ROOT / "checkpoints" / "seed").record
    assert meta["training"]["max_chars"] == 50_000 and meta["model"]["hidden_size"] == 128
    assert len(meta["history"]) == 10
    assert meta["history"][-1]["train_running_loss"] == pytest.approx(1.66, abs=0.1)


# Issue 14's marks. Each is a known miss, kept visible: the check turns red the day a recorded figure meets it,
# and the mark is then removed. paq8px (v216) codes the test split given the training text at 1.386 bits/char = 0.960
# nats/char with -8, 1.354 = 0.9384 with -8L (measured by the team; not installable here): issue 29 moved the mark
# of the best reading from 0.95 to 0.93, ahead of -8L.


def _records() -> dict[str, dict]:
    return {name: charrnn.checkpoint.read_record(ROOT / "checkpoints" / name) for name in SHIPPED + [MIXTURE]}


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="the fitted mixture of the three gated models reads "
                                                              "the test split at 1.2367, not 1.20")
def test_the_best_model_of_any_kind_reads_the_test_split_at_1_20_on_its_weights_alone():
    assert min(r["final"]["test"]["nats"] for r in _records().values()) <= 1.20


def _best_adaptive_reading() -> float:
    from charrnn.record import readings

    return min(r["test"]["nats"] for record in _records().values() for r in readings(record).values())


def test_the_best_adaptive_reading_reaches_1_00():
    """Met by the context mixing over the mixture (each member by its weights alone and its best recorded update,
    the cache, the text models): 0.9693."""
    assert _best_adaptive_reading() <= 1.00


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="the best adaptive reading, the context mixing over the "
                                                              "mixture, is 0.9693 nats/char, not 0.93")
def test_the_best_adaptive_reading_is_ahead_of_paq8px_at_0_93():
    assert _best_adaptive_reading() <= 0.93


def test_the_mixture_is_a_small_checkpoint_of_the_gated_models_weighted_on_their_validation_slice():
    path = ROOT / "checkpoints" / MIXTURE
    assert sorted(f.name for f in path.iterdir()) == ["README.md", "config.json"]  # no weights of its own
    assert sum(f.stat().st_size for f in path.iterdir()) < 100_000
    record = charrnn.checkpoint.read_record(path)
    assert [m["path"] for m in record["model"]["members"]] == [f"../{name}" for name in ("gru", "lstm", "gru-large")]
    assert record["training"]["weights"] == "fitted on the validation slice" and record["training"]["val_chars"] == 50_000
    assert record["training"]["command"].startswith("python -m charrnn mix")
    assert (path / "README.md").read_text(encoding="utf-8") == model_card(record, MIXTURE)
    model = charrnn.load(path)  # the members are there, with the weights the mixture was built with
    # It reads the validation slice better than any of its members: the point of mixing them
    assert record["final"]["val"]["nats"] < min(m.record["final"]["val"]["nats"] for m in model.members)


@needs_corpus
def test_the_mixture_s_losses_reproduce():
    from charrnn.mixture import fit_weights

    model = charrnn.load(ROOT / "checkpoints" / MIXTURE)
    train_text, test_text = split(read_text(_corpus()))
    _, val_text = hold_out(train_text, 50_000)
    assert fit_weights(list(model.members), val_text) == pytest.approx(model.weights, abs=1e-4)
    assert charrnn.evaluate(model, val_text)["nats"] == pytest.approx(model.record["final"]["val"]["nats"], abs=1e-4)


@pytest.mark.parametrize("name, key", [(n, k) for n, k in RECORDED if k in ("krause", "combined", "mixing")])
def test_the_new_readings_chose_their_settings_off_the_test_split_where_recorded(name, key):
    """Krause et al.'s dynamic evaluation and the combination (python -m charrnn krause|combined), where recorded:
    the settings that did best on the tuning text, the same text as the other readings'."""
    from charrnn.testtime import METHODS

    final = charrnn.checkpoint.read_record(ROOT / "checkpoints" / name)["final"]
    r = final[key]
    tuning = {tuple(map(float, values.split(","))): nats for values, nats in r["tuning"].items()}
    assert METHODS[key].chosen(r) == min(tuning, key=tuning.get)
    assert r["tuned_on"] == final.get("dynamic", final.get("cache"))["tuned_on"] and "test" not in r["tuned_on"]


def test_the_course_notebook_s_test_slice_is_the_seed_s_validation_slice():
    """The notebook measured its loss on the last 5,000 of the first 50,000 characters: the seed preset holds
    exactly those out, so its recorded validation loss is the notebook's test figure, on text it never trained on."""
    meta = charrnn.checkpoint.read_record(ROOT / "checkpoints" / "seed")
    assert (meta["training"]["max_chars"], meta["training"]["val_chars"]) == (50_000, 5_000)
    assert meta["training"]["train_chars"] == 45_000 and meta["final"]["val"]["chars"] == 4_999
