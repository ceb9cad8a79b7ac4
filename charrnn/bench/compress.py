"""`python -m charrnn bench compress`: the shipped models as compressors of the test split (charrnn.compress),
beside the general-purpose compressors, all measured in the same run.

Every compressor is given the training text as context: a tool compresses the training text followed by
the test split, and the training text alone, and the difference is what the test split costs it (a model
has read the training text in its weights). Bits per character divide bits by the test split's characters.
A model is run static and, unless told otherwise, with its best adaptive mode: of the recorded readings the
coder can repeat (dynamic, cache), the one with the lowest loss on its tuning text (the validation slice),
never chosen on the test split.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from ..compress import ADAPT, CompressError, compress_text, decompress_text
from ..data import read_text, resolve_corpus, split
from ..hub import load
from ..record import readings

# Each tool compresses its standard input to its standard output; zpaq is an archiver and writes a file.
TOOLS = {"xz -9e": ["xz", "-9e", "-c"], "zstd -19 --long": ["zstd", "-19", "--long", "-c", "-q"],
         "bzip2 -9": ["bzip2", "-9", "-c"], "zpaq -m5": ["zpaq", "-m5"]}


def tool_size(name: str, data: bytes) -> int:
    """Bytes of `data` compressed by tool `name` (of TOOLS)."""
    cmd = TOOLS[name]
    if cmd[0] != "zpaq":
        return len(subprocess.run(cmd, input=data, capture_output=True, check=True).stdout)
    with tempfile.TemporaryDirectory() as tmp:  # the same file name for every run: its size cancels out
        Path(tmp, "text").write_bytes(data)
        subprocess.run(["zpaq", "a", "text.zpaq", "text", *cmd[1:]], cwd=tmp, capture_output=True, check=True)
        return Path(tmp, "text.zpaq").stat().st_size


def best_adaptive(record: dict) -> str | None:
    """Of the recorded test-time readings the coder can repeat (compress.ADAPT), the one with the lowest loss on
    its tuning text; None if none is recorded."""
    tuned = {k: min(r["tuning"].values()) for k, r in readings(record).items() if r.get("tuning") and k in ADAPT}
    return min(tuned, key=tuned.get) if tuned else None


def _recorded_bpc(record: dict, mode: str) -> float | None:
    final = record.get("final") or {}
    return ((final.get("test") if mode == "none" else (final.get(mode) or {}).get("test")) or {}).get("bpc")


def run(checkpoints: list[str], modes: list[str], data: str, tools: bool = True) -> None:
    """Print the table of the README: bytes, bits/char and speed of each compressor on the test split."""
    train, test = split(read_text(resolve_corpus(data)))
    train_b, test_b = train.encode(), test.encode()
    n = len(test)
    print(f"test split: {n:,} characters ({len(test_b):,} bytes of UTF-8), after {len(train):,} characters of "
          f"training text; torch {torch.__version__}, the model coder on 1 thread", flush=True)
    print("| compressor | bytes | bits/char | reading's bits/char | file vs reading | compress chars/s "
          "| decompress chars/s | round trip |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    for name, cmd in TOOLS.items() if tools else ():
        if not shutil.which(cmd[0]):
            print(f"| `{name}` | not installed | | | | | | |", flush=True)
            continue
        t = time.perf_counter()
        both = tool_size(name, train_b + test_b)
        seconds = time.perf_counter() - t
        size = both - tool_size(name, train_b)
        print(f"| `{name}`, after the training text | {size:,} | {8 * size / n:.3f} | | | "
              f"{(len(train) + n) / seconds:,.0f} (train + test) | | |", flush=True)
    for path in checkpoints:
        model = load(path)
        wanted = [best_adaptive(model.record) if m == "best" else m for m in modes]
        for mode in dict.fromkeys(m for m in wanted if m):  # in order, once each
            t0 = time.perf_counter()
            packed = compress_text(model, test, mode)
            t1 = time.perf_counter()
            try:
                same = decompress_text(model, packed) == test
            except CompressError as e:  # the text's checksum refused what was decoded
                print(f"  {path}, {mode}: {e}", flush=True)
                same = False
            t2 = time.perf_counter()
            bpc, recorded = 8 * len(packed) / n, _recorded_bpc(model.record, mode)
            vs = f"{100 * (bpc / recorded - 1):+.2f} %" if recorded else "—"
            print(f"| `{Path(path).name}`, {'static' if mode == 'none' else mode} | {len(packed):,} | {bpc:.3f} | "
                  f"{f'{recorded:.3f}' if recorded else '—'} | {vs} | {n / (t1 - t0):,.0f} | {n / (t2 - t1):,.0f} | "
                  f"{'exact' if same else 'DIFFERS'} |", flush=True)
