import copy
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import charrnn
import train as train_cli
from charrnn.checkpoint import load_training_state
from charrnn.data import Batches, split
from charrnn.training import Run, TrainConfig, TrainingDiverged, lr_at, train

from .helpers import TINY_TEXT, tiny_model

ROOT = Path(__file__).resolve().parents[1]
CFG = dict(batch_size=4, seq_len=16, epochs=2, lr=1e-2, warmup_steps=2, sample_length=20)


def _run(tmp_path, **kw):
    train_text, test_text = split(TINY_TEXT)
    return Run(train_text, test_text, TrainConfig(**(CFG | kw)), tmp_path / "ck", {"command": "test"}, progress=False)


def test_training_records_history_and_final_losses(tmp_path):
    model = tiny_model("lstm", embed_size=8, hidden_size=32)
    run = _run(tmp_path)
    record = train(model, run)
    steps_per_epoch = (len(run.train_text) - 1) // 4 // 16
    assert [h["step"] for h in record["history"]] == [steps_per_epoch, 2 * steps_per_epoch]
    assert [h["epoch"] for h in record["history"]] == [1.0, 2.0]
    assert record["history"][-1]["chars"] == 2 * steps_per_epoch * 4 * 16
    assert record["history"][1]["test_loss"] < record["history"][0]["test_loss"] < math.log(model.config.vocab_size)
    assert all(len(h["sample"]) == 20 for h in record["history"])
    # The recorded final test loss is what evaluating the saved checkpoint gives.
    loaded = charrnn.load(run.out)
    assert loaded.record["status"] == "complete"
    assert charrnn.evaluate(loaded, run.test_text)["nats"] == pytest.approx(record["final"]["test"]["nats"], abs=1e-6)
    assert record["final"]["test"]["bpc"] == pytest.approx(record["final"]["test"]["nats"] / math.log(2))


def test_recorded_losses_are_those_of_the_stored_float16_file(tmp_path):
    """The model trains in float32 and is stored in float16: every loss recorded, at the last evaluation and as
    final, is what the file gives once reloaded: the same computation, so to the last bit here, where the float32
    weights' losses differ from the file's by ~1e-5."""
    model = tiny_model("lstm", embed_size=8, hidden_size=32)
    run = _run(tmp_path, epochs=1, val_chars=300, save_dtype="float16")
    record = train(model, run)
    loaded = charrnn.load(run.out)
    assert loaded.record["dtype"] == "float16"
    train_text, val_text = run.train_text[:-300], run.train_text[-300:]
    for split, text in (("train", train_text), ("val", val_text), ("test", run.test_text)):
        assert charrnn.evaluate(loaded, text)["nats"] == pytest.approx(record["final"][split]["nats"], abs=1e-7), split
    last = record["history"][-1]
    for key, text in (("train_loss", train_text[: len(run.test_text)]), ("val_loss", val_text),
                      ("test_loss", run.test_text)):
        assert charrnn.evaluate(loaded, text)["nats"] == pytest.approx(last[key], abs=1e-7), key


def test_sgd_with_a_constant_rate_and_no_clipping_on_the_first_max_chars_is_the_hand_written_loop(tmp_path):
    """optimizer sgd, schedule constant, grad_clip 0, max_chars: the saved weights are those of truncated BPTT
    written out by hand over the first max_chars characters, each step p <- p - lr * (grad + weight_decay * p)
    at the same rate from the first step, with the gradient as it is."""
    lr, wd, max_chars = 0.5, 0.01, 1_200
    model = tiny_model("paper", hidden_size=24)
    with torch.no_grad():
        model.head.weight.mul_(10)  # confident from the start: gradients beyond the default clipping norm
    ref = copy.deepcopy(model)
    run = _run(tmp_path, epochs=1, optimizer="sgd", schedule="constant", lr=lr, weight_decay=wd, grad_clip=0.0,
               warmup_steps=5, max_chars=max_chars)
    record = train(model, run)
    assert record["training"]["train_chars"] == max_chars

    batches = Batches(torch.tensor(ref.encode(run.train_text[:max_chars])), batch_size=4, seq_len=16)
    state, norms = None, []
    for x, y in (batches[i] for i in range(len(batches))):
        logits, state = ref(x, state)
        grads = torch.autograd.grad(F.cross_entropy(logits.flatten(0, 1), y.flatten()), list(ref.parameters()))
        norms.append(torch.cat([g.flatten() for g in grads]).norm().item())
        with torch.no_grad():
            for p, g in zip(ref.parameters(), grads):
                p -= lr * (g + wd * p)
        state = state.detach()
    assert record["history"][-1]["step"] == len(batches) == 18
    assert max(norms) > 1.0  # clipping at the default norm 1.0 would have changed some steps
    saved = charrnn.load(run.out)
    for (name, p), q in zip(saved.named_parameters(), ref.parameters()):
        assert torch.allclose(p, q, atol=1e-5), name


