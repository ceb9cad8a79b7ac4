"""Continuing training: --resume (the same run, on its own corpus) and --init-from (a new run from a trained
model, on new text), through train.py's real command line."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import charrnn
import train as train_cli
from charrnn.checkpoint import load_training_state

from .helpers import TINY_TEXT

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--preset", "paper", "--hidden-size", "8", "--batch-size", "4", "--seq-len", "16"]


def _train_py(*args, timeout=120) -> subprocess.CompletedProcess:
    """python train.py ARGS, as a user types it."""
    return subprocess.run([sys.executable, "train.py", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _interrupted_run(tmp_path, monkeypatch, epochs: int, at_step: int):
    """A tiny run on a corpus file stopped by Ctrl-C before its `at_step`-th step: (corpus, checkpoint dir)."""
    tmp_path.mkdir(exist_ok=True)
    data = tmp_path / "tiny.txt"
    data.write_text(TINY_TEXT, encoding="utf-8")
    out = tmp_path / "ck"
    real_step, calls = torch.optim.AdamW.step, []

    def step(self, *a, **k):  # the at_step-th optimizer step raises KeyboardInterrupt, as Ctrl-C would
        calls.append(1)
        if len(calls) == at_step:
            raise KeyboardInterrupt
        return real_step(self, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(torch.optim.AdamW, "step", step)
        train_cli.main(SMALL + ["--data", str(data), "--out", str(out), "--epochs", str(epochs)])
    assert charrnn.load(out).record["status"] == "interrupted"
    return data, out


def test_resume_without_epochs_finishes_the_run_and_with_epochs_extends_it(tmp_path, monkeypatch):
    """The documented way to continue after Ctrl-C, `python train.py --resume --out DIR`: no --epochs, and no
    --data either (the run's own corpus is the one it recorded)."""
    data, out = _interrupted_run(tmp_path, monkeypatch, epochs=2, at_step=5)
    r = _train_py("--resume", "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    record = charrnn.load(out).record
    assert record["status"] == "complete" and record["training"]["epochs"] == 2
    assert [h["epoch"] for h in record["history"]] == [1.0, 2.0]
    r = _train_py("--resume", "--out", out, "--data", data, "--epochs", "3")
    assert r.returncode == 0, r.stderr[-3000:]
    record = charrnn.load(out).record
    assert record["status"] == "complete" and record["training"]["epochs"] == 3
    assert [h["epoch"] for h in record["history"]] == [1.0, 2.0, 3.0]
    assert record["training"]["resumed_with"] == [f"python train.py --resume --out {out}",
                                                  f"python train.py --resume --out {out} --data {data} --epochs 3"]


def _trained(tmp_path, name="ck", text=TINY_TEXT, extra=()):
    """A tiny run of one epoch on its own corpus file: (corpus, checkpoint dir)."""
    data = tmp_path / f"{name}.txt"
    data.write_text(text, encoding="utf-8")
    out = tmp_path / name
    train_cli.main(SMALL + ["--data", str(data), "--out", str(out), "--epochs", "1", *extra])
    return data, out


def _files(out: Path) -> dict:
    return {p.name: p.read_bytes() for p in out.iterdir()}


def test_resume_on_another_corpus_is_refused_naming_both_and_the_checkpoint_is_kept(tmp_path):
    data, out = _trained(tmp_path)
    other = tmp_path / "other.txt"
    other.write_text(TINY_TEXT.replace("valet", "lave"), encoding="utf-8")  # the same characters, other text
    before = _files(out)
    with pytest.raises(SystemExit) as e:
        train_cli.main(["--resume", "--out", str(out), "--data", str(other), "--epochs", "2"])
    message = str(e.value.code)
    recorded = charrnn.load(out).record["training"]["corpus_sha256"]
    assert f"{other} (sha256 {charrnn.data.sha256_of(other)[:12]}...)" in message
    assert f"{data} (sha256 {recorded[:12]}...)" in message
    assert f"--init-from {out} --data {other} --out NEW_DIR" in message
    assert _files(out) == before
    train_cli.main(["--resume", "--out", str(out), "--data", str(data), "--epochs", "2"])  # its own corpus: fine
    assert charrnn.load(out).record["training"]["corpus_sha256"] == recorded


def test_resume_with_fewer_epochs_than_trained_is_refused_saying_where_the_run_stands(tmp_path, monkeypatch):
    _, out = _trained(tmp_path, extra=["--epochs", "2"])  # the last --epochs counts: 2
    before = _files(out)
    with pytest.raises(SystemExit, match=r"stands at epoch 2 of 2; --epochs 1 .* pass --epochs 3 or more"):
        train_cli.main(["--resume", "--out", str(out), "--epochs", "1"])
    with pytest.raises(SystemExit, match=r"is complete at epoch 2 of 2: to train it further, pass --epochs 3 or more"):
        train_cli.main(["--resume", "--out", str(out)])
    assert _files(out) == before
    _, out = _interrupted_run(tmp_path / "b", monkeypatch, epochs=3, at_step=40)  # 35 steps an epoch
    with pytest.raises(SystemExit, match=r"stands at epoch 1.11 of 3; .* pass --epochs 2 or more, or leave --epochs "
                                         "out to finish the run"):
        train_cli.main(["--resume", "--out", str(out), "--epochs", "1"])
    assert load_training_state(out)["step"] == 39


def test_mix_refuses_a_corpus_other_than_its_members(tmp_path):
    from charrnn.cli import main as cli

    data, a = _trained(tmp_path, "a", extra=["--val-chars", "200"])
    b = tmp_path / "b"
    train_cli.main(SMALL + ["--data", str(data), "--out", str(b), "--epochs", "1", "--val-chars", "200", "--seed", "2"])
    other = tmp_path / "other.txt"
    other.write_text(TINY_TEXT.replace("valet", "lave"), encoding="utf-8")
    with pytest.raises(SystemExit) as e:
        cli(["mix", str(a), str(b), "--out", str(tmp_path / "m"), "--data", str(other)])
    assert f"{other} (sha256 {charrnn.data.sha256_of(other)[:12]}...) is not the corpus {a} was trained on" in str(e.value)
    assert not (tmp_path / "m").exists()
    cli(["mix", str(a), str(b), "--out", str(tmp_path / "m"), "--data", str(data)])
    assert charrnn.load(tmp_path / "m").record["final"]["test"]["nats"] > 0
