"""Benchmarks (not tests: timings on shared machines are noisy, so they print figures, they assert nothing).

    python -m charrnn.bench          training speed of the presets against the course notebook's loop
    python -m charrnn.bench app      the app's latency, throughput, start time and memory (bench_app.py)

Training speed is characters per second of real training steps (forward, backward, clipping, AdamW)
on random character ids (the speed does not depend on the text). Achieved GFLOP/s counts 6 FLOPs per
weight per character (2 forward, 4 backward; embedding lookups are not multiplications) and is set
against the matrix-multiply rate measured in the same run.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from .model import CharRNN, ModelConfig, detach_state
from .presets import PRESETS
from .training import TrainConfig, make_optimizer

VOCAB = "".join(chr(0x41 + i) for i in range(85))  # the corpus's vocabulary size; the characters don't matter


def matmul_gflops(n: int = 2048, reps: int = 10) -> float:
    """Best-of-`reps` fp32 GEMM rate of an n x n x n product: what the matrix units can do here."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def train_speed(model_cfg: dict, train_cfg: TrainConfig, steps: int, warmup: int = 3) -> tuple[float, int]:
    """Characters/s of `steps` training steps of a preset, after `warmup` untimed ones."""
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab=VOCAB, **model_cfg)).train()
    opt = make_optimizer(model, train_cfg)
    B, T = train_cfg.batch_size, train_cfg.seq_len
    idx = torch.randint(0, len(VOCAB), (steps + warmup, B, T + 1))
    state = None
    for i in range(steps + warmup):
        if i == warmup:
            t0 = time.perf_counter()
        logits, state = model(idx[i, :, :-1], state)
        state = detach_state(state)
        loss = F.cross_entropy(logits.flatten(0, 1), idx[i, :, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip or float("inf"))
        opt.step()
    return steps * B * T / (time.perf_counter() - t0), model.num_weights()


class NotebookRNN(nn.Module):
    """The course notebook's model as such notebooks write it: i2h on [one-hot; state], sigmoid, h2o."""

    def __init__(self, vocab_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.i2h = nn.Linear(vocab_size + hidden_size, hidden_size)
        self.h2o = nn.Linear(hidden_size, vocab_size, bias=False)

    def forward(self, x, s):
        s = torch.sigmoid(self.i2h(torch.cat([x, s], dim=1)))
        return self.h2o(s), s


def notebook_speed(hidden_size: int = 128, steps: int = 3000) -> float:
    """Characters/s of the notebook's loop: one character, one forward, one backward, one SGD step."""
    torch.manual_seed(0)
    V = len(VOCAB)
    model = NotebookRNN(V, hidden_size)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ids = torch.randint(0, V, (steps + 1,))
    s = torch.zeros(1, hidden_size)
    t0 = time.perf_counter()
    for i in range(steps):
        x = F.one_hot(ids[i : i + 1], V).float()
        logits, s = model(x, s.detach())
        loss = F.cross_entropy(logits, ids[i + 1 : i + 2])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - t0)


def bench_training(steps: int) -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")
    peak = matmul_gflops()
    print(f"matrix multiply (2048^3 fp32): {peak:,.1f} GFLOP/s")
    base = notebook_speed()
    print(f"course notebook loop, paper RNN hidden 128, 1 char/step: {base:,.0f} chars/s\n")
    # The paper's model at the notebook's size, then every shipped preset but the notebook's own recipe.
    rows = [("paper @128", dict(PRESETS["paper"]["model"], hidden_size=128), PRESETS["paper"]["train"])]
    rows += [(f"{name} (shipped)", p["model"], p["train"]) for name, p in PRESETS.items() if name != "seed"]
    print("| model | hidden x layers | batch x seq | weights | chars/s | x notebook | GFLOP/s | % of matmul |")
    print("|---|---|---|---|---|---|---|---|")
    for name, mcfg, tcfg in rows:
        cfg = TrainConfig(**tcfg)
        cps, weights = train_speed(mcfg, cfg, steps)
        gflops = 6 * weights * cps / 1e9
        print(f"| {name} | {mcfg['hidden_size']} x {mcfg.get('num_layers', 1)} | {cfg.batch_size} x {cfg.seq_len} "
              f"| {weights:,} | {cps:,.0f} | {cps / base:.1f} | {gflops:,.1f} | {100 * gflops / peak:.0f} % |")


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["app"]:
        from .bench_app import main as bench_app

        return bench_app(argv[1:])
    p = argparse.ArgumentParser(description="Training-speed benchmark (`app` as first argument: the app's).")
    p.add_argument("--steps", type=int, default=20, help="timed training steps per model")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: PyTorch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    bench_training(args.steps)


if __name__ == "__main__":
    main()
