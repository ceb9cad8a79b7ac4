"""Training on several processes (DDP): pairs of gloo processes on the CPU, joined by a file rendezvous, and
torchrun itself; the GPU's resume state where a GPU exists."""
from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

import charrnn
import train as train_cli
from charrnn import checkpoint, distributed
from charrnn.checkpoint import load_training_state, read_record
from charrnn.data import split
from charrnn.training import Run, TrainConfig, TrainingDiverged, train

from .helpers import TINY_TEXT, tiny_model
from .test_training import _interrupt_at_step

ROOT = Path(__file__).resolve().parents[1]
CFG = dict(batch_size=2, seq_len=32, epochs=2, lr=1e-2, warmup_steps=2, sample_length=20)  # 17 steps an epoch
MODEL = dict(hidden_size=16, embed_size=8)  # an LSTM: its carried state is a pair (h, c)
TIMEOUT_S = 60
_launches = itertools.count()


def _run(out: Path, world: distributed.World | None = None, **kw) -> Run:
    train_text, test_text = split(TINY_TEXT)
    return Run(train_text, test_text, TrainConfig(**(CFG | kw)), out, {"command": "test"}, progress=False,
               world=world or distributed.World())


def _rank(rank: int, fn, tmp: Path, rendezvous: Path, args: tuple) -> None:
    torch.set_num_threads(1)
    world = distributed.join(rank, 2, f"file://{rendezvous}", torch.device("cpu"))
    try:
        fn(world, tmp, *args)
    finally:
        distributed.leave(world)


