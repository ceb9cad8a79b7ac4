"""The README is the Space's page and a newcomer's first screen: short, its figures those of the shipped
records, its API snippet one that runs as it is against the app."""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

import charrnn
from charrnn.record import readings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
LOCAL_APP = "http://127.0.0.1:7860/"  # the address `python app.py` serves on, which the snippet names
# The results table's models, in the order of the story, by the name the README gives them.
RESULTS = {"seed": "Course notebook's 2010 RNN", "paper-rnn": "Paper RNN, trained properly", "gru": "GRU",
           "lstm": "LSTM", "gru-large": "GRU, large", "mixture": "Mixture of the three gated models"}


def results_row(name: str) -> str:
    """The README's row for checkpoint `name`, from its record: the test bits/char of its weights alone, and of the
    reading that did best on the text its settings were tuned on (never the test split)."""
    record = charrnn.checkpoint.read_record(ROOT / "checkpoints" / name)
    taken = readings(record)
    best = min(taken, key=lambda key: min(taken[key]["tuning"].values()))
    return (f"| {RESULTS[name]} (`{name}`) | {record['num_params']:,} | {record['final']['test']['bpc']:.3f} | "
            f"{taken[best]['test']['bpc']:.3f} · {taken[best]['label']} |")


def test_the_readme_is_a_front_page():
    assert len(README.splitlines()) <= 200
    assert not re.search(r"(?i)\bissue \d+|#\d+\b", README), "tracker numbers mean nothing to a visitor"


@pytest.mark.parametrize("name", list(RESULTS))
def test_the_results_table_holds_the_records_figures(name):
    assert results_row(name) in README.splitlines()


@pytest.mark.parametrize("name", list(RESULTS))
def test_the_readme_gives_the_command_that_made_each_shipped_model(name):
    record = charrnn.checkpoint.read_record(ROOT / "checkpoints" / name)
    assert record["training"]["command"] in README.splitlines()


def snippet() -> str:
    """The README's one Python block."""
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert len(blocks) == 1
    return blocks[0]


@pytest.fixture(scope="module")
def shipped_app():
    """The app as `python app.py` serves it (the shipped models), on a free port; yields its URL."""
    import app
    from tests.conftest import launch_on_free_port

    demo = app.build_app(app.load_models([]))
    port = launch_on_free_port(demo)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_the_api_snippet_runs_as_it_is(shipped_app):
    """The snippet, with only the app's address changed to this test's port: the LSTM writes 200 characters and
    the text is scored in bits/char, and both are printed."""
    code = snippet()
    assert LOCAL_APP in code
    out, names = io.StringIO(), {}
    with contextlib.redirect_stdout(out):
        exec(compile(code.replace(LOCAL_APP, shipped_app), "README.md", "exec"), names)
    assert isinstance(names["text"], str) and len(names["text"]) == 200
    assert "bits/char" in names["summary"]
    assert out.getvalue().endswith(f"{names['text']}\n{names['summary']}\n")
