"""The app on a ZeroGPU Space (ui/gpu.py), with tests/standin/spaces.py in place of the `spaces` package: it forks a
child for each decorated call as spaces does, so that what would not pickle, or a Stop that never reaches it, shows."""
from __future__ import annotations

import contextvars
import importlib.util
import itertools
import os
import sys
import threading
from pathlib import Path

import gradio as gr
import pytest
import torch
from gradio_client import Client

import app
from ui import gpu
from ui.inside import Inside
from ui.score import Score
from ui.validate import Catalog
from tests.conftest import launch_on_free_port

LSTM = "LSTM"
STANDIN = Path(__file__).parent / "standin" / "spaces.py"
TEXT = "DORINE.\n\nEh bien monsieur que faut il?\n\nVALÈRE.\n\nJe vous dis que la chose est faite.\n\n"


@pytest.fixture
def spaces(monkeypatch):
    """A fresh stand-in `spaces` (nothing recorded yet), importable as the package is on a Space."""
    spec = importlib.util.spec_from_file_location("spaces", STANDIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "spaces", module)
    return module


@pytest.fixture
def no_spaces(monkeypatch):
    monkeypatch.setitem(sys.modules, "spaces", None)  # `import spaces` raises ImportError, as where it is not installed


@pytest.mark.parametrize("value", ["true", "1", "True", "t"])
def test_models_go_on_cuda_only_on_zero_gpu_with_spaces_installed(value, spaces, monkeypatch):
    assert gpu.device({"SPACES_ZERO_GPU": value}) == "cuda"
    assert gpu.device({}) == gpu.device({"SPACES_ZERO_GPU": "false"}) == gpu.device({"SPACES_ZERO_GPU": "0"}) == "cpu"
    monkeypatch.setitem(sys.modules, "spaces", None)
    assert gpu.device({"SPACES_ZERO_GPU": value}) == "cpu"  # without the package no call is lent a GPU


def test_placed_models_serve_the_lent_calls_and_the_writers_stay_on_the_cpu(app_models, spaces):
    """Placed on "meta" (the CPU build of torch has no "cuda"): the catalogue reads the placed copy inside a lent call
    only, and writes on the CPU."""
    catalog = Catalog(app_models, device="meta")
    assert catalog[LSTM] is app_models[LSTM] and catalog[LSTM].device == torch.device("cpu")
    where = gpu.heavy(lambda model: str(catalog[model].device), lambda model: 1)
    assert where(LSTM) == "meta"  # in the forked child, as on a Space
    assert catalog.writer(LSTM).device == torch.device("cpu")
    assert Catalog(app_models).placed is app_models  # on the CPU nothing is copied


def test_the_heavy_actions_are_decorated_and_ask_seconds_for_the_characters_they_read(app_models, spaces):
    scorer, inside = Score(Catalog(app_models)), Inside(Catalog(app_models))
    assert set(spaces.decorated) == {"score", "page", "_units", "_leans"}
    short, long = TEXT, TEXT * 20
    scorer.score(LSTM, short)
    scorer.score(LSTM, long)
    scorer.page(LSTM, long, True)  # with the cache, side by side: the text is read twice
    inside.units(LSTM, long, 0)
    inside.leans_on(LSTM, long, 10)
    assert spaces.calls == [("score", gpu.seconds(len(short))), ("score", gpu.seconds(len(long))),
                            ("page", gpu.seconds(2 * len(long))), ("_units", gpu.seconds(len(long))),
                            ("_leans", gpu.seconds(len(long)))]
    assert gpu.seconds(len(short)) < gpu.seconds(len(long)) < gpu.seconds(2 * len(long))
    assert gpu.seconds(10**9) == gpu.MAX_S and gpu.seconds(0) == gpu.START_S
    with pytest.raises(gr.Error, match="at least two characters"):  # the visitor's error crosses back, not as a refusal
        scorer.score(LSTM, None)
    assert spaces.calls[-1] == ("score", gpu.START_S)


