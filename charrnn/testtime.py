"""What the two test-time readers share, the paper's dynamic model (charrnn.dynamic) and the continuous
cache (charrnn.cache): the text their settings are chosen on, never the test split, and their command line
(`python -m charrnn.dynamic` and `python -m charrnn.cache`: tune, score the test split, --record)."""
from __future__ import annotations

import argparse

import torch

from .data import DEFAULT_DATA, hold_out

TUNE_CHARS = 50_000  # tuning text for checkpoints without a validation slice: the end of the training split


def tuning_text(train_text: str, training: dict) -> tuple[str, str]:
    """The text to choose a test-time setting on, and what it is, from the training split and the run's
    settings (config.json's `training`: its validation slice and how much of the split it read).

    The validation slice where the run held one out. Otherwise the end of the training split: not the
    test split either way, but text the model trained on (which favours timid settings: small learning
    rates, a light cache) unless the run read only the start of the split.
    """
    trained_on, val = hold_out(train_text, training.get("val_chars", 0), training.get("max_chars", 0))
    if val:
        return val, f"the validation slice ({len(val):,} characters, never trained on)"
    seen = len(trained_on) > len(train_text) - TUNE_CHARS
    return train_text[-TUNE_CHARS:], (f"the last {TUNE_CHARS:,} characters of the training split (this run held no "
                                      "validation slice out; " + ("the model trained on this text)" if seen else
                                      f"it trained on the split's first {len(trained_on):,} characters only, "
                                      "never on this text)"))


def parser(description: str, checkpoint: str, key: str) -> argparse.ArgumentParser:
    """The flags both CLIs take; each adds its own settings. `key`: where --record writes, final[key]."""
    from .scoring import LINES_HELP

    p = argparse.ArgumentParser(description=description)
    p.add_argument("--checkpoint", default=checkpoint, help="checkpoint directory or Hub id USER/NAME")
    p.add_argument("--data", default=DEFAULT_DATA, help="the corpus the model was trained on (path or URL)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch (default: PyTorch's)")
    p.add_argument("--lines", type=int, default=0, help=LINES_HELP)
    p.add_argument("--record", action="store_true",
                   help=f"write the result into the checkpoint's config.json (final.{key}) and model card")
    return p


def inputs(args) -> tuple:
    """The model, the test split, the text to tune on and its description; raises ValueError (or OSError)
    with what is wrong, before any long computation, when --record could not write."""
    from .checkpoint import check_recordable, load
    from .data import read_text, resolve_corpus, split

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load(args.checkpoint)
    train_text, test_text = split(read_text(resolve_corpus(args.data)))
    if args.record:
        check_recordable(args.checkpoint, getattr(model, "meta", {}))
    return (model, test_text, *tuning_text(train_text, getattr(model, "meta", {}).get("training", {})))


def finish(args, model, key: str, test_text: str, test_losses: torch.Tensor, record: dict) -> None:
    """Print the costliest lines if asked, and record `record` (with the test loss) as final[key] if asked."""
    from .checkpoint import record_final
    from .scoring import print_costly_lines

    print_costly_lines(test_text, test_losses, args.lines)
    if args.record:
        record_final(model, args.checkpoint, key, record)
        print(f"recorded in {args.checkpoint}/config.json and its model card")