def _launch(tmp: Path, fn, *args) -> None:
    """Run fn(world, tmp, *args) in 2 processes; fail if they take more than TIMEOUT_S."""
    # Children forked from a server that imported this module once start in a fraction of a second (DDP's
    # constructor imports torch._dynamo, seconds more in each process otherwise).
    multiprocessing.set_forkserver_preload(["torch._dynamo", __name__])
    rendezvous = tmp / f"rendezvous-{next(_launches)}"
    ctx = mp.start_processes(_rank, args=(fn, tmp, rendezvous, args), nprocs=2, join=False, start_method="forkserver")
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not ctx.join(timeout=1):
            if time.monotonic() > deadline:
                pytest.fail(f"the 2 processes running {fn.__name__} did not finish in {TIMEOUT_S} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()


def _signal_at_step(n: int) -> None:
    """Send this process SIGINT, as Ctrl-C would, right after its n-th optimizer step."""
    real_step, calls = torch.optim.AdamW.step, []

    def step(self, *a, **k):
        out = real_step(self, *a, **k)
        calls.append(1)
        if len(calls) == n:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    torch.optim.AdamW.step = step


def _params(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _trained(world, tmp, out, dropout=0.0, signal_rank1_at=0, resume=False):
    """Train the tiny LSTM into tmp/out on this rank (resuming it if asked); write what the rank ends with:
    its weights, its returned record, and how many checkpoints it wrote."""
    if signal_rank1_at and world.rank == 1:
        _signal_at_step(signal_rank1_at)
    real_save = checkpoint.save

    def counted_save(*a, **k):
        with open(tmp / f"{out}-saves-{world.rank}", "a") as f:
            f.write("save\n")
        return real_save(*a, **k)

    checkpoint.save = counted_save
    run = _run(tmp / out / "ck", world)
    state, record = world.from_main(lambda: (load_training_state(run.out), read_record(run.out))) if resume else (None, None)
    model = tiny_model("lstm", seed=99 if resume else 0, dropout=dropout, **MODEL)
    record = train(model, run, state, record)
    torch.save(_params(model), tmp / f"{out}-params-{world.rank}.pt")
    (tmp / f"{out}-record-{world.rank}.json").write_text(json.dumps(record))


def _outcome(tmp, out, rank=0) -> tuple[dict, dict]:
    return torch.load(tmp / f"{out}-params-{rank}.pt"), json.loads((tmp / f"{out}-record-{rank}.json").read_text())


def _assert_same_run(params, record, ref_params, ref_record, tol, resumed=False):
    assert [h["step"] for h in record["history"]] == [h["step"] for h in ref_record["history"]]
    assert [h["chars"] for h in record["history"]] == [h["chars"] for h in ref_record["history"]]
    for h, ref in zip(record["history"], ref_record["history"]):
        # The running loss averages the steps since the last evaluation that the process saw.
        for key in ("train_loss", "test_loss") + (() if resumed else ("train_running_loss",)):
            assert h[key] == pytest.approx(ref[key], abs=tol), key
    assert record["final"]["test"]["nats"] == pytest.approx(ref_record["final"]["test"]["nats"], abs=tol)
    for k in ref_params:
        torch.testing.assert_close(params[k], ref_params[k], atol=tol, rtol=0)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> tuple[dict, dict]:
    """The reference: one process training the 2 x 2 streams of two ranks, its weights and its record."""
    model = tiny_model("lstm", **MODEL)
    record = train(model, _run(tmp_path_factory.mktemp("one") / "ck", batch_size=4))
    return _params(model), record


def test_two_processes_train_the_model_one_process_trains_on_all_their_streams(tmp_path, one_process):
    _launch(tmp_path, _trained, "ddp")
    params, record = _outcome(tmp_path, "ddp")
    rank1_params, rank1_record = _outcome(tmp_path, "ddp", rank=1)
    assert all(torch.equal(params[k], rank1_params[k]) for k in params)  # the ranks hold one model
    _assert_same_run(params, record, *one_process, tol=1e-5)
    # Rank 0 alone evaluates and writes: one checkpoint, saved after each evaluation but the last, then complete.
    assert (tmp_path / "ddp-saves-0").read_text().count("save") == 2 and not (tmp_path / "ddp-saves-1").exists()
    assert rank1_record["history"] == [] and "final" not in rank1_record
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["ck"]
    saved = read_record(tmp_path / "ddp" / "ck")
    assert saved["status"] == "complete" and saved["history"] == record["history"]
    assert (saved["training"]["world_size"], saved["training"]["backend"], saved["training"]["batch_size"]) == (2, "gloo", 2)
    state = load_training_state(tmp_path / "ddp" / "ck")
    assert len(state["ranks"]) == 2 and not torch.equal(state["ranks"][0]["rng"], state["ranks"][1]["rng"])
    assert [s.shape for s in state["carried"]] == [(1, 4, 16)] * 2  # every stream's (h, c), rank 0's streams first
    assert "world_size" not in one_process[1]["training"]  # one process records no world


def test_an_interrupted_two_process_run_resumes_to_the_uninterrupted_one(tmp_path):
    dropout = 0.1  # each rank draws its own dropout masks: their generators must be restored
    _launch(tmp_path, _trained, "straight", dropout)
    _launch(tmp_path, _trained, "cut", dropout, 5)  # Ctrl-C reaches rank 1 alone, mid-epoch
    cut = read_record(tmp_path / "cut" / "ck")
    assert cut["status"] == "interrupted" and load_training_state(tmp_path / "cut" / "ck")["step"] == 5
    _launch(tmp_path, _trained, "cut", dropout, 0, True)
    params, record = _outcome(tmp_path, "cut")
    assert all(torch.equal(params[k], v) for k, v in _outcome(tmp_path, "cut", rank=1)[0].items())
    _assert_same_run(params, record, *_outcome(tmp_path, "straight"), tol=1e-6, resumed=True)


def test_a_run_resumes_with_another_number_of_processes(tmp_path, monkeypatch, one_process):
    """One process cut mid-epoch, continued by two; two processes cut, continued by one: the same 4 streams
    in all, the same run as one process training them straight."""
    single = _run(tmp_path / "one" / "ck", batch_size=4)
    _interrupt_at_step(monkeypatch, 4)
    assert train(tiny_model("lstm", **MODEL), single)["status"] == "interrupted"
    _launch(tmp_path, _trained, "one", 0.0, 0, True)
    _assert_same_run(*_outcome(tmp_path, "one"), *one_process, tol=1e-5, resumed=True)

    _launch(tmp_path, _trained, "two", 0.0, 7)
    two = tmp_path / "two" / "ck"
    with pytest.raises(ValueError, match="saved run trains 4 parallel streams in all, this one 3"):
        train(tiny_model("lstm", **MODEL), _run(two, batch_size=3), load_training_state(two), read_record(two))
    model = tiny_model("lstm", seed=99, **MODEL)
    record = train(model, _run(two, batch_size=4), load_training_state(two), read_record(two))
    _assert_same_run(_params(model), record, *one_process, tol=1e-5, resumed=True)


def _diverging(world, tmp):
    """Rank 1 alone sees a NaN loss at its 4th step; both ranks note how their run ended."""
    if world.rank == 1:
        real, calls = torch.nn.functional.cross_entropy, []

        def cross_entropy(*a, **k):
            calls.append(1)
            return real(*a, **k) * (float("nan") if len(calls) == 4 else 1.0)

        torch.nn.functional.cross_entropy = cross_entropy
    try:
        train(tiny_model("lstm", **MODEL), _run(tmp / "ck", world, eval_every=2))
    except TrainingDiverged as e:
        (tmp / f"diverged-{world.rank}").write_text(str(e))


def test_a_nan_on_one_rank_stops_every_rank_and_keeps_the_last_checkpoint(tmp_path):
    _launch(tmp_path, _diverging)  # a rank stopping alone would leave the other waiting: the launch would time out
    for rank in (0, 1):
        assert "the loss became nan at step 3; the last good checkpoint" in (tmp_path / f"diverged-{rank}").read_text()
    assert load_training_state(tmp_path / "ck")["step"] == 2 and read_record(tmp_path / "ck")["status"] == "training"


def test_streams_are_shared_evenly_or_the_error_says_how_many_processes_can():
    assert distributed.streams_per_rank(64, 4) == 16 and distributed.streams_per_rank(6, 1) == 6
    with pytest.raises(ValueError, match="6 parallel streams, which 4 processes cannot share evenly: continue it "
                                         "with 1, 2, 3, 6 process"):
        distributed.streams_per_rank(6, 4)
    world = distributed.World(rank=1, size=2)
    assert world.rows(3) == slice(3, 6) and not world.main


def test_torchrun_trains_ctrl_c_saves_and_one_process_resumes(tmp_path, capsys):
    """The README's command: torchrun with 2 CPU processes; Ctrl-C (SIGINT to torchrun, which passes it on)
    saves a checkpoint every rank agrees on, and `python train.py --resume` continues it alone."""
    data = tmp_path / "tiny.txt"
    data.write_text(TINY_TEXT * 2, encoding="utf-8")
    out = tmp_path / "ck"
    args = ["--preset", "paper", "--data", str(data), "--out", str(out), "--hidden-size", "16", "--batch-size", "2",
            "--seq-len", "8", "--epochs", "1000", "--eval-every", "40", "--sample-length", "10"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                             "train.py", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not (out / "config.json").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert (out / "config.json").exists(), proc.communicate(timeout=5)[0] if proc.poll() is not None else ""
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=TIMEOUT_S)
    finally:
        proc.kill()
    assert "interrupted at step" in output
    record = read_record(out)
    assert record["status"] == "interrupted"
    training = record["training"]
    assert (training["world_size"], training["backend"], training["batch_size"]) == (2, "gloo", 2)
    assert training["device"] == "2 processes x cpu (1 CPU thread each) on 1 machine(s), gloo"
    assert training["command"] == "torchrun --standalone --nproc-per-node 2 train.py " + " ".join(args)
    state = load_training_state(out)
    step = state["step"]
    assert step >= 40 and len(state["ranks"]) == 2 and state["carried"].shape == (1, 4, 16)

    capsys.readouterr()
    train_cli.main(["--data", str(data), "--out", str(out), "--resume", "--epochs", "1"])
    assert "model paper: " in capsys.readouterr().out
    resumed = charrnn.load(out).record
    assert resumed["status"] == "complete" and resumed["training"]["batch_size"] == 4  # one process, 4 streams
    assert "world_size" not in resumed["training"] and resumed["history"][0]["step"] == 40
    assert resumed["history"][-1]["chars"] == resumed["history"][-1]["step"] * 4 * 8


def test_a_record_made_before_the_dtype_setting_resumes(tmp_path):
    """Records written before `dtype` existed lack it; resuming one keeps its default (fp32)."""
    data = tmp_path / "tiny.txt"
    data.write_text(TINY_TEXT, encoding="utf-8")
    out = tmp_path / "ck"
    train_cli.main(["--data", str(data), "--out", str(out), "--hidden-size", "8", "--batch-size", "4",
                    "--seq-len", "16", "--epochs", "1"])
    config = out / "config.json"
    record = json.loads(config.read_text())
    del record["training"]["dtype"]
    config.write_text(json.dumps(record))
    train_cli.main(["--data", str(data), "--out", str(out), "--resume", "--epochs", "2"])
    resumed = charrnn.load(out).record
    assert resumed["training"]["dtype"] == "fp32" and [h["epoch"] for h in resumed["history"]] == [1.0, 2.0]


NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here (torch.cuda.is_available() "
                                                                    "is False): the GPU path has not been run")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=NO_CUDA)])
