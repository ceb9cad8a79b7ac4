"""nanoGPT's CPU recipe for a character-level text, run from a checkout of karpathy/nanoGPT, and its model scored
on the whole held-out split: the peer the quick preset is measured against (`python -m charrnn bench quick`).

Nothing of nanoGPT is copied here: its own prepare.py, train.py and model.py run from the checkout given.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# The command nanoGPT's README gives for training its Shakespeare character model on a CPU.
RECIPE = ("--device=cpu", "--compile=False", "--eval_iters=20", "--log_interval=1", "--block_size=64",
          "--batch_size=12", "--n_layer=4", "--n_head=4", "--n_embd=128", "--max_iters=2000",
          "--lr_decay_iters=2000", "--dropout=0.0")
NEEDED = ("train.py", "model.py", "configurator.py", "config/train_shakespeare_char.py",
          "data/shakespeare_char/prepare.py")


def check_checkout(repo: Path) -> None:
    missing = [name for name in NEEDED if not (repo / name).is_file()]
    if missing:
        raise ValueError(f"{repo} is not a nanoGPT checkout (no {missing[0]}): clone github.com/karpathy/nanoGPT "
                         "and pass its directory to --nanogpt")


def train(repo: Path, text_file: Path, work: Path, threads: int, log) -> tuple[Path, float]:
    """Prepare `text_file` with nanoGPT's prepare.py (its 90/10 split, as charrnn.data.split) and train the recipe
    in `work`. Returns the checkpoint's path and the training command's wall time in seconds (start-up,
    nanoGPT's own estimates every 250 steps and its checkpoint writes included)."""
    check_checkout(repo)
    data = work / "data" / "bench"
    data.mkdir(parents=True)
    shutil.copy(repo / "data/shakespeare_char/prepare.py", data)  # it reads input.txt beside itself
    shutil.copy(text_file, data / "input.txt")
    shutil.copy(repo / "configurator.py", work)  # train.py reads it from the working directory
    subprocess.run([sys.executable, "prepare.py"], cwd=data, check=True, stdout=log, stderr=subprocess.STDOUT)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}  # torch's intra-op threads in the child
    start = time.perf_counter()
    subprocess.run([sys.executable, str(repo / "train.py"), str(repo / "config/train_shakespeare_char.py"), *RECIPE,
                    "--dataset=bench", f"--out_dir={work / 'out'}"], cwd=work, env=env, check=True, stdout=log,
                   stderr=subprocess.STDOUT)
    return work / "out" / "ckpt.pt", time.perf_counter() - start


def load(repo: Path, ckpt: Path) -> tuple[torch.nn.Module, int, int]:
    """nanoGPT's model (built by its model.py) with the checkpoint's weights, its context length, and the step saved."""
    spec = importlib.util.spec_from_file_location("nanogpt_model", repo / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)  # holds its config as plain Python values
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its parameter count
        model = module.GPT(module.GPTConfig(**saved["model_args"]))
    model.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in saved["model"].items()})
    return model.eval(), saved["model_args"]["block_size"], saved["iter_num"]


@torch.no_grad()
def held_out_nats(model: torch.nn.Module, ids: torch.Tensor, block: int, batch: int = 256) -> float:
    """Mean cross-entropy (nats/char) of every character of `ids` but the first, as charrnn.scoring.evaluate counts.

    A transformer sees at most `block` characters, so the text is read in windows of `block` that overlap by half:
    each character is predicted from block/2 to block - 1 before it (the first block/2 from those there are)."""
    half, n = block // 2, len(ids) - 1  # n targets: ids[1:]
    total, counted = 0.0, 0
    starts = list(range(0, max(1, n - half), half))
    for i in range(0, len(starts), batch):
        group = starts[i : i + batch]
        full = [s for s in group if s + block <= n]
        short = [s for s in group if s + block > n]
        if full:
            x = torch.stack([ids[s : s + block] for s in full])  # (B, block)
            y = torch.stack([ids[s + 1 : s + block + 1] for s in full])
            losses = F.cross_entropy(model(x, y)[0].flatten(0, 1), y.flatten(), reduction="none").view_as(y)
            first = torch.tensor([0 if s == 0 else half for s in full])  # earlier windows scored the rest
            keep = torch.arange(block)[None, :] >= first[:, None]
            total, counted = total + losses[keep].sum().item(), counted + int(keep.sum())
        for s in short:  # the last window, shorter than the others
            x, y = ids[s:n][None], ids[s + 1 : n + 1][None]
            losses = F.cross_entropy(model(x, y)[0].flatten(0, 1), y.flatten(), reduction="none")
            losses = losses[0 if s == 0 else half :]
            total, counted = total + losses.sum().item(), counted + losses.numel()
    return total / counted


def test_ids(work: Path) -> torch.Tensor:
    """The held-out split as prepare.py encoded it (val.bin: the last 10 % of the text, uint16 ids)."""
    return torch.from_numpy(np.fromfile(work / "data" / "bench" / "val.bin", dtype=np.uint16).astype(np.int64))
