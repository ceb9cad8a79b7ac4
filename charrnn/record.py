"""What a checkpoint's record (its config.json) holds, and how to read it.

    charrnn_format, model, dtype, num_params   written by checkpoint.save from the model (a mixture's model
                                               names its members: path, sha256 of their weights, weight)
    weights_sha256                             written by checkpoint.save: the sha256 of model.safetensors,
                                               checked by every load
    training                                   the run's settings, command, corpus checksum, device; a run on
                                               several processes (charrnn.distributed) adds world_size and
                                               backend ("gloo" or "nccl"); a run started from a trained model
                                               (train.py --init-from) adds init_from: that checkpoint's path or
                                               Hub id, its weights_sha256, corpus and corpus_sha256, and the
                                               added_chars its vocabulary gained; a mixture (charrnn.mixture)
                                               records how its weights were chosen instead
    history                                    one entry per evaluation: losses, characters seen, a sample
    status                                     "training", "interrupted" or "complete"
    final                                      the stored weights' loss record per split (train, val, test),
                                               the training time, and the test-time readings: final[key] is a
                                               test split read by a test-time method (charrnn.testtime), with
                                               its settings, its "label" and an "about" sentence; and
                                               final["writing"]: the form the app writes with (charrnn.fast:
                                               "int8", "bf16" or "float32"), its test loss record, and the
                                               one-character step of each form (µs) on the CPU it was chosen
                                               on, with that CPU's name and load average then
    inside                                     what the network does inside (python -m charrnn inside --record,
                                               charrnn.inside): the "command" that measured it; "horizon", the
                                               mean dependence of a prediction on the input k characters back,
                                               relative to k = 1, for k = 1..max_distance, and where it falls below
                                               10 % and 1 %; "units", for each feature of play text the best units
                                               (number, name, sign, ROC AUC) and the texts they were chosen and
                                               measured on
"""
from __future__ import annotations

import re

SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}  # in the order tables and plots show them
# What checkpoint.save adds from the model and its weights file.
MODEL_FIELDS = ("charrnn_format", "model", "dtype", "num_params", "weights_sha256")
UNFINISHED = ("training", "interrupted")  # the statuses of a run that --resume continues


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


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _loss_record(v) -> bool:
    return isinstance(v, dict) and _number(v.get("nats")) and _number(v.get("bpc"))


def _count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _finite(v) -> bool:
    return _number(v) and -1e300 < v < 1e300  # NaN compares false; so do infinities and JSON integers past a float


HORIZON_MARKS = ("10%", "1%")  # where inside.horizon records the dependence falling below (its THRESHOLDS)


def inside_problem(inside) -> str | None:
    """What is wrong, in words, with a record's "inside" section in the parts the model card and the app read; None
    if nothing."""
    if not isinstance(inside, dict):
        return f"an inside section that is a {type(inside).__name__}, not a mapping"
    h, u = inside.get("horizon"), inside.get("units")
    if not (isinstance(h, dict) and isinstance(h.get("text"), str) and isinstance(h.get("input"), str)
            and all(_count(h.get(k)) for k in ("positions", "max_distance"))
            and isinstance(h.get("relative"), list) and h["relative"] and all(_finite(r) for r in h["relative"])
            and isinstance(h.get("below"), dict) and set(h["below"]) == set(HORIZON_MARKS)
            and all(k is None or (_count(k) and k > 0) for k in h["below"].values())):
        return ("an inside horizon without what every one holds (text, input, positions, max_distance, a list of finite "
                f"relative values, and below: {', '.join(HORIZON_MARKS)} each a distance or null)")
    if not isinstance(inside.get("command"), str):
        return "an inside section without the command that measured it"
    if "units" not in inside:  # a model without units to read (the transformer): its horizon only
        return None
    features = u.get("features") if isinstance(u, dict) else None
    if not (isinstance(features, dict)
            and all(isinstance(u.get(k), str) for k in ("chosen_on", "measured_on"))
            and _count(u.get("features_above_bar")) and _finite(u.get("auc_bar"))):
        return ("an inside units section without what every one holds (chosen_on, measured_on, auc_bar, "
                "features_above_bar, features) or no command")
    for name, f in features.items():
        if not (isinstance(f, dict) and isinstance(f.get("about"), str) and isinstance(f.get("units"), list)
                and all(isinstance(e, dict) and _count(e.get("unit")) and isinstance(e.get("name"), str)
                        and e.get("sign") in (1, -1) and (e.get("auc") is None or _finite(e["auc"]))
                        for e in f["units"])):
            return (f"an inside feature {name!r:.40} without what every one holds (about, and units each with a unit "
                    "number, a name, a sign of 1 or -1, an AUC or null)")
    return None


def problem(record: dict) -> str | None:
    """What is wrong, in words, with the parts of a record that cards and reports read; None if nothing.

    checkpoint.read_record refuses a config.json with any, so that a record that loads can be shown.
    """
    dtype = record.get("dtype", "float32")
    if dtype not in ("float32", "float16", "bfloat16", "float64"):
        return f"names no storage type torch has for weights (dtype {dtype!r:.40})"
    sha = record.get("weights_sha256")
    if sha is not None and not (isinstance(sha, str) and re.fullmatch("[0-9a-f]{64}", sha)):
        return f"holds a weights_sha256 that is no sha256 ({sha!r:.80})"
    for key, kind in (("training", dict), ("history", list), ("final", dict), ("status", str), ("num_params", int)):
        v = record.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, kind)):
            return f"has a {key} that is not a {kind.__name__}"
    losses = {f"{s}_loss" for s in SPLIT_NAMES}
    history = record.get("history") or []
    for i, h in enumerate(history):
        # Every entry holds the same losses, as the card's table and the app's curve read them.
        if not (isinstance(h, dict) and {"train_loss", "test_loss"} <= h.keys()
                and losses & h.keys() == losses & history[0].keys()
                and all(_number(h.get(k)) for k in ("epoch", "chars", "time_s", *(losses & h.keys())))
                and isinstance(h.get("sample", ""), str)):
            return (f"has a history entry ({i + 1}) without the numbers every entry holds (epoch, chars, time_s, "
                    "train_loss, test_loss, and the same losses in every entry)")
    training = record.get("training") or {}
    if not (isinstance(training.get("command", ""), str) and isinstance(training.get("resumed_with", []), list)
            and all(isinstance(c, str) for c in training.get("resumed_with", []))):
        return "has a training command that is not text"
    final = record.get("final") or {}
    if final and not all(_loss_record(final.get(s)) for s in ("train", "test")):
        return "has final losses without a train and a test loss record (nats and bpc)"
    for key, v in final.items():
        is_reading = isinstance(v, dict) and "label" in v
        if (key in SPLIT_NAMES and not _loss_record(v)) or (key == "train_time_s" and not _number(v)) or (
                is_reading and not (isinstance(v["label"], str) and isinstance(v.get("about"), str)
                                    and _loss_record(v.get("test")))):
            return f"has final[{key!r:.40}] in no form charrnn reads"
    if record.get("inside") is not None and (wrong := inside_problem(record["inside"])):
        return f"has {wrong}: measure it again (python -m charrnn inside --record)"
    return None
