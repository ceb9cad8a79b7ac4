"""Every cell of the registry (cells.CELLS, the transformer included) through every consumer of the model contract:
training a few steps, save and load, sampling in every writing form, scoring, every test-time reading, and the
compressor in every mode. The app's views take each cell in tests/test_app_models.py. Tiny models: the whole file
takes about a minute on 2 cores."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import charrnn
from charrnn import cells, testtime
from charrnn.compress import compress_text, decompress_text
from charrnn.fast import FORMS, for_writing
from charrnn.testtime import cache, combined, dynamic, krause, mixing
from charrnn.training import Run, TrainConfig, train
from tests.helpers import TINY_TEXT, tiny_model

# Each method with its settings given, so that nothing is tuned (the tuning is tested with the methods).
SETTINGS = {"dynamic": dynamic.Settings(lr=0.05, seq_len=20), "cache": cache.Settings(theta=1.0, lam=0.2, window=100),
            "krause": krause.Settings(lr=1e-4, lam=0.01, seq_len=20, grad_chars=200),
            "combined": combined.Settings(mixer_lr=0.1, adapt="static", words=0),
            "mixing": mixing.Settings(lr=0.005, lr2=0.002, limit=250, adapt="static")}
COMPRESS = [("none", None), ("dynamic", dynamic.Settings(lr=0.05, seq_len=13)),
            ("cache", cache.Settings(theta=1.0, lam=0.2, window=40))]


def test_every_method_is_covered():
    assert set(SETTINGS) == set(testtime.METHODS)


@pytest.fixture(scope="module", params=list(cells.CELLS))
def trained(request, tmp_path_factory):
    """A tiny model of each cell, trained three epochs and saved; the texts it trained and is tested on."""
    cell = request.param
    train_text, test_text = charrnn.data.split(TINY_TEXT)
    kw = {} if cell == "paper" else {"embed_size": 8}
    if cell == "transformer":
        kw.update(heads=2, window=16)
    model = tiny_model(cell, hidden_size=16, num_layers=2, dropout=0.1, **kw)
    cfg = TrainConfig(batch_size=4, seq_len=16, epochs=3, lr=1e-2, warmup_steps=5, sample_length=20, seed=0)
    out = tmp_path_factory.mktemp(cell) / "ckpt"
    record = train(model, Run(train_text, test_text, cfg, out, info={"command": "test"}, progress=False))
    return cell, out, record, train_text, test_text


def test_it_trains_and_its_checkpoint_reproduces_its_recorded_loss(trained):
    cell, out, record, _, test_text = trained
    assert record["history"][-1]["train_loss"] < record["history"][0]["train_loss"], cell
    loaded = charrnn.load(out)
    assert loaded.config.cell == cell
    assert charrnn.evaluate(loaded, test_text)["nats"] == pytest.approx(record["final"]["test"]["nats"], abs=1e-6)
    assert charrnn.char_losses(loaded, test_text).mean().item() == pytest.approx(record["final"]["test"]["nats"], abs=1e-3)


def test_it_writes_in_every_writing_form(trained):
    model = charrnn.load(trained[1])
    for form in FORMS:
        written = "".join(charrnn.generate(for_writing(model, form), "ARGAN.\n\n", 30, 0.8, 0, 1.0, 3))
        assert len(written) == 30 and set(written) <= set(model.config.vocab), (trained[0], form)
    greedy = [charrnn.generate(model, "TOINETTE.", 20, 0.0) for _ in range(2)]
    assert "".join(greedy[0]) == "".join(greedy[1])


@pytest.mark.parametrize("key", sorted(SETTINGS))
def test_every_test_time_reading_reads_it(trained, key):
    cell, out, _, train_text, test_text = trained
    model, method = charrnn.load(out), testtime.METHODS[key]
    if key in ("combined", "mixing"):  # they read the network's cache with the settings the checkpoint records
        model.record["final"]["cache"] = dataclasses.asdict(SETTINGS["cache"])
    ready = method.ready(model, train_text, SETTINGS[key])
    losses = method.char_losses(ready, test_text, SETTINGS[key])
    assert losses.shape == (len(test_text) - 1,) and torch.isfinite(losses).all(), (cell, key)
    assert losses.mean().item() < math.log(model.config.vocab_size), (cell, key)


@pytest.mark.parametrize("adapt,settings", COMPRESS)
def test_the_compressor_round_trips_its_text(trained, adapt, settings):
    model = charrnn.load(trained[1])
    text = trained[4][:150] + "é😀"  # characters outside the vocabulary go through the escape
    assert decompress_text(model, compress_text(model, text, adapt, settings)) == text
