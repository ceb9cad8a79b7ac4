"""Test-time methods: ways of reading a text with a trained model that do better than its weights alone,
each in one module behind one interface, and the registry of them.

A method has settings (a dataclass; a field whose default is None is chosen on a tuning text, never on
the test split), a per-character reading of a text, a search of its settings, and the words that
describe a reading. `read` runs one method on the test split; `record` writes the result into the
checkpoint's config.json as final[key] (see charrnn.record), whence the model card and the app show it.

    dynamic   the paper's dynamic model: the network keeps learning from the text it has read
    krause    dynamic evaluation as Krause et al. (2018): steps scaled by each weight's gradient RMS on training
              text, with a decay toward the trained weights
    combined  the network (read as one of the above), its cache and character counts, mixed by learning weights
    cache     a continuous cache: the fixed network, mixed with what followed its most similar states
    mixing    the networks (by their weights and as they learn), the cache, counts, words, lines and a match model,
              mixed per binary decision by context-selected logistic mixers in two layers, then APMs (paq8px's last
              stages)
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import torch

from ..checkpoint import resave
from ..data import hold_out
from ..record import caller_fields
from ..scoring import average
from . import cache, combined, dynamic, krause, mixing
from .method import Method

TUNE_CHARS = 50_000  # tuning text for checkpoints without a validation slice: the end of the training split


METHODS: dict[str, Method] = {m.key: m for m in (dynamic.METHOD, cache.METHOD, krause.METHOD, combined.METHOD,
                                                mixing.METHOD)}


def tuning_text(train_text: str, training: dict) -> tuple[str, str]:
    """The text to choose a test-time setting on, and what it is, from the training split and the run's
    settings (the record's `training`: its validation slice and how much of the split it read).

    The validation slice where the run held one out. Otherwise the end of the training split: not the
    test split either way, but text the model trained on (which favours timid settings: small learning
    rates, a light cache) unless the run read only the start of the split.
    """
    trained_on, val = hold_out(train_text, training.get("val_chars", 0), training.get("max_chars", 0))
    if val:
        return val, f"the validation slice ({len(val):,} characters, never trained on)"
    seen = len(trained_on) > len(train_text) - TUNE_CHARS
    return train_text[-TUNE_CHARS:], (f"the last {TUNE_CHARS:,} characters of the training split (this run held no "
                                      "validation slice out; " + ("the model trained on this text)" if seen else
                                      f"it trained on the split's first {len(trained_on):,} characters only, "
                                      "never on this text)"))


def trained_on(train_text: str, training: dict) -> str:
    """The text a run trained on, from the training split and the run's settings (the record's `training`)."""
    return hold_out(train_text, training.get("val_chars", 0), training.get("max_chars", 0))[0]


def read(method: Method, model, test_text: str, tune_on: str, tune_words: str, settings,
         log: Callable[[str], None] | None = None, train_text: str = "") -> tuple[dict, torch.Tensor]:
    """Read `test_text` with `method`: its settings tuned on `tune_on` where `settings` leaves them None.
    `train_text` is the text the model trained on, for a method that measures something on it first.

    Returns the reading as a checkpoint records it (settings, label, about, the tuning losses, the test
    loss record) and the per-character test losses.
    """
    model = method.ready(model, train_text, settings, log)
    settings, grid = method.tune(model, tune_on, settings, log)
    losses = method.char_losses(model, test_text, settings)
    reading = {**dataclasses.asdict(settings), "label": method.label, "about": method.about(settings, tune_words),
               "tuned_on": tune_words, "tuning": {",".join(f"{v:g}" for v in k): round(v, 6) for k, v in grid.items()},
               "test": average(losses)}
    return reading, losses


def check_recordable(path: str | Path, record: dict) -> None:
    """Raise ValueError unless a reading can be recorded beside the final losses of checkpoint `path`."""
    if not Path(path).is_dir():
        raise ValueError(f"a reading is recorded into a local checkpoint directory; {path} is none "
                         "(download it first, or do not record)")
    if not record.get("final"):
        raise ValueError(f"{path} has no final losses (training did not finish): nothing to record "
                         "beside; finish or resume the run first")


def record(model, path: str | Path, key: str, reading: dict) -> None:
    """Save `model` again into `path` with `reading` as its record's final[key], keeping everything else."""
    check_recordable(path, model.record)
    kept = caller_fields(model.record)
    kept["final"] = {**kept["final"], key: reading}
    resave(model, path, kept)