@pytest.mark.parametrize("cell", ["paper", "lstm"])
def test_bf16_autocast_trains_float32_weights_to_about_the_float32_losses(tmp_path, cell, device):
    """--dtype bf16 (meant for GPUs; autocast works on the CPU too): the steps compute in bfloat16, the
    weights, the carried state and what is saved stay float32, and the losses stay close."""
    kw = dict(embed_size=8 if cell == "lstm" else 0, num_layers=2)
    records, models = {}, {}
    for dtype in ("fp32", "bf16"):
        models[dtype] = tiny_model(cell, **kw).to(device)
        records[dtype] = train(models[dtype], _run(tmp_path / dtype, batch_size=4, seq_len=16, dtype=dtype))
    assert all(p.dtype == torch.float32 for p in models["bf16"].parameters())
    carried = load_training_state(tmp_path / "bf16")["carried"]
    assert all(s.dtype == torch.float32 for s in (carried if isinstance(carried, tuple) else (carried,)))
    fp32, bf16 = (records[d]["final"]["test"]["nats"] for d in ("fp32", "bf16"))
    assert bf16 == pytest.approx(fp32, abs=0.02) and bf16 != fp32  # close, and computed otherwise
    assert records["bf16"]["training"]["dtype"] == "bf16"


@NO_CUDA
def test_an_interrupted_run_on_cuda_resumes_to_the_uninterrupted_one(tmp_path, monkeypatch):
    """On the GPU dropout draws from the CUDA generator: the resume state holds it, and restores it."""
    def model():
        return tiny_model("lstm", seed=99, dropout=0.2, **MODEL).to("cuda")

    straight = train(model(), _run(tmp_path / "a", batch_size=4))
    _interrupt_at_step(monkeypatch, 5)
    assert train(model(), _run(tmp_path / "b", batch_size=4))["status"] == "interrupted"
    state = load_training_state(tmp_path / "b")
    assert state["step"] == 4 and state["cuda_rng"].dtype == torch.uint8
    resumed = train(model(), _run(tmp_path / "b", batch_size=4), state, read_record(tmp_path / "b"))
    for a, b in zip(resumed["history"], straight["history"]):
        assert a["test_loss"] == pytest.approx(b["test_loss"], abs=1e-5)
    assert resumed["final"]["test"]["nats"] == pytest.approx(straight["final"]["test"]["nats"], abs=1e-5)
