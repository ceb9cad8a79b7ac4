import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from charrnn.bench.nanogpt import held_out_nats

ROOT = Path(__file__).resolve().parents[1]


class Bigram(nn.Module):
    """A stand-in for nanoGPT's GPT with its calling convention (model(idx, targets) -> (logits, loss)): each
    character's prediction depends on that character alone, so any reading of the text gives the same losses."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.table = nn.Parameter(torch.randn(vocab_size, vocab_size))

    def forward(self, idx, targets=None):
        return self.table[idx], None  # (B, T, vocab)


@pytest.mark.parametrize("n, block", [(1000, 64), (1001, 64), (40, 64), (500, 10)])
def test_nanogpt_is_scored_on_every_held_out_character_but_the_first_once(n, block):
    torch.manual_seed(0)
    model, ids = Bigram(7), torch.randint(0, 7, (n,))
    exact = F.cross_entropy(model.table[ids[:-1]], ids[1:]).item()  # each of the n - 1 targets, once
    assert held_out_nats(model, ids, block, batch=3) == pytest.approx(exact, rel=1e-6)


def test_bench_quick_refuses_a_directory_that_is_not_a_nanogpt_checkout(tmp_path):
    data = tmp_path / "t.txt"
    data.write_text("abc" * 100)
    done = subprocess.run([sys.executable, "-m", "charrnn", "bench", "quick", "--data", str(data), "--nanogpt",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().endswith("is not a nanoGPT checkout (no train.py): clone github.com/karpathy/nanoGPT "
                                        "and pass its directory to --nanogpt")
