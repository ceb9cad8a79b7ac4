"""The ZeroGPU glue: on a ZeroGPU Space the heavy analyses borrow its GPU; everywhere else nothing changes.

A ZeroGPU Space has the `spaces` package and SPACES_ZERO_GPU=true. There `spaces.GPU(fn, duration=...)` runs each
call of fn in a worker process forked for it, on a GPU lent for `duration` seconds out of the visitor's daily quota:
the arguments and the result cross by pickling, a generator's items stream back, and closing the stream in the
app's process stops the worker at its next item. Elsewhere `spaces.GPU` returns fn unchanged, and without the
package `heavy` does too. Writing stays on the CPU: one character at a time, a GPU would wait on every step.
"""
from __future__ import annotations

import functools
import inspect
import math
import os
from contextlib import closing, contextmanager
from contextvars import ContextVar
from typing import Callable

import gradio as gr

# A call asks for START_S plus STEP_S per character the model reads, at most MAX_S. On one CPU thread of the
# development machine the slowest shipped model (GRU, large) scored 5,000 characters in 4.5 s, 5.1 s with its cache
# (~1 ms a character); STEP_S is twice that, so that a GPU slower per step than the CPU still finishes. START_S is a
# margin for the worker's start (fork, weights to the GPU), not a measurement: none was possible without a Space.
START_S = 10
STEP_S = 0.002
# ZeroGPU's own default; a call asking more than the visitor has left is refused (and then runs on the CPU).
MAX_S = 60
# Where the running call reads its models: "gpu" inside a lent call, "cpu" where the GPU must not be asked.
_where: ContextVar[str | None] = ContextVar("where", default=None)
_END = object()  # the end of a stream, for next()


def spaces_module():
    """The `spaces` package if it is installed (a Space has it), else None."""
    try:
        import spaces
    except ImportError:
        return None
    return spaces


def on_zero_gpu(environ=os.environ) -> bool:
    """Whether this process runs on ZeroGPU, by the `spaces` package's own test (its config.py)."""
    return environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def device(environ=os.environ) -> str:
    """Where the analyses' models go: "cuda" on ZeroGPU with `spaces` installed (its CUDA is emulated outside the
    lent calls, real in them), else "cpu" (the CPU build of torch cannot even place a model on "cuda")."""
    return "cuda" if on_zero_gpu(environ) and spaces_module() is not None else "cpu"


def in_gpu_call() -> bool:
    """Whether the running code is a lent call's (see Catalog.__getitem__)."""
    return _where.get() == "gpu"


@contextmanager
def cpu_only():
    """Heavy calls within run on the CPU: at start, no visitor's quota pays for the page's first render."""
    token = _where.set("cpu")
    try:
        yield
    finally:
        _where.reset(token)


def _within(where: str, fn: Callable, *args, **kwargs):
    """fn(*args, **kwargs) with _where set to `where`."""
    token = _where.set(where)
    try:
        return fn(*args, **kwargs)
    finally:
        _where.reset(token)


def characters(text) -> int:
    """The characters a request asks a model to read (0 for what is not text: it is refused at once)."""
    return len(text) if isinstance(text, str) else 0


def seconds(characters: int) -> int:
    """The GPU seconds a call asks for to read `characters` characters (see START_S)."""
    return min(MAX_S, math.ceil(START_S + STEP_S * max(characters, 0)))


def heavy(fn: Callable, characters: Callable[..., int]) -> Callable:
    """fn, run through spaces.GPU (when installed) with a duration of seconds(characters(*args, **kwargs)). When the
    GPU is refused (quota spent, no GPU in the queue's time), the call runs on the CPU and a warning says so.

    fn's arguments and results must pickle (a bound method's `self` is not sent: the worker is a fork). A generator
    fn streams; the page's Stop must close its stream, as a flag in this process never reaches the worker."""
    spaces = spaces_module()
    if spaces is None:
        return fn

    def duration(*args, **kwargs) -> int:
        return seconds(characters(*args, **kwargs))

    if inspect.isgeneratorfunction(fn):
        def lent(*args, **kwargs):
            # Each step in the lent call's context: Gradio may run each step of a stream in another thread.
            with closing(fn(*args, **kwargs)) as stream:
                while (item := _within("gpu", next, stream, _END)) is not _END:
                    yield item

        @functools.wraps(fn)
        def call(*args, **kwargs):
            if _where.get() == "cpu":
                yield from fn(*args, **kwargs)
                return
            stream = on_gpu(*args, **kwargs)
            try:
                first = next(stream, _END)  # spaces asks for the GPU here: a refusal comes before any item
            except gr.Error as e:
                if not refused(e):
                    raise
                warn(e)
                yield from fn(*args, **kwargs)
                return
            if first is not _END:
                yield first
                yield from stream  # closing this stream closes the worker's: spaces then stops the worker
    else:
        def lent(*args, **kwargs):
            return _within("gpu", fn, *args, **kwargs)

        @functools.wraps(fn)
        def call(*args, **kwargs):
            if _where.get() == "cpu":
                return fn(*args, **kwargs)
            try:
                return on_gpu(*args, **kwargs)
            except gr.Error as e:
                if not refused(e):
                    raise
                warn(e)
                return fn(*args, **kwargs)

    lent.__name__ = lent.__qualname__ = fn.__name__  # spaces and its logs know the task by its name
    on_gpu = spaces.GPU(lent, duration=duration)
    return call


def refused(error: gr.Error) -> bool:
    """Whether `error` is the `spaces` package refusing or losing the GPU (quota, queue, illegal duration, worker
    lost): its errors' titles start with "ZeroGPU", the app's own never do."""
    return str(getattr(error, "title", "")).startswith("ZeroGPU")


def warn(error: gr.Error) -> None:
    gr.Warning(f"The GPU could not serve this request ({error.message}): it ran on the CPU instead, more slowly.")
