"""What the app tells a visitor about a model: its training record in figures and in words, and its score of a text.

Everything here reads a loaded model and its record (config.json); nothing trains or writes.
A checkpoint still in training has a `history` but no `final` losses, and the report says so.
"""
from __future__ import annotations

import math

from .card import fmt_duration
from .record import SPLIT_NAMES, readings
from .data import START
from .scoring import read
from .units import LN2, bits


def perplexity(nats: float) -> float:
    """Per-character perplexity: the number of equally likely characters the model is, on average, choosing from."""
    return math.exp(nats)


def gap_in_words(train_nats: float, held_nats: float, history: list[dict] = (), split: str = "test") -> str:
    """The generalisation gap, held-out loss against train loss, in words, and what the recorded history says
    of it: whether more training still lowered the held-out loss.

    split: which held-out text, "val" or "test". The validation slice is text of the same plays as the
    training text; the test split's plays differ, so a gap there is partly the plays, not memorisation.
    No verdict of over-fitting is given that the curves do not support: only a held-out loss that rose
    again is one.
    """
    name = SPLIT_NAMES[split]
    rel = (held_nats - train_nats) / max(train_nats, 1e-9)
    words = (f"the {name} text costs {rel:.0%} more than the training text" if rel >= 0.005 else
             f"the {name} text costs no more than the training text")
    if split == "test":
        words += " (the test plays differ from the training plays: part of the gap is the text, not memorisation)"
    if len(history) >= 2:
        best = min(history, key=lambda h: h[f"{split}_loss"])
        if history[-1][f"{split}_loss"] > best[f"{split}_loss"] + 0.005:
            words += f"; its loss has risen since epoch {best['epoch']:g}, a sign of over-fitting"
        else:
            words += "; its loss was still falling at the last evaluation"
    return words


def summary(record: dict) -> dict:
    """Headline figures of a checkpoint record: final losses when training finished, else the last evaluation.

    Returns {} losses-wise (only status and parameters) when the record has neither.
    """
    history = record.get("history") or []
    final = record.get("final")
    epochs = record.get("training", {}).get("epochs")
    out = {"num_params": record.get("num_params"), "status": record.get("status", "unknown"), "epochs_planned": epochs,
           "complete": bool(final)}
    if history:
        last = history[-1]
        out.update(epoch=last.get("epoch"), chars_seen=last.get("chars"))
    if final:
        train, test = final["train"]["nats"], final["test"]["nats"]
        out.update(train_nats=train, test_nats=test, train_time_s=final.get("train_time_s"))
        if "val" in final:
            out["val_nats"] = final["val"]["nats"]
        out["readings"] = {r["label"]: r["test"]["nats"] for r in readings(record).values()}
    elif history:
        train, test = last["train_loss"], last["test_loss"]
        out.update(train_nats=train, test_nats=test, train_time_s=last.get("time_s"))
        if "val_loss" in last:
            out["val_nats"] = last["val_loss"]
    else:
        return out
    held = "val" if "val_nats" in out else "test"
    out.update(train_bpc=train / LN2, test_bpc=test / LN2, train_perplexity=perplexity(train),
               test_perplexity=perplexity(test), gap_nats=out.get("val_nats", test) - train, gap_split=held,
               gap=gap_in_words(train, out.get("val_nats", test), history, held))
    return out


def summary_rows(record: dict) -> list[list[str]]:
    """summary(record) as [quantity, value] rows for a table, in bits/char, formatted for reading."""
    s = summary(record)
    if s["complete"]:
        status = "complete"
    elif s.get("epoch") is not None:
        status = f"{s['status']}: epoch {s['epoch']:g} of {s['epochs_planned'] or '?'} (last evaluation shown)"
    else:
        status = s["status"]
    rows = [["status", status]]
    if "test_nats" in s:
        rows += [["train bits/char", f"{bits(s['train_nats']):.3f}"],
                 ["validation bits/char", f"{bits(s['val_nats']):.3f}" if "val_nats" in s else "none held out"],
                 ["test bits/char", f"{bits(s['test_nats']):.3f}"],
                 *[[f"test bits/char, {label}", f"{bits(nats):.3f}"] for label, nats in s.get("readings", {}).items()],
                 ["test perplexity (per character)", f"{2 ** bits(s['test_nats']):.2f}"],
                 [f"generalisation gap, {SPLIT_NAMES[s['gap_split']]} − train", f"{bits(s['gap_nats']):+.3f} bits/char"],
                 ["the gap in words", s["gap"]]]
    else:
        rows.append(["losses", "none recorded in this checkpoint"])
    if s["num_params"] is not None:
        rows.append(["parameters", f"{s['num_params']:,}"])
    if s.get("chars_seen") is not None:
        rows.append(["characters seen", f"{s['chars_seen']:,}"])
    if s.get("train_time_s") is not None:
        device = record.get("training", {}).get("device", "").replace("(1 CPU threads)", "(1 CPU thread)")
        rows.append(["training time", fmt_duration(s["train_time_s"]) + (f" on {device}" if device else "")])
    return rows


CURVE_COLUMNS = ["epoch", "characters seen", "split", "bits/char"]  # the keys of each loss_curve point


def loss_curve(record: dict) -> list[dict]:
    """The recorded history as long-format points: one per evaluation and split, loss in bits/char.

    The splits are train and test, and val between them for a run that held a validation slice out.
    """
    points = []
    for h in record.get("history") or []:
        for split in SPLIT_NAMES:
            if f"{split}_loss" in h:
                points.append(dict(zip(CURVE_COLUMNS, (h["epoch"], h["chars"], split, h[f"{split}_loss"] / LN2))))
    return points


def score(model, text: str, k: int = 5, *, deadline: float | None = None) -> dict:
    """How well `model` predicts `text`: bits of each character after the first, their mean, the k characters
    the model expected at each of them ("guesses") and after the text ("next").

    The text is normalised first (see Vocab.normalize); `dropped` lists the characters that were removed.
    It is read once (scoring.read), and deadline, a time.monotonic() value, is checked as it is read.
    """
    clean, n_dropped = model.vocab.normalize(text)
    losses, guesses = read(model, clean or START, k, deadline=deadline)
    out = {"text": clean, "n_dropped": n_dropped, "dropped": model.vocab.dropped_chars(text) if n_dropped else [],
           "bits": [], "bpc": None, "guesses": [], "next": guesses[-1]}
    if len(clean) >= 2:
        bits = losses / LN2  # (len(clean) - 1,)
        out.update(bits=bits.tolist(), bpc=float(bits.mean()), guesses=guesses[:-1])
    return out
