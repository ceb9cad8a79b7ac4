"""What every view shares: the models on offer, the limits of a request and their checks.

Requests are untrusted (the API bypasses the sliders), so each action checks its inputs against these
limits, the same ones the sliders show, and raises gr.Error saying what is allowed.
"""
from __future__ import annotations

import copy
import functools
import inspect
import math
import os
import threading
import time
import typing
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Literal, TypeVar

import gradio as gr

from charrnn import deadline as clock
from charrnn.cells import CELLS
from charrnn.deadline import DeadlineExceeded
from charrnn.fast import for_writing, recorded_form
from charrnn.model import CharRNN
from charrnn.record import recorded_nats

from . import gpu

CONCURRENCY = 2  # model calls at once: one per vCPU of a free Space, each on one torch thread
QUEUE_SIZE = 64  # waiting requests beyond this are refused with "queue full" rather than piling up
# No request holds a worker longer than this: a deadline checked inside generation and scoring.
TIME_LIMIT_S = float(os.environ.get("CHARRNN_TIME_LIMIT_S", 60))
# Gradio keeps a copy of the page's settings for every session, and every API call is a session of its own:
# 10,000 by default, ~0.15 MiB each here, so memory grew with every request. The most recent ones suffice.
SESSIONS = 256
STREAM_EVERY_S = 0.05  # streamed text reaches the browser in batches this far apart (the first at once)
# Every event that runs a model shares the CONCURRENCY workers: the public endpoints (gr.api) and the page's.
API_EVENT = dict(concurrency_id="model", concurrency_limit=CONCURRENCY)
MODEL_EVENT = dict(API_EVENT, preprocess=False, api_visibility="private")  # the page's; values checked as sent


class Catalog:
    """The loaded models by the name the page shows, in the order of the story (the course notebook's model,
    the paper's, then the gated ones); an unknown name is a gr.Error that lists the known ones.

    device: where the heavy analyses read the models (ui/gpu.py: "cuda" on a ZeroGPU Space); everything else, and a
    heavy call the GPU refused, reads them on the CPU."""

    def __init__(self, models: dict, device: str = "cpu", about: dict[str, str] | None = None):
        if not models:
            raise ValueError("the app needs at least one model")
        self.models, self.sentences = models, about or {}
        # The best model is the one with the lowest recorded validation loss: never chosen on the test split.
        held_out = {n: v for n, m in models.items() if (v := recorded_nats(m.record, "val")) is not None}
        self.best = min(held_out, key=held_out.get) if held_out else next(iter(models))
        # Writing reads every weight once per character: a model writes in the form its checkpoint records as the
        # fastest measured (`python -m charrnn writing --record`, e.g. int8), and scores with its own weights.
        # A model that records none writes as it is.
        self.writers = {n: for_writing(m) if isinstance(m, CharRNN) and recorded_form(m.record) else m
                        for n, m in models.items()}
        # Placed once, before the app launches: on ZeroGPU, `spaces` moves what is on "cuda" then to each lent GPU.
        self.placed = models if device == "cpu" else {n: copy.deepcopy(m).to(device) for n, m in models.items()}

    def __getitem__(self, name):
        if not isinstance(name, str) or name not in self.models:
            raise gr.Error(f"unknown model {shown(name, 60)}: choose one of {', '.join(map(repr, self.models))}")
        return (self.placed if gpu.in_gpu_call() else self.models)[name]

    def writer(self, name):
        """The model `name` in its writing form (see __init__)."""
        self[name]
        return self.writers[name]

    def names(self) -> list[str]:
        return list(self.models)

    def about(self, name) -> str:
        """What model `name` is, in a sentence and its size, for the line under the model menu: the sentence the app
        gives it (`about`), else its cell's (cells.CELLS), or what a mixture is."""
        m = self[name]
        size = f"{m.num_params() / 1e6:.1f} million weights" if m.num_params() >= 1e5 else f"{m.num_params():,} weights"
        if not isinstance(m, CharRNN):
            return (f"**{name}**: {len(m.members)} networks' predictions averaged, with weights fitted on text they "
                    f"never trained on. {size} in all.")
        return f"**{name}**: {self.sentences.get(name) or CELLS[m.config.cell].about} {size}."

    def choices(self) -> list[tuple[str, str]]:
        """(label, name) pairs for a dropdown: the best model marked as such."""
        return [(f"{n} · best" if n == self.best else n, n) for n in self.models]

    def publish(self, fn: Callable, api_name: str) -> None:
        """Make `fn` the public endpoint /api_name. gr.api types an endpoint by its function's hints: here its
        `model` argument is one of the loaded names, so that view_api() lists them as the choices they are."""
        if inspect.isgeneratorfunction(fn):  # gradio streams what a generator function yields
            def endpoint(*args, **kwargs):
                yield from fn(*args, **kwargs)
        else:
            def endpoint(*args, **kwargs):
                return fn(*args, **kwargs)
        functools.update_wrapper(endpoint, fn)
        hints = typing.get_type_hints(fn)
        if "model" in hints:
            hints["model"] = Literal[tuple(self.models)]
        endpoint.__annotations__ = hints
        gr.api(endpoint, api_name=api_name, **API_EVENT)


