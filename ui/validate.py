"""What every view shares: the models on offer, the limits of a request and their checks.

Requests are untrusted (the API bypasses the sliders), so each action checks its inputs against these
limits, the same ones the sliders show, and raises gr.Error saying what is allowed.
"""
from __future__ import annotations

import math

import gradio as gr

CONCURRENCY = 2  # model calls at once: one per vCPU of a free Space, each on one torch thread
QUEUE_SIZE = 64  # waiting requests beyond this are refused with "queue full" rather than piling up
TIME_LIMIT_S = 60  # no request holds a worker longer than this
# The keyword arguments of every event that runs a model: they share the CONCURRENCY workers.
MODEL_EVENT = dict(concurrency_id="model", concurrency_limit=CONCURRENCY, preprocess=False)


class Catalog:
    """The loaded models by the name the page shows; an unknown name is a gr.Error that lists the known ones."""

    def __init__(self, models: dict):
        if not models:
            raise ValueError("the app needs at least one model")
        self.models = models

    def __getitem__(self, name):
        if not isinstance(name, str) or name not in self.models:
            raise gr.Error(f"unknown model {name!r:.60}: choose one of {', '.join(map(repr, self.models))}")
        return self.models[name]

    def names(self) -> list[str]:
        return list(self.models)


def as_number(name: str, value, lo: float, hi: float, integer: bool = False, above_lo: bool = False):
    """`value` as an int or float within [lo, hi] (or (lo, hi]), else a gr.Error that states the range."""
    lo, hi = (int(b) if float(b).is_integer() else b for b in (lo, hi))  # 2147483647, not 2.14748e+09
    allowed = (f"{name} must be {'an integer' if integer else 'a number'} "
               + (f"greater than {lo} and at most {hi}" if above_lo else f"from {lo} to {hi}"))
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < lo or value > hi or (above_lo and value == lo) or (integer and value != int(value)):
        raise gr.Error(f"{allowed}; got {value!r:.40}")
    return int(value) if integer else float(value)


def as_text(name: str, value, max_chars: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise gr.Error(f"{name} must be text; got {type(value).__name__}")
    if len(value) > max_chars:
        raise gr.Error(f"{name} is {len(value):,} characters long; at most {max_chars:,} are allowed")
    return value


def dropped_note(dropped: list[str], n: int) -> str:
    shown = ", ".join(repr(c) for c in dropped[:10]) + (", …" if len(dropped) > 10 else "")
    return f"{n} character(s) the model has never seen were left out: {shown}"
