"""What a checkpoint's record (its config.json) holds, and how to read it.

    charrnn_format, model, dtype, num_params   written by checkpoint.save from the model
    training                                   the run's settings, command, corpus checksum, device
    history                                    one entry per evaluation: losses, characters seen, a sample
    status                                     "training", "interrupted" or "complete"
    final                                      the stored weights' loss record per split (train, val, test),
                                               the training time, and the test-time readings: final[key] is a
                                               test split read by a test-time method (charrnn.testtime), with
                                               its settings, its "label" and an "about" sentence; and
                                               final["writing"]: the form the app writes with (charrnn.fast:
                                               "int8", "bf16" or "float32"), its test loss record, and the
                                               one-character step of each form (µs) on the CPU it was chosen on, and its load average then
"""
from __future__ import annotations

SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}  # in the order tables and plots show them
MODEL_FIELDS = ("charrnn_format", "model", "dtype", "num_params")  # what checkpoint.save adds from the model


def caller_fields(record: dict) -> dict:
    """The part of a record that checkpoint.save takes from its caller: all but what save adds from the model."""
    return {k: v for k, v in record.items() if k not in MODEL_FIELDS}


def recorded_nats(record: dict, split: str = "test") -> float | None:
    """The final loss (nats/char) a record holds for `split`; None if the run did not finish or held no such
    split out."""
    return ((record.get("final") or {}).get(split) or {}).get("nats")


def readings(record: dict) -> dict[str, dict]:
    """The test-time readings of a record, by key (e.g. "dynamic", "cache"), in the order they were recorded."""
    return {k: v for k, v in (record.get("final") or {}).items() if isinstance(v, dict) and "label" in v}