@pytest.mark.parametrize("cell", ["paper", "lstm"])
def test_one_sgd_step_with_gradient_clipping_moves_the_weights_by_lr_times_the_clip(tmp_path, cell):
    """Clipping bounds the global L2 norm of the gradient: one plain-SGD step of a run moves the weights, all of them
    taken as one vector, by lr x clip when the gradient is larger than the clip (here 100 times), to float32
    rounding. A clip looser or tighter than the configured one moves them farther or less far."""
    lr, clip = 10.0, 1e-3
    model = tiny_model(cell, hidden_size=16, **({"embed_size": 8} if cell == "lstm" else {}))
    before = copy.deepcopy(model)
    train_text, test_text = TINY_TEXT[:40], TINY_TEXT[40:80]  # 2 streams x 16 steps: one batch, one step
    batches = Batches(torch.tensor(before.encode(train_text)), batch_size=2, seq_len=16)
    assert len(batches) == 1
    x, y = batches[0]
    logits, _ = before(x)
    grads = torch.autograd.grad(F.cross_entropy(logits.flatten(0, 1), y.flatten()), list(before.parameters()))
    assert torch.cat([g.flatten() for g in grads]).norm() > 100 * clip
    cfg = TrainConfig(batch_size=2, seq_len=16, epochs=1, optimizer="sgd", schedule="constant", lr=lr, grad_clip=clip,
                      sample_length=5)
    record = train(model, Run(train_text, test_text, cfg, tmp_path / "ck", {"command": "test"}, progress=False))
    assert record["history"][-1]["step"] == 1
    saved = charrnn.load(tmp_path / "ck")
    moved = torch.cat([(p.double() - q.double()).flatten() for p, q in zip(saved.parameters(), before.parameters())])
    assert moved.norm().item() == pytest.approx(lr * clip, rel=1e-3)


def test_the_constant_schedule_is_the_peak_rate_from_the_first_step_to_the_last():
    cfg = TrainConfig(lr=0.3, schedule="constant", warmup_steps=10)
    assert [lr_at(step, 100, cfg) for step in (0, 5, 10, 50, 99, 100)] == [0.3] * 6


def _interrupt_at_step(monkeypatch, n):
    """Make the n-th optimizer step raise KeyboardInterrupt, as Ctrl-C would."""
    real_step, calls = torch.optim.AdamW.step, []

    def step(self, *a, **k):
        calls.append(1)
        if len(calls) == n:
            monkeypatch.undo()
            raise KeyboardInterrupt
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)


@pytest.mark.parametrize("cell", ["paper", "lstm", "transformer"])
def test_interrupted_then_resumed_run_equals_the_uninterrupted_one(tmp_path, monkeypatch, cell):
    kw = dict(hidden_size=24, embed_size=0 if cell == "paper" else 8, dropout=0.1,
              **({"heads": 2, "window": 8} if cell == "transformer" else {}))
    straight = train(tiny_model(cell, **kw), _run(tmp_path / "a"))
    _interrupt_at_step(monkeypatch, 5)  # mid-epoch: the carried hidden state must be restored too
    record = train(tiny_model(cell, **kw), _run(tmp_path / "b"))
    assert record["status"] == "interrupted" and load_training_state(tmp_path / "b" / "ck")["step"] == 4
    meta = charrnn.checkpoint.read_record(tmp_path / "b" / "ck")
    resumed = train(tiny_model(cell, seed=99, **kw), _run(tmp_path / "b"),
                    resume=load_training_state(tmp_path / "b" / "ck"), record=meta)
    assert [h["step"] for h in resumed["history"]] == [h["step"] for h in straight["history"]]
    # Same data order, weights, optimizer state, RNG and carried state: the same run.
    for a, b in zip(resumed["history"], straight["history"]):
        assert a["test_loss"] == pytest.approx(b["test_loss"], abs=1e-5)
    assert resumed["final"]["test"]["nats"] == pytest.approx(straight["final"]["test"]["nats"], abs=1e-5)