def test_a_forked_call_gives_what_the_cpu_gives(app_models, spaces):
    scorer = Score(Catalog(app_models))
    forked = scorer.score(LSTM, TEXT, True)
    assert [c.exitcode for c in spaces.children] == [0] and spaces.children[0].pid != os.getpid()
    with gpu.cpu_only():
        assert forked == scorer.score(LSTM, TEXT, True)
    assert len(spaces.children) == 1


def test_a_refused_gpu_runs_the_call_on_the_cpu_and_says_so(app_models, spaces):
    scorer = Score(Catalog(app_models))
    expected = scorer.score(LSTM, TEXT)
    spaces.refusal = "You have exceeded your free ZeroGPU quota (30s requested vs. 12s left)."
    with pytest.warns(UserWarning, match=r"GPU could not serve this request \(You have exceeded.*ran on the CPU"):
        assert scorer.score(LSTM, TEXT) == expected


def test_stop_ends_a_forked_stream(spaces):
    """A page stops as Write's does: its Stop flag is in this process, so it closes the stream; the child, which
    never sees the flag, stops at its next item and exits."""
    def forever(step):  # a stream that only stopping ends
        for i in itertools.count():
            yield i * step

    stream, stop, got = gpu.heavy(forever, lambda step: 1), threading.Event(), []
    for item in stream(2):
        got.append(item)
        if len(got) == 3:
            stop.set()  # the visitor presses Stop
        if stop.is_set():
            break
    assert got == [0, 2, 4]
    child = spaces.children[-1]
    child.join(10)
    assert not child.is_alive() and child.exitcode == 0


def test_a_stream_reads_the_placed_models_at_every_step_whichever_thread_runs_it(spaces):
    """Off ZeroGPU, with spaces installed, the stream runs in this process, and Gradio may run each of its steps in
    another thread: each step still reads the placed models, and nothing else does."""
    spaces.zero_gpu = False
    steps = iter(gpu.heavy(lambda n: (yield from (gpu.in_gpu_call() for _ in range(n))), lambda n: 1)(4))
    seen = []
    for _ in range(4):
        worker = threading.Thread(target=lambda: seen.append(contextvars.copy_context().run(next, steps)))
        worker.start()
        worker.join()
    assert seen == [True] * 4 and not gpu.in_gpu_call()


def test_a_refused_stream_runs_on_the_cpu(spaces):
    spaces.refusal = "No GPU was available after 60s"
    stream = gpu.heavy(lambda: (yield from range(3)), lambda: 1)
    with pytest.warns(UserWarning, match="No GPU was available"):
        assert list(stream()) == [0, 1, 2]
    assert not spaces.children


def test_the_app_serves_with_spaces_installed(app_models, served_app, spaces):
    """The app as a Space runs it: the heavy actions fork; its API is the same as without `spaces` (served_app)."""
    demo = app.build_app(app_models)
    assert set(spaces.decorated) >= {"score", "page", "_units", "_leans"}
    port = launch_on_free_port(demo)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        assert client.view_api(return_format="dict", print_info=False) == \
            Client(served_app, verbose=False).view_api(return_format="dict", print_info=False)
        with gpu.cpu_only():
            scored = [list(r) if isinstance(r, tuple) else r for r in Score(Catalog(app_models)).score(LSTM, TEXT)]
            units = list(Inside(Catalog(app_models)).units(LSTM, TEXT, 0))
        assert list(client.predict(LSTM, TEXT, False, api_name="/score")) == scored
        assert spaces.calls[-1] == ("score", gpu.seconds(len(TEXT)))
        assert list(client.predict(LSTM, TEXT, 0, api_name="/units")) == units
        assert spaces.calls[-1] == ("_units", gpu.seconds(len(TEXT)))
        assert [c.exitcode for c in spaces.children] == [0, 0]
    finally:
        demo.close()
