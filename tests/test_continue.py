"""Continuing training: --resume (the same run, on its own corpus) and --init-from (a new run from a trained
model, on new text), through train.py's real command line."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import charrnn
import train as train_cli
from charrnn.cells import CELLS
from charrnn.checkpoint import load_training_state
from charrnn.model import with_vocab

from .helpers import TINY_TEXT, tiny_model

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--preset", "paper", "--hidden-size", "8", "--batch-size", "4", "--seq-len", "16"]


def _train_py(*args, timeout=120) -> subprocess.CompletedProcess:
    """python train.py ARGS, as a user types it (on one thread: tiny models gain nothing from more, see conftest)."""
    return subprocess.run([sys.executable, "train.py", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})


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
    """The documented way to continue after Ctrl-C, `python train.py --resume --out DIR`: without --epochs it
    finishes the run as it was set; --data may be left out too (the run's own corpus is the one it recorded)."""
    data, out = _interrupted_run(tmp_path, monkeypatch, epochs=2, at_step=5)
    r = _train_py("--resume", "--out", out, "--data", data)
    assert r.returncode == 0, r.stderr[-3000:]
    record = charrnn.load(out).record
    assert record["status"] == "complete" and record["training"]["epochs"] == 2
    assert [h["epoch"] for h in record["history"]] == [1.0, 2.0]
    r = _train_py("--resume", "--out", out, "--epochs", "3")
    assert r.returncode == 0, r.stderr[-3000:]
    record = charrnn.load(out).record
    assert record["status"] == "complete" and record["training"]["epochs"] == 3
    assert [h["epoch"] for h in record["history"]] == [1.0, 2.0, 3.0]
    assert record["training"]["corpus"] == str(data)
    assert record["training"]["resumed_with"] == [f"python train.py --resume --out {out} --data {data}",
                                                  f"python train.py --resume --out {out} --epochs 3"]


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


# Every cell, with one-hot input (the paper's) and with an embedding, and regularised where offered: each keeps
# its input weights in its own layout, which with_vocab must grow.
GROWN = [(cell, kw) for cell in CELLS for kw in (
    {}, {"embed_size": 6}, *([{"weight_drop": 0.2, "num_layers": 2}] if CELLS[cell].regularised else []))]


@pytest.mark.parametrize("cell, kw", GROWN, ids=[f"{c}-{'-'.join(kw) or 'onehot'}" for c, kw in GROWN])
def test_a_grown_vocabulary_leaves_the_old_characters_logits_unchanged(cell, kw):
    """with_vocab adds characters: on text of the old ones, the new model's logits of the old characters are the
    old model's (so its prediction among them too), the added ones' are 0; the added characters can be read."""
    from dataclasses import replace

    old = tiny_model(cell, **kw).eval()
    vocab = "".join(sorted(set(old.config.vocab) | set("0129kw")))
    torch.manual_seed(1)
    new = with_vocab(old, replace(old.config, vocab=vocab)).eval()
    place = [vocab.index(c) for c in old.config.vocab]
    added = [i for i, c in enumerate(vocab) if c not in old.config.vocab]
    idx = torch.tensor([old.encode(TINY_TEXT[:200])])
    with torch.no_grad():
        before, _ = old(idx)
        after, _ = new(torch.tensor([new.encode(TINY_TEXT[:200])]))
    torch.testing.assert_close(after[..., place], before, atol=1e-5, rtol=1e-5)
    assert after[..., added].abs().max() == 0
    # Renormalised over the old characters, the new model's distribution is the old one.
    torch.testing.assert_close(after[..., place].softmax(-1), before.softmax(-1), atol=1e-6, rtol=1e-5)
    with torch.no_grad():
        logits, _ = new(torch.tensor([new.encode("Il a 12 kw.")]))
    assert logits.shape == (1, 11, len(vocab)) and torch.isfinite(logits).all()
    assert new.num_params() > old.num_params()


def test_init_from_starts_a_new_run_on_new_text_and_records_where_it_started(tmp_path):
    data, origin = _trained(tmp_path, "origin")
    origin_files = _files(origin)
    new_text = tmp_path / "new.txt"  # digits, k and w: none in the origin's vocabulary
    new_text.write_text(TINY_TEXT.replace("valet", "valet de 1672, kiwi") * 2, encoding="utf-8")
    out = tmp_path / "new"
    r = _train_py("--init-from", origin, "--data", new_text, "--out", out, "--epochs", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "starting from" in r.stdout and "7 character(s) added to its vocabulary, '1267dkw'" in r.stdout
    before = charrnn.load(origin)
    model = charrnn.load(out)
    record = model.record
    assert record["status"] == "complete" and [h["epoch"] for h in record["history"]] == [1.0]
    assert record["training"]["init_from"] == {
        "checkpoint": str(origin), "weights_sha256": before.record["weights_sha256"],
        "corpus": str(data), "corpus_sha256": charrnn.data.sha256_of(data), "added_chars": "1267dkw"}
    assert record["training"]["corpus_sha256"] == charrnn.data.sha256_of(new_text)
    assert model.config.vocab == "".join(sorted(set(before.config.vocab) | set("1267dkw")))
    # Its own run: the origin's settings (here its batch size and sequence length), a fresh schedule from step 0.
    assert (record["training"]["batch_size"], record["training"]["seq_len"]) == (4, 16)
    assert record["history"][0]["step"] == len(charrnn.data.Batches(
        torch.tensor(model.encode(charrnn.data.split(new_text.read_text(encoding="utf-8"))[0])), 4, 16))
    assert _files(origin) == origin_files  # the checkpoint it started from is untouched
    assert (f"Started from the trained model `{origin}` (weights sha256 `{before.record['weights_sha256']}`"
            in (out / "README.md").read_text(encoding="utf-8"))
    assert '7 character(s) added to its vocabulary: "1267dkw".' in (out / "README.md").read_text(encoding="utf-8")
    # Interrupted or not, a resume keeps the record of where the run started.
    train_cli.main(["--resume", "--out", str(out), "--epochs", "2"])
    assert charrnn.load(out).record["training"]["init_from"] == record["training"]["init_from"]


@pytest.mark.parametrize("flags, message", [
    (["--resume"], "--resume continues the run saved in --out; --init-from starts a new run"),
    (["--hidden-size", "16"], "--init-from keeps the checkpoint's architecture: leave out --hidden-size"),
    (["--preset", "lstm"], "leave --preset out"),
])
def test_init_from_refuses_flags_that_contradict_it(tmp_path, flags, message):
    data, origin = _trained(tmp_path, "origin")
    origin_files = _files(origin)
    with pytest.raises(SystemExit, match=message):
        train_cli.main(["--init-from", str(origin), "--data", str(data), "--out", str(origin), *flags])
    with pytest.raises(SystemExit, match="--init-from needs --out"):
        train_cli.main(["--init-from", str(origin), "--data", str(data)])
    with pytest.raises(SystemExit, match="is the checkpoint --init-from starts from"):
        train_cli.main(["--init-from", str(origin), "--data", str(data), "--out", str(origin), "--overwrite"])
    assert _files(origin) == origin_files


def test_init_from_a_hub_id_records_the_id(tmp_path, monkeypatch):
    import charrnn.hub

    data, origin = _trained(tmp_path, "origin")
    monkeypatch.setattr(charrnn.hub, "download_checkpoint", lambda repo_id, revision=None: origin)  # the Hub's copy
    monkeypatch.chdir(tmp_path)  # where no directory someone/tiny-model exists
    train_cli.main(["--init-from", "someone/tiny-model", "--data", str(data), "--out", str(tmp_path / "new"),
                    "--epochs", "1"])
    init_from = charrnn.load(tmp_path / "new").record["training"]["init_from"]
    assert init_from["checkpoint"] == "someone/tiny-model" and init_from["added_chars"] == ""
    assert init_from["weights_sha256"] == charrnn.load(origin).record["weights_sha256"]


@pytest.mark.parametrize("command", [["cache", "--theta", "1", "--lam", "0.2", "--window", "50"], ["writing"]])
def test_a_reading_is_recorded_only_on_the_corpus_the_model_was_trained_on(tmp_path, command):
    from charrnn.cli import main as cli

    data, out = _trained(tmp_path)
    other = tmp_path / "other.txt"
    other.write_text(TINY_TEXT.replace("valet", "lave"), encoding="utf-8")
    before = _files(out)
    with pytest.raises(SystemExit, match=f"{other} .* is not the corpus {out} was trained on, {data} .*: pass --data "
                                         "with that corpus to record, or leave --record out"):
        cli([*command, "--checkpoint", str(out), "--data", str(other), "--record"])
    assert _files(out) == before
    cli([*command, "--checkpoint", str(out), "--data", str(other)])  # read, not recorded: any text
    cli([*command, "--checkpoint", str(out), "--data", str(data), "--record"])
    assert _files(out) != before
