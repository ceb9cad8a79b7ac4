"""`python -m charrnn bench testtime`: what each test-time method costs to read a text, beside what it gains.

For one checkpoint, characters/s of reading the first `chars` characters of the test split in one stream:
the weights alone (scoring.char_losses), then each test-time method the checkpoint records, with its
recorded settings (no tuning). A method's one-off preparation (Krause's gradient statistics) is timed
apart. The gain printed beside each is the recorded one, on the whole test split.
"""
from __future__ import annotations

import time

import torch

from .. import testtime
from ..data import read_text, resolve_corpus, split
from ..hub import load
from ..record import readings, recorded_nats
from ..scoring import char_losses

WARM_UP = 201  # characters read untimed first by each reading

def _timed(fn) -> tuple[object, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def bench_testtime(checkpoint: str, data: str, chars: int) -> None:
    """Print one row per reading: its characters/s and its recorded test loss."""
    model = load(checkpoint)
    train_text, test_text = split(read_text(resolve_corpus(data)))
    text = test_text[: chars + 1]
    print(f"{checkpoint}: the first {len(text) - 1:,} characters of the test split, one stream, "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)")
    print("| reading | chars/s | x slower than the weights alone | recorded test nats/char |")
    print("|---|---|---|---|")
    char_losses(model, text[:WARM_UP])  # first calls allocate and pick kernels: not timed
    _, base = _timed(lambda: char_losses(model, text))
    static = recorded_nats(model.record)
    print(f"| weights alone | {(len(text) - 1) / base:,.0f} | 1.0 | {static:.4f} |")
    for key, reading in readings(model.record).items():
        method = testtime.METHODS.get(key)
        if method is None:
            continue
        settings = method.settings_of(reading)
        reader, prep = model, 0.0
        if method.prepare is not None:
            trained_on = testtime.trained_on(train_text, model.record.get("training", {}))
            reader, prep = _timed(lambda: method.prepare(model, trained_on, settings))
        method.char_losses(reader, text[:WARM_UP], settings)
        _, spent = _timed(lambda: method.char_losses(reader, text, settings))
        also = f" (and {prep:.0f} s once, on training text)" if prep else ""
        print(f"| {reading['label']}{also} | {(len(text) - 1) / spent:,.0f} | {spent / base:.1f} | "
              f"{reading['test']['nats']:.4f} |")