def test_a_run_saved_at_an_epoch_s_end_carries_no_state_and_resumes_to_the_same_run(tmp_path, monkeypatch):
    """The periodic save after an epoch leaves the carried state out (the next step starts every stream afresh):
    a transformer's key/value cache would make the file of a run committed as it goes ~170 MB for its preset."""
    import copy

    kw = dict(hidden_size=16, embed_size=16, heads=2, window=8, dropout=0.1)
    straight = train(tiny_model("transformer", **kw), _run(tmp_path / "a"))
    captured, real = {}, charrnn.checkpoint.save

    def spy(model, path, record, state=None, dtype=torch.float32):
        if record["status"] == "training":  # the save after the first epoch, as a run still training leaves it
            captured.update(state=copy.deepcopy(state), record=copy.deepcopy(record))
        return real(model, path, record, state, dtype)

    monkeypatch.setattr(charrnn.checkpoint, "save", spy)
    train(tiny_model("transformer", **kw), _run(tmp_path / "b"))
    monkeypatch.undo()
    assert captured["state"]["carried"] is None and captured["state"]["step"] == straight["history"][0]["step"]
    assert load_training_state(tmp_path / "b" / "ck")["carried"] is not None  # the complete run's keeps it
    resumed = train(tiny_model("transformer", seed=99, **kw), _run(tmp_path / "c"), resume=captured["state"],
                    record=captured["record"])
    assert resumed["final"]["test"]["nats"] == pytest.approx(straight["final"]["test"]["nats"], abs=1e-5)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    model = tiny_model("paper")
    run = _run(tmp_path, epochs=3)
    train(model, _run(tmp_path, epochs=1))
    before = (run.out / "model.safetensors").read_bytes()
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        train(model, run)
    assert (run.out / "model.safetensors").read_bytes() == before
    assert charrnn.load(run.out).record["status"] == "complete"


def test_validation_slice_is_held_out_and_recorded(tmp_path):
    model = tiny_model("paper")
    run = _run(tmp_path, epochs=1, val_chars=300)
    record = train(model, run)
    assert record["training"]["train_chars"] == len(run.train_text) - 300
    val_text = run.train_text[-300:]
    assert record["history"][-1]["val_loss"] == pytest.approx(charrnn.evaluate(model, val_text)["nats"], abs=1e-6)
    assert record["final"]["val"]["chars"] == 299
    card = (run.out / "README.md").read_text(encoding="utf-8")  # the model card shows it beside train and test
    assert f"| validation | {record['final']['val']['nats']:.4f} |" in card
    assert "| train nats/char | train bits/char | validation nats/char | validation bits/char | test nats/char" in card
    assert f"| {record['history'][-1]['val_loss']:.4f} | {record['history'][-1]['val_loss'] / math.log(2):.4f} |" in card
    with pytest.raises(ValueError, match="val_chars"):
        train(tiny_model("paper"), _run(tmp_path, val_chars=len(run.train_text)))


def test_cosine_schedule_warms_up_then_decays_to_a_tenth():
    cfg = TrainConfig(lr=1.0, warmup_steps=10)
    assert lr_at(0, 100, cfg) == pytest.approx(0.1)
    assert lr_at(9, 100, cfg) == pytest.approx(1.0)
    assert lr_at(100, 100, cfg) == pytest.approx(0.1)
    assert lr_at(55, 100, cfg) == pytest.approx(0.55)


