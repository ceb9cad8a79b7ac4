"""`python -m charrnn bench quick`: the quick preset trained for a wall-clock budget on a text, and with --nanogpt
nanoGPT's CPU recipe trained in the same run on the same 90/10 split, both scored on the whole held-out tenth.

The two run one after the other on the same number of threads, so that they meet the same machine; the bench
prints the machine's load average beside each run, since on a shared machine wall time depends on it.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from ..data import Vocab, read_text, split
from ..model import CharRNN, ModelConfig
from ..presets import PRESETS
from ..training import Run, TrainConfig, train
from ..units import bits
from . import nanogpt


def load_average() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def train_quick(text: str, seconds: float, out: Path) -> dict:
    """The quick preset trained on the first 90 % of `text` for `seconds`; returns the run's record."""
    preset = PRESETS["quick"]
    train_text, test_text = split(text)
    cfg = TrainConfig(**{**preset["train"], "time_budget": seconds})
    torch.manual_seed(cfg.seed)
    model = CharRNN(ModelConfig(vocab=Vocab.from_text(text).chars, **preset["model"]))
    return train(model, Run(train_text, test_text, cfg, out, progress=False))


def run(data: Path, seconds: float, nanogpt_dir: Path | None, threads: int) -> None:
    """Print the figures of the quick preset and, given a nanoGPT checkout, of nanoGPT's recipe, and their ratio."""
    torch.set_num_threads(threads)
    text = read_text(data)
    if nanogpt_dir is not None:
        nanogpt.check_checkout(nanogpt_dir)
    print(f"{data}: {len(text):,} characters, trained on the first 90 %, scored on the whole last 10 % "
          f"({len(split(text)[1]) - 1:,} characters predicted); torch {torch.__version__}, {threads} thread(s), "
          f"{os.cpu_count()} CPU(s)")
    with tempfile.TemporaryDirectory(prefix="bench-quick-") as tmp:
        peer = None
        if nanogpt_dir is not None:
            before = load_average()
            with open(Path(tmp) / "nanogpt.log", "w") as log:
                ckpt, peer_s = nanogpt.train(nanogpt_dir, data, Path(tmp) / "nanogpt", threads, log)
            after = load_average()
            model, block, saved_step = nanogpt.load(nanogpt_dir, ckpt)
            peer = nanogpt.held_out_nats(model, nanogpt.test_ids(Path(tmp) / "nanogpt"), block)
            print(f"nanoGPT (4 layers x 4 heads x 128, block {block}, batch 12, 2,000 steps, dropout 0; its checkpoint "
                  f"of step {saved_step}): {peer:.4f} nats/char ({bits(peer):.3f} bits/char) in {peer_s:.0f} s "
                  f"[{before} before, {after} after]")
        seconds = seconds or (peer_s if peer is not None else PRESETS["quick"]["train"]["time_budget"])
        before = load_average()
        record = train_quick(text, seconds, Path(tmp) / "quick")
        after = load_average()
    f = record["final"]
    ours = f["test"]["nats"]
    print(f"charrnn quick ({PRESETS['quick']['about']}), budget {seconds:.0f} s: {ours:.4f} nats/char "
          f"({bits(ours):.3f} bits/char) after {f['steps']:,} steps in {f['train_time_s']:.0f} s, "
          f"stopped by {f['stopped_by'].replace('_', ' ')} [{before} before, {after} after]")
    if peer is not None:
        print(f"quick / nanoGPT held-out loss: {ours / peer:.3f} (below 1: the quick preset predicts better)")
