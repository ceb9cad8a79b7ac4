"""`python -m charrnn bench train`: training speed of the presets against the course notebook's loop.

Training speed is characters per second of real training steps (forward, backward, clipping, AdamW)
on random character ids (the speed does not depend on the text). Achieved GFLOP/s counts 6 FLOPs per
weight per character (2 forward, 4 backward; embedding lookups are not multiplications) and is set
against the matrix-multiply rate measured in the same run.
"""
from __future__ import annotations

import json
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.benchmark import Timer

from ..model import CharRNN, ModelConfig
from ..presets import PRESETS
from ..training import TrainConfig, make_optimizer, train_step

VOCAB = "".join(chr(0x41 + i) for i in range(85))  # the corpus's vocabulary size; the characters don't matter


def _timer(stmt: str, **names) -> Timer:
    """torch's benchmark timer on the threads this process uses (Timer's own default is one thread)."""
    return Timer(stmt, globals=names, num_threads=torch.get_num_threads())


def matmul_gflops(n: int = 2048) -> float:
    """The fp32 GEMM rate of an n x n x n product (median of repeated runs): what the matrix units can do here."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / _timer("a @ b", a=a, b=b).blocked_autorange(min_run_time=1.0).median / 1e9


def train_speed(model_cfg: dict, train_cfg: TrainConfig, steps: int, warmup: int = 3) -> tuple[float, int]:
    """Characters/s of `steps` training steps of a preset (the trainer's own step), after `warmup` untimed ones."""
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab=VOCAB, **model_cfg)).train()
    opt = make_optimizer(model, train_cfg)
    B, T = train_cfg.batch_size, train_cfg.seq_len
    idx = torch.randint(0, len(VOCAB), (B, T + 1))
    carried = [None]

    def step():
        carried[0] = train_step(model, opt, idx[:, :-1], idx[:, 1:], carried[0], train_cfg.grad_clip)[1]

    timer = _timer("step()", step=step)
    timer.timeit(warmup)
    return B * T / timer.timeit(steps).mean, model.num_weights()


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
    ids = torch.randint(0, V, (2,))
    x, s = F.one_hot(ids[:1], V).float(), [torch.zeros(1, hidden_size)]

    def step():
        logits, s[0] = model(x, s[0].detach())
        loss = F.cross_entropy(logits, ids[1:])
        opt.zero_grad()
        loss.backward()
        opt.step()

    return 1 / _timer("step()", step=step).timeit(steps).mean


def _rows(presets: list[str] | None, batch_sizes: list[int]) -> list[tuple[str, dict, dict]]:
    """(name, model settings, training settings) of each model to time: by default the README's table; else the
    named presets, each at its own batch size and at each of `batch_sizes`."""
    if presets is None:
        # The paper's model at the notebook's size, then every preset but the notebook's own recipe.
        rows = [("paper @128", dict(PRESETS["paper"]["model"], hidden_size=128), PRESETS["paper"]["train"])]
        rows += [(f"{name} preset", p["model"], p["train"]) for name, p in PRESETS.items() if name != "seed"]
        # What the layer-normalised LSTM's loop over time costs against the fused kernel, at the lstm preset's size.
        rows.append(("lstm, layer-normalised (ln-lstm)", dict(PRESETS["lstm"]["model"], cell="ln-lstm"),
                     PRESETS["lstm"]["train"]))
    else:
        unknown = [name for name in presets if name not in PRESETS]
        if unknown:
            raise ValueError(f"unknown preset {unknown[0]!r} for --presets: choose among {', '.join(PRESETS)}")
        rows = [(f"{name} preset", PRESETS[name]["model"], PRESETS[name]["train"]) for name in presets]
    if any(b < 1 for b in batch_sizes):
        raise ValueError("--batch-sizes takes batch sizes of at least 1, e.g. 4,64")
    # Each model at the other batch sizes right after its own, so that the rows to compare are timed back to back.
    return [(name if b == t["batch_size"] else f"{name}, batch {b}", m, dict(t, batch_size=b))
            for name, m, t in rows for b in dict.fromkeys([t["batch_size"], *batch_sizes])]