def test_train_cli_end_to_end(tmp_path, capsys):
    data = tmp_path / "tiny.txt"
    data.write_text(TINY_TEXT, encoding="utf-8")
    out = tmp_path / "ck"
    train_cli.main(["--preset", "lstm", "--data", str(data), "--out", str(out), "--hidden-size", "16",
                    "--num-layers", "1", "--batch-size", "4", "--seq-len", "16", "--epochs", "1", "--val-chars", "200"])
    model = charrnn.load(out)
    assert model.record["training"]["val_chars"] == 200 and "val" in model.record["final"]
    assert model.config.cell == "lstm" and model.config.hidden_size == 16 and model.config.embed_size == 64
    assert model.config.vocab == "".join(sorted(set(TINY_TEXT)))
    assert model.record["training"]["command"].startswith("python train.py --preset lstm")
    assert model.record["dtype"] == "float16"  # the preset's storage type
    assert f"/ validation {model.record['final']['val']['nats']:.4f} /" in capsys.readouterr().out  # the "done:" line
    # python -m charrnn score re-evaluates the checkpoint on the test split: the recorded figure again.
    from charrnn.cli import main as cli
    from charrnn.scoring import char_losses, costly_lines

    cli(["score", "--checkpoint", str(out), "--data", str(data), "--lines", "2"])
    recorded = model.record["final"]["test"]["nats"]
    printed = capsys.readouterr().out
    assert f"test {recorded:.4f} nats/char" in printed
    test_text = charrnn.data.split(TINY_TEXT)[1]
    top = costly_lines(test_text, char_losses(model, test_text), 2)
    assert "the 2 costliest lines" in printed and all(repr(e["line"][:50]) in printed for e in top)
    train_cli.main(["--data", str(data), "--out", str(out), "--resume", "--epochs", "2"])
    resumed = charrnn.load(out).record
    assert [h["epoch"] for h in resumed["history"]] == [1.0, 2.0]
    assert resumed["training"]["command"].startswith("python train.py --preset lstm")  # what started it
    assert resumed["training"]["resumed_with"] == [f"python train.py --data {data} --out {out} --resume --epochs 2"]


def test_train_cli_never_replaces_a_checkpoint_or_other_files_unasked(tmp_path):
    data = tmp_path / "tiny.txt"
    data.write_text(TINY_TEXT, encoding="utf-8")
    out = tmp_path / "ck"
    args = ["--data", str(data), "--out", str(out), "--hidden-size", "8", "--batch-size", "4", "--seq-len", "16",
            "--epochs", "1"]
    train_cli.main(args)
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(SystemExit, match="already holds a trained model .* --resume .* --overwrite"):
        train_cli.main(args + ["--seed", "7"])
    assert (out / "model.safetensors").read_bytes() == before
    train_cli.main(args + ["--seed", "7", "--overwrite"])
    assert (out / "model.safetensors").read_bytes() != before
    assert charrnn.load(out).record["training"]["seed"] == 7
    out.rename(tmp_path / ".ck.old")  # as a save killed between its two renames leaves it: still the checkpoint
    with pytest.raises(SystemExit, match="already holds a trained model"):
        train_cli.main(args)
    assert charrnn.load(out).record["training"]["seed"] == 7

    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep me", encoding="utf-8")
    for extra in ([], ["--overwrite"]):  # --overwrite replaces checkpoints only
        with pytest.raises(SystemExit, match="not a charrnn checkpoint"):
            train_cli.main(args[:2] + ["--out", str(other)] + args[4:] + extra)
    assert (other / "todo.txt").read_text(encoding="utf-8") == "keep me"
    with pytest.raises(SystemExit, match="is a file"):
        train_cli.main(args[:2] + ["--out", str(data)] + args[4:])
    (tmp_path / "empty").mkdir()
    train_cli.main(args[:2] + ["--out", str(tmp_path / "empty")] + args[4:])  # an empty directory is fine
    assert charrnn.load(tmp_path / "empty").record["status"] == "complete"


def test_a_preset_validation_slice_too_long_for_the_corpus_says_which_flag_to_change(tmp_path):
    data = tmp_path / "tiny.txt"
    data.write_text(TINY_TEXT, encoding="utf-8")  # 2,304 training characters; the gru preset holds 50,000 out
    with pytest.raises(SystemExit, match="pass a smaller --val-chars, or 0"):
        train_cli.main(["--preset", "gru", "--data", str(data), "--out", str(tmp_path / "ck"), "--hidden-size", "8"])
    assert not (tmp_path / "ck").exists()