def as_number(name: str, value, lo: float, hi: float, integer: bool = False, above_lo: bool = False):
    """`value` as an int or float within [lo, hi] (or (lo, hi]), else a gr.Error that states the range."""
    lo, hi = (int(b) if float(b).is_integer() else b for b in (lo, hi))  # 2147483647, not 2.14748e+09
    allowed = (f"{name} must be {'an integer' if integer else 'a number'} "
               + (f"greater than {lo} and at most {hi}" if above_lo else f"from {lo} to {hi}"))
    # A JSON integer may be too large for a float (math.isfinite would overflow): an int is compared as it is.
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (isinstance(value, int) or math.isfinite(value))
    if not ok or value < lo or value > hi or (above_lo and value == lo) or (integer and value != int(value)):
        raise gr.Error(f"{allowed}; got {shown(value)}")
    return int(value) if integer else float(value)


def shown(value, width: int = 40) -> str:
    """`value` as a request error quotes it: its repr cut to `width` characters (an integer of thousands of digits
    has no repr, and is not echoed whole)."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"an integer of about {int(value.bit_length() * 0.30103):,} digits"
    return f"{value!r:.{width}}"


def as_text(name: str, value, max_chars: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise gr.Error(f"{name} must be text; got {type(value).__name__}")
    if len(value) > max_chars:
        raise gr.Error(f"{name} is {len(value):,} characters long; at most {max_chars:,} are allowed")
    return value


def dropped_note(dropped: list[str], n: int) -> str:
    listed = ", ".join(repr(c) for c in dropped[:10]) + (", …" if len(dropped) > 10 else "")
    return f"{n} character(s) the model has never seen were left out: {listed}"


class StopFlags:
    """Stop buttons that end a stream gracefully: the stream checks its visitor's flag between batches and
    ends with what it has written. (Cancelling the event instead leaves Gradio's "Error" on the output.)"""

    def __init__(self):
        self._flags: dict[str | None, threading.Event] = {}  # by the visitor's session; gone when the stream ends

    @contextmanager
    def running(self, request: gr.Request | None):
        key, flag = getattr(request, "session_hash", None), threading.Event()
        self._flags[key] = flag
        try:
            yield flag
        finally:
            if self._flags.get(key) is flag:
                del self._flags[key]

    def stop(self, request: gr.Request | None) -> None:
        flag = self._flags.get(getattr(request, "session_hash", None))
        if flag is not None:
            flag.set()


def run_buttons(triggers: list, run: gr.Button, stop: gr.Button, work: dict, flags: StopFlags) -> None:
    """Wire a run/stop pair: each trigger (an event method, e.g. `run.click`) disables `run`, enables `stop`,
    does `work` (the keyword arguments of one event, whose function watches `flags`), then restores the
    buttons; `stop` raises the visitor's flag. So Stop is active only while something runs."""
    def busy():
        return gr.Button(interactive=False), gr.Button(interactive=True)

    def idle():
        return gr.Button(interactive=True), gr.Button(interactive=False)

    def stopped(request: gr.Request):
        flags.stop(request)
        return idle()

    buttons = dict(outputs=[run, stop], queue=False, api_visibility="private", show_progress="hidden")
    for trigger in triggers:
        trigger(busy, **buttons).then(**work).then(idle, **buttons)
    stop.click(stopped, **buttons)


T = TypeVar("T")


def paced(steps: Iterable, snapshot: Callable[[], T], every: float = STREAM_EVERY_S) -> Iterator[T]:
    """Run through `steps`, yielding snapshot() after the first, then at most once every `every` seconds, and
    after the last: a stream the browser can follow without one message per character."""
    last, pending = None, False
    for _ in steps:
        now = time.perf_counter()
        pending = last is not None and now - last < every
        if not pending:
            last = now
            yield snapshot()
    if pending:
        yield snapshot()


def request_deadline() -> float:
    """The deadline of a request that starts now (see charrnn.deadline)."""
    return clock.monotonic() + TIME_LIMIT_S


@contextmanager
def within_time_limit():
    """A request that ran out of time becomes an error that says so and what to do."""
    try:
        yield
    except DeadlineExceeded as e:
        raise gr.Error(f"{e}: a request may take {TIME_LIMIT_S:g} s at most here; ask for less") from None
