"""`python -m charrnn bench ddp`: one process with 2 threads against 2 DDP processes with 1 thread each.

Both train the same global batch of a preset (the 2 processes B/2 streams each) with the trainer's own
step (forward, backward, clipping, AdamW) on random character ids, as `bench train` does. The share of a
DDP step spent exchanging (the losses' all-gather, the gradients' all-reduce, the stop flag: what
`charrnn.training.train` does each step) is measured by running the same steps in the same two processes
without DDP, each alone with nothing to send: 1 - alone / DDP.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from ..distributed import join, leave
from ..model import CharRNN, ModelConfig
from ..presets import PRESETS
from ..training import TrainConfig, make_optimizer, train_step
from .train import VOCAB, train_speed


def _seconds_per_step(step, steps: int, warmup: int) -> float:
    """Mean seconds of `steps` calls of step() after `warmup` untimed ones, the ranks starting together."""
    for _ in range(warmup):
        step()
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps


def _rank(rank: int, model_cfg: dict, train_cfg: dict, steps: int, warmup: int, tmp: str) -> None:
    """One of the 2 processes: its step's time with DDP and alone, written to tmp by rank 0."""
    torch.set_num_threads(1)
    world = join(rank, 2, f"file://{tmp}/rendezvous", torch.device("cpu"))
    try:
        cfg = TrainConfig(**train_cfg)
        torch.manual_seed(rank)
        shared, alone = (CharRNN(ModelConfig(vocab=VOCAB, **model_cfg)).train() for _ in range(2))
        net, opts = DistributedDataParallel(shared), [make_optimizer(m, cfg) for m in (shared, alone)]
        idx = torch.randint(0, len(VOCAB), (cfg.batch_size, cfg.seq_len + 1))
        x, y, carried = idx[:, :-1], idx[:, 1:], [None, None]

        def ddp_step():
            carried[0] = train_step(net, opts[0], x, y, carried[0], cfg.grad_clip, world)[1]
            world.stop_requested()

        def alone_step():
            carried[1] = train_step(alone, opts[1], x, y, carried[1], cfg.grad_clip)[1]

        times = {"ddp_s": _seconds_per_step(ddp_step, steps, warmup), "alone_s": _seconds_per_step(alone_step, steps, warmup)}
        if world.main:
            Path(tmp, "result.json").write_text(json.dumps(times))
    finally:
        leave(world)


def two_processes(model_cfg: dict, cfg: TrainConfig, steps: int, warmup: int = 3) -> dict:
    """Seconds per step of 2 processes x 1 thread sharing cfg.batch_size streams, with DDP and alone."""
    half = {**asdict(cfg), "batch_size": cfg.batch_size // 2}
    # Forked from a server that imported DDP's dependencies once, the processes start in a fraction of a second.
    multiprocessing.set_forkserver_preload(["torch._dynamo", __name__])
    with tempfile.TemporaryDirectory() as tmp:
        mp.start_processes(_rank, args=(model_cfg, half, steps, warmup, tmp), nprocs=2, start_method="forkserver")
        return json.loads(Path(tmp, "result.json").read_text())


def bench_ddp(preset: str, steps: int, rounds: int) -> None:
    """Print the README's table: chars/s of both ways, alternated `rounds` times (the machine may be shared)."""
    p = PRESETS[preset]
    cfg = TrainConfig(**p["train"])
    if cfg.batch_size % 2:
        raise ValueError(f"preset {preset} trains {cfg.batch_size} streams, which 2 processes cannot share evenly")
    chars = cfg.batch_size * cfg.seq_len
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores, preset {preset} ({p['about']}), global batch "
          f"{cfg.batch_size} x {cfg.seq_len}, {steps} timed steps; load average {os.getloadavg()[0]:.1f} at the start")
    print("| round | 1 process x 2 threads | 2 processes x 1 thread (DDP, gloo) | ratio | DDP step | same step alone "
          "| exchange share |")
    print("|---|---|---|---|---|---|---|")
    threads = torch.get_num_threads()
    for r in range(1, rounds + 1):
        torch.set_num_threads(2)
        one = train_speed(p["model"], cfg, steps)[0]
        torch.set_num_threads(threads)
        two = two_processes(p["model"], cfg, steps)
        print(f"| {r} | {one:,.0f} chars/s | {chars / two['ddp_s']:,.0f} chars/s | {chars / two['ddp_s'] / one:.2f} "
              f"| {1000 * two['ddp_s']:,.0f} ms | {1000 * two['alone_s']:,.0f} ms "
              f"| {100 * (1 - two['alone_s'] / two['ddp_s']):.0f} % |")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