def test_the_same_seed_gives_the_same_run(tmp_path):
    data = tmp_path / "tiny.txt"
    data.write_text(TINY_TEXT, encoding="utf-8")
    args = ["--preset", "lstm", "--data", str(data), "--hidden-size", "16", "--num-layers", "1", "--batch-size", "4",
            "--seq-len", "16", "--epochs", "1", "--save-dtype", "float32", "--val-chars", "0"]
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        train_cli.main(args + ["--out", str(tmp_path / name), "--seed", seed])
    a, b, c = (load_file(tmp_path / n / "model.safetensors") for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)  # initial weights, data order and dropout all seeded
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("content, message", [
    (b"", "empty"), ("Molière".encode("latin-1"), "not UTF-8"), (b"abc" * 10, "fewer than one batch"),
])
def test_train_cli_bad_data_files(tmp_path, content, message):
    data = tmp_path / "bad.txt"
    data.write_bytes(content)
    with pytest.raises(SystemExit, match=message):
        train_cli.main(["--data", str(data), "--out", str(tmp_path / "ck")])
    assert not (tmp_path / "ck").exists()


def test_train_help_explains_every_flag():
    """Every setting of ModelConfig (but the vocabulary, which comes from the data) and TrainConfig is a flag,
    with its comment as help."""
    from dataclasses import fields

    from charrnn.model import ModelConfig

    out = subprocess.run([sys.executable, "train.py", "--help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    actions = {a.option_strings[-1]: a for a in train_cli.parser()._actions if a.option_strings}
    names = [f.name for cls in (ModelConfig, TrainConfig) for f in fields(cls) if f.name != "vocab"]
    assert {"--" + n.replace("_", "-") for n in names} <= set(actions) and len(actions) >= 25
    for flag, action in actions.items():
        assert flag in out and action.help, flag
    assert actions["--seq-len"].help == "truncated-BPTT length: gradients reach this many characters back (default: 128)"
    assert "--optimizer {adamw,sgd}" in out and "--cell {paper,rnn,gru,lstm,ln-lstm,mingru,transformer}" in out


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_real_ctrl_c_stops_cleanly_with_a_resumable_checkpoint(tmp_path, signum):
    """SIGINT to a running train.py, as a terminal's Ctrl-C sends it, or SIGTERM, as `kill` or the end of a session
    sends it to a run in the background: exit 0, checkpoint saved, resumable."""
    import signal
    import time

    data = tmp_path / "tiny.txt"
    data.write_text(TINY_TEXT * 4, encoding="utf-8")
    out = tmp_path / "ck"
    # A shell without job control starts its background commands with SIGINT ignored, and the child inherits
    # that: a suite run as `cmd &` saw train.py train on for 60 s after the SIGINT (the trace PYTHONFAULTHANDLER
    # printed showed it in train_step). A terminal's foreground process has SIGINT's default, as here.
    proc = subprocess.Popen([sys.executable, "train.py", "--preset", "paper", "--data", str(data), "--out", str(out),
                             "--hidden-size", "16", "--batch-size", "2", "--seq-len", "8", "--epochs", "1000",
                             "--eval-every", "20"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONFAULTHANDLER": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 60
        while not (out / "config.json").exists() and time.time() < deadline:  # the first checkpoint
            time.sleep(0.1)
        assert (out / "config.json").exists()
        proc.send_signal(getattr(signal, signum))
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            output, _ = proc.communicate(timeout=30)
            pytest.fail(f"train.py still ran 60 s after {signum}; where it was:\n{output[-6000:]}")
    finally:
        proc.kill()
    assert proc.returncode == 0, output
    assert "interrupted at step" in output
    meta = charrnn.load(out).record
    assert meta["status"] == "interrupted"
    assert load_training_state(out)["step"] >= 20


def test_a_run_killed_between_the_two_renames_of_a_save_resumes(tmp_path):
    data = tmp_path / "tiny.txt"
    data.write_text(TINY_TEXT, encoding="utf-8")
    out = tmp_path / "ck"
    args = ["--data", str(data), "--out", str(out), "--hidden-size", "8", "--batch-size", "4", "--seq-len", "16"]
    train_cli.main(args + ["--epochs", "1"])
    out.rename(tmp_path / ".ck.old")  # as a kill after the old checkpoint was moved aside, before the new one came in
    train_cli.main(args + ["--resume", "--epochs", "2"])
    assert [h["epoch"] for h in charrnn.load(out).record["history"]] == [1.0, 2.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck", "tiny.txt"]


def test_resume_refuses_a_training_state_copied_from_another_run(tmp_path):
    data = tmp_path / "tiny.txt"
    data.write_text(TINY_TEXT, encoding="utf-8")
    args = ["--data", str(data), "--hidden-size", "8", "--batch-size", "4", "--seq-len", "16", "--epochs", "1"]
    for name, seed in (("a", "1"), ("b", "2")):
        train_cli.main(args + ["--out", str(tmp_path / name), "--seed", seed])
    (tmp_path / "b" / "training_state.pt").replace(tmp_path / "a" / "training_state.pt")
    before = (tmp_path / "a" / "model.safetensors").read_bytes()
    with pytest.raises(SystemExit, match="training_state.pt was not saved with the weights beside it"):
        train_cli.main(args[:-1] + ["2", "--out", str(tmp_path / "a"), "--resume"])
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize("change, message", [
    (lambda r: r["model"].update(hidden_size="8"), "describes no valid model: hidden_size must be of type int"),
    (lambda r: r["training"].pop("seq_len"), "has no training setting 'seq_len' to resume with"),
])
def test_resume_of_a_hand_edited_record_says_what_is_wrong(tmp_path, change, message):
    import json

    data = tmp_path / "tiny.txt"
    data.write_text(TINY_TEXT, encoding="utf-8")
    out = tmp_path / "ck"
    args = ["--data", str(data), "--out", str(out), "--hidden-size", "8", "--batch-size", "4", "--seq-len", "16"]
    train_cli.main(args + ["--epochs", "1"])
    record = json.loads((out / "config.json").read_text(encoding="utf-8"))
    change(record)
    (out / "config.json").write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(SystemExit, match=message):
        train_cli.main(args + ["--resume", "--epochs", "2"])


def test_a_time_budget_spreads_the_cosine_over_the_seconds_when_they_end_first():
    cfg = TrainConfig(lr=1.0, warmup_steps=10, time_budget=100.0)
    assert lr_at(10, 1000, cfg, elapsed=0.0) == pytest.approx(1.0)
    assert lr_at(10, 1000, cfg, elapsed=50.0) == pytest.approx(0.55)  # half the time: half the decay
    assert lr_at(10, 1000, cfg, elapsed=100.0) == pytest.approx(0.1)
    assert lr_at(1000, 1000, cfg, elapsed=10.0) == pytest.approx(0.1)  # the steps ended first


def test_the_quick_preset_stops_at_its_time_budget_and_says_so(tmp_path, capsys):
    data = tmp_path / "tiny.txt"
    data.write_text(TINY_TEXT, encoding="utf-8")
    out = tmp_path / "ck"
    # 1,000 epochs would take minutes: the 2-second budget ends the run, its learning rate decayed to a tenth.
    train_cli.main(["--preset", "quick", "--data", str(data), "--out", str(out), "--hidden-size", "16",
                    "--batch-size", "4", "--seq-len", "16", "--epochs", "1000", "--time-budget", "2"])
    record = charrnn.load(out).record
    final, last = record["final"], record["history"][-1]
    assert final["stopped_by"] == "time_budget" and record["training"]["time_budget"] == 2.0
    steps_per_epoch = (len(split(TINY_TEXT)[0]) - 1) // 4 // 16
    assert 0 < final["steps"] == last["step"] < 1000 * steps_per_epoch
    assert final["train_time_s"] >= 2.0 and last["time_s"] >= 2.0
    assert last["lr"] == pytest.approx(0.1 * record["training"]["lr"])
    assert record["status"] == "complete"
    shown = capsys.readouterr()
    assert f"{final['steps']:,} steps (the time budget ended it)" in shown.out
    # The progress bar counts down the budget, not toward the 1,000 epochs the run would never reach.
    assert "left=" in shown.err and f"/{1000 * steps_per_epoch}" not in shown.err


def test_a_run_without_a_time_budget_is_ended_by_its_epochs(tmp_path):
    record = train(tiny_model("gru", embed_size=8, hidden_size=16), _run(tmp_path, epochs=1))
    assert record["final"]["stopped_by"] == "epochs" and record["final"]["steps"] == record["history"][-1]["step"]
