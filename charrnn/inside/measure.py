"""A checkpoint's inside record: its memory horizon and its best units per feature, each measured on text
chosen from its record, never by looking at the test split.

    horizon   averaged over positions of the validation slice, or of the end of the training split for a
              run that held none out (testtime.tuning_text)
    units     chosen on the first half of text the model did not train on (the validation slice, or the end of
              the training split for a run that read only the split's start), and their AUC measured on its
              second half: the best of thousands of units, chosen and measured on the same text, would look
              better than it is. A run that trained on the whole split has no such text before the test
              split: its units are chosen on the end of the training split, and their AUC is then measured,
              only measured, on the start of the test split.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import torch

from ..checkpoint import resave
from ..data import hold_out
from ..record import caller_fields
from ..testtime import TUNE_CHARS, tuning_text
from . import features, horizon, probe

UNITS_CHARS = 50_000  # characters whose activations rank the units: as long as the validation slice
UNITS_WARMUP = 256  # characters read before them, unscored, so that the first ones see a warm state
TOP = 3  # units recorded per feature, best first
AUC_BAR = 0.95  # the README counts, per model, the features with a unit this good


def unit_texts(train_text: str, test_text: str, training: dict) -> dict:
    """Where the units are chosen and where their AUC is measured: {"chosen": (text, skip, words),
    "measured": (text, skip, words)}, each text holding UNITS_WARMUP characters of what comes before it
    (skip: how many), so that its first characters are read with a warm state."""
    trained_on, val = hold_out(train_text, training.get("val_chars", 0), training.get("max_chars", 0))
    tune, words = tuning_text(train_text, training)
    end = len(trained_on) + len(val) if val else len(train_text)  # where the tuning text ends in the corpus
    corpus = train_text + test_text

    def window(start: int, n: int) -> tuple[str, int]:
        lo = max(0, start - UNITS_WARMUP)
        return corpus[lo : start + n], start - lo

    if val or len(trained_on) <= len(train_text) - TUNE_CHARS:  # the tuning text is unseen: halve it
        first, last = len(tune) // 2, len(tune) - len(tune) // 2
        return {"chosen": (*window(end - len(tune), first), f"the first {first:,} characters of {words}"),
                "measured": (*window(end - last, last), f"the last {last:,} characters of {words} (only measured "
                                                        f"there: the units were chosen on its first {first:,})")}
    chosen = (*window(end - len(tune), len(tune)), words)
    n = min(UNITS_CHARS, len(test_text))
    measured = (*window(len(train_text), n), f"the first {n:,} characters of the test split (only measured there: "
                                              "the units were chosen on the training text)")
    return {"chosen": chosen, "measured": measured}


def _round(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 4)


def best_units(model, train_text: str, test_text: str, training: dict, log: Callable[[str], None] = print) -> dict:
    """The TOP units whose activation alone best tells each feature (AUC of the unit or of its opposite), as
    a checkpoint records them."""
    texts = unit_texts(train_text, test_text, training)
    same = texts["measured"] is texts["chosen"]
    aucs, shares = {}, {}
    for role in ("chosen",) if same else ("chosen", "measured"):
        text, skip, words = texts[role]
        log(f"  units: {probe.num_units(model):,} units over {len(text) - skip:,} characters, {words}")
        labels = features.label_all(text)
        aucs[role] = probe.feature_aucs(model, text, labels, skip)  # (F, U)
        shares[role] = {name: sum(v[skip:]) / (len(text) - skip) for name, v in labels.items()}
    if same:
        aucs["measured"], shares["measured"] = aucs["chosen"], shares["chosen"]
    out = {}
    for f, (name, feature) in enumerate(features.FEATURES.items()):
        chosen = aucs["chosen"][f]
        strength = torch.maximum(chosen, 1 - chosen).nan_to_num(nan=-1.0)  # NaN: the feature never (or always) holds
        units = []
        ranked = strength.argsort(descending=True)[:TOP].tolist() if strength.max() >= 0 else []
        for u in ranked:
            sign = 1 if chosen[u] >= 0.5 else -1
            auc = aucs["measured"][f, u].item()
            entry = {"unit": u, "name": probe.unit_name(model, u), "sign": sign,
                     "auc": _round(auc if sign > 0 else 1 - auc)}
            if not same:
                entry["auc_chosen"] = _round(strength[u].item())
            units.append(entry)
        out[name] = {"about": feature.about, "share": round(shares["measured"][name], 4), "units": units}
    above = sum(bool(v["units"]) and (v["units"][0]["auc"] or 0) >= AUC_BAR for v in out.values())
    return {"chosen_on": texts["chosen"][2], "measured_on": texts["measured"][2], "units": probe.num_units(model),
            "auc_bar": AUC_BAR, "features_above_bar": above, "features": out}


def inside_record(model, train_text: str, test_text: str, positions: int, max_distance: int = horizon.MAX_DISTANCE,
                  warmup: int = horizon.WARMUP, log: Callable[[str], None] = print) -> dict:
    """The inside record of `model` (without its command): {"horizon": ..., "units": ...}."""
    text, words = tuning_text(train_text, model.record.get("training", {}))
    log(f"  horizon: {positions} positions of {words}, distances 1 to {max_distance}")
    curve = {"text": words, **horizon.memory_horizon(model, text, positions, max_distance, warmup)}
    if probe.not_readable(model, units=True):  # a transformer: no state per step whose units could be read
        log(f"  units: not measured ({probe.not_readable(model, units=True)})")
        return {"horizon": curve}
    return {"horizon": curve, "units": best_units(model, train_text, test_text, model.record.get("training", {}), log)}


def check_recordable(path: str | Path) -> None:
    if not Path(path).is_dir():
        raise ValueError(f"the inside record is written into a local checkpoint directory; {path} is none "
                         "(download it first, or do not record)")


def write_record(model, path: str | Path, inside: dict) -> None:
    """Save `model` again into `path` with `inside` as its record's "inside", keeping everything else (the
    weights are written again unchanged, in their storage type)."""
    check_recordable(path)
    resave(model, path, {**caller_fields(model.record), "inside": inside})