def bench_training(steps: int, presets: list[str] | None = None, batch_sizes: tuple[int, ...] = ()) -> None:
    """Print the training-speed table of the README (by default), or of the named presets at more batch sizes."""
    rows = _rows(presets, list(batch_sizes))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu, "
          f"load average {os.getloadavg()[0]:.2f} (1 min) at the start")
    peak = matmul_gflops()
    print(f"matrix multiply (2048^3 fp32): {peak:,.1f} GFLOP/s")
    base = notebook_speed()
    print(f"course notebook loop, paper RNN hidden 128, 1 char/step: {base:,.0f} chars/s\n")
    print("| model | hidden x layers | batch x seq | weights | chars/s | x notebook | GFLOP/s | % of matmul |")
    print("|---|---|---|---|---|---|---|---|")
    for name, mcfg, tcfg in rows:
        cfg = TrainConfig(**tcfg)
        cps, weights = train_speed(mcfg, cfg, steps)
        gflops = 6 * weights * cps / 1e9
        print(f"| {name} | {mcfg['hidden_size']} x {mcfg.get('num_layers', 1)} | {cfg.batch_size} x {cfg.seq_len} "
              f"| {weights:,} | {cps:,.0f} | {cps / base:.1f} | {gflops:,.1f} | {100 * gflops / peak:.0f} % |")
    print(f"\nload average {os.getloadavg()[0]:.2f} (1 min) at the end")


# Why RNNs gave way, measured: the cost of a training step against the sequence length, for a sequential RNN (the
# GRU, fused kernel, a loop over time inside), the parallel RNN (minGRU, a scan over the whole chunk) and the
# transformer (every position at once; attention costs T x (W + T) with its window W set to T, the context it
# trains on, as nanoGPT's block), at about the same number of weights (the gru and mingru presets' ~2.5 M; a
# transformer of 4 blocks of 224 for the same count).
SWEEP_MODELS = {
    "GRU (sequential)": PRESETS["gru"]["model"],
    "minGRU (parallel scan)": PRESETS["mingru"]["model"],
    "transformer": dict(PRESETS["transformer"]["model"], hidden_size=224, embed_size=224),
}


def sweep(seq_lengths: list[int], batch_sizes: list[int], steps: int, models: dict | None = None) -> list[dict]:
    """One row per model, batch size and sequence length: seconds per training step, characters/s and GFLOP/s
    (6 FLOPs per weight per character, attention's own products not counted)."""
    rows = []
    for name, mcfg in (models or SWEEP_MODELS).items():
        for B in batch_sizes:
            for T in seq_lengths:
                cfg = dict(mcfg, window=T) if mcfg["cell"] == "transformer" else mcfg
                train_cfg = TrainConfig(batch_size=B, seq_len=T, lr=1e-3, weight_decay=0.1)
                cps, weights = train_speed(cfg, train_cfg, steps, warmup=1)
                rows.append({"model": name, "weights": weights, "batch_size": B, "seq_len": T,
                             "step_s": float(f"{B * T / cps:.4g}"), "chars_s": round(cps, 1),
                             "gflops": float(f"{6 * weights * cps / 1e9:.4g}")})
    return rows


def bench_sweep(seq_lengths: list[int], batch_sizes: list[int], steps: int, record: str | None = None,
                models: dict | None = None) -> dict:
    """Print the sweep's table (and the matrix-multiply rate that its shares are of); with `record`, write it there
    as JSON (the app's Learning view draws it)."""
    if not seq_lengths or not batch_sizes or min(seq_lengths + batch_sizes) < 1:
        raise ValueError("--sequence-lengths and --batch-sizes take numbers of at least 1, e.g. 64,128,256 and 1,4,64")
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu, load average {load:.2f} "
          "(1 min) at the start")
    peak = matmul_gflops()
    print(f"matrix multiply (2048^3 fp32): {peak:,.1f} GFLOP/s\n")
    rows = sweep(seq_lengths, batch_sizes, steps, models)
    print("| model | weights | batch x seq | s/step | chars/s | GFLOP/s | % of matmul |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        r["share"] = float(f"{r['gflops'] / peak:.3g}")
        print(f"| {r['model']} | {r['weights']:,} | {r['batch_size']} x {r['seq_len']} | {r['step_s']:.3f} | "
              f"{r['chars_s']:,.0f} | {r['gflops']:.1f} | {100 * r['share']:.0f} % |")
    end = os.getloadavg()[0]
    print(f"\nload average {end:.2f} (1 min) at the end")
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": "cpu",
           "load_average": [round(load, 2), round(end, 2)], "matmul_gflops": round(peak, 1), "steps": steps,
           "date": time.strftime("%Y-%m-%d"), "rows": rows}
    if record:
        with open(record, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        print(f"recorded in {record}")
    return out
