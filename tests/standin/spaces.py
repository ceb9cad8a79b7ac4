"""A stand-in for the `spaces` package as it behaves on a ZeroGPU Space, where that matters to the app.

`GPU(fn, duration=...)` runs each call of fn in a child process forked for it: the arguments and the result cross
by pickling, a generator's items stream back one by one, closing the stream in the parent stops the child at its
next item (as spaces' stop_event does), and an exception comes back as a gr.Error (a non-gr.Error one as spaces'
"ZeroGPU worker error"). It records what was decorated, the seconds each call asked for, and the children it forked;
setting `refusal` to a message makes the next calls fail as spaces fails when the visitor's GPU quota is spent.
No GPU is involved: the app cannot tell, except by SPACES_ZERO_GPU (see ui/gpu.py).
"""
from __future__ import annotations

import functools
import inspect
import multiprocessing
import pickle
import threading

import gradio as gr

decorated: dict[str, object] = {}  # name -> the duration it was decorated with
calls: list[tuple[str, float]] = []  # (name, seconds asked) for each call
children: list = []  # the processes forked, most recent last
refusal: str | None = None
zero_gpu = True  # False: as spaces off ZeroGPU (SPACES_ZERO_GPU unset), which returns the function unchanged
_fork = multiprocessing.get_context("fork")


def GPU(task=None, *, duration=None, size=None):
    if task is None:
        return functools.partial(GPU, duration=duration, size=size)
    decorated[task.__name__] = duration
    if not zero_gpu:
        return task

    def start(args, kwargs):
        seconds = duration(*args, **kwargs) if callable(duration) else (duration or 60)
        calls.append((task.__name__, seconds))
        if refusal is not None:
            raise gr.Error(refusal, title="ZeroGPU quota exceeded", print_exception=False)
        sent = pickle.dumps((args, kwargs))  # what spaces puts on its queue to the worker
        results, stop = _fork.SimpleQueue(), _fork.Event()
        child = _fork.Process(target=_work, args=(task, sent, results, stop), daemon=True)
        child.start()
        children.append(child)
        return results, stop

    if inspect.isgeneratorfunction(task):
        @functools.wraps(task)
        def streamed(*args, **kwargs):
            results, stop = start(args, kwargs)
            while True:
                kind, value = results.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise value
                try:
                    yield value
                except GeneratorExit:  # as spaces: the child stops at its next item, what it sent till then is read
                    stop.set()
                    threading.Thread(target=_drain, args=(results,), daemon=True).start()
                    raise
        return streamed

    @functools.wraps(task)
    def called(*args, **kwargs):
        results, _ = start(args, kwargs)
        kind, value = results.get()
        _drain(results)
        children[-1].join()
        if kind == "error":
            raise value
        return value
    return called


def _drain(results) -> None:
    while results.get()[0] != "end":
        pass


def _work(task, sent, results, stop) -> None:
    """The child: run the task on the unpickled arguments, send back each item (or the result), then "end"."""
    try:
        args, kwargs = pickle.loads(sent)
        out = task(*args, **kwargs)
        if inspect.isgenerator(out):
            for item in out:
                if stop.is_set():
                    out.close()
                    break
                results.put(("item", item))
        else:
            results.put(("result", out))
    except gr.Error as e:
        results.put(("error", e))
    except Exception as e:
        results.put(("error", gr.Error(type(e).__name__, title="ZeroGPU worker error", print_exception=False)))
    results.put(("end", None))
