"""Scoring text under a model: the average loss (nats and bits per character) and per-character losses."""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from .data import START
from .deadline import check_deadline
from .model import zero_row
from .units import loss_record

# Characters read per model call when scoring a text (read): a deadline is checked between calls, so a call's
# cost is how far a request may overrun its limit. The largest shipped model reading 5,000 characters, with its
# cache, took at most 0.3-0.6 s a call (0.2-0.8 s without) on one thread of a 2-core machine loaded 6 times over.
CHUNK = 128


@contextmanager
def eval_mode(model):
    """Dropout off while scoring; the model's mode is restored after (training may be under way)."""
    was_training = model.training
    model.eval()
    try:
        yield model.device
    finally:
        model.train(was_training)


@torch.inference_mode()
def evaluate(model, text: str, streams: int = 32, burn_in: int = 256, chunk: int = 512) -> dict:
    """Average cross-entropy of predicting each character of `text` from all the ones before it.

    The first character has nothing to be predicted from, so len(text) - 1 characters are scored.
    For speed the text is read as `streams` parallel segments; each segment but the first first reads
    the `burn_in` characters before it without scoring them, so its state is warm as if the whole text
    had been read in one pass (exact up to what the model remembers from further back). The first
    segment starts from the zero state, like the single pass.
    """
    ids = torch.tensor(model.encode(text), dtype=torch.long)
    n = len(ids) - 1  # number of (input, target) pairs
    if n < 1:
        raise ValueError("evaluate needs a text of at least two characters")
    S = max(1, min(streams, n // (4 * burn_in)))  # short texts: fewer streams, less burn-in waste
    if getattr(model, "one_stream", False):
        S = 1  # a model whose state is not a fixed-size recurrence (the continuous cache) reads in one pass
    L = math.ceil(n / S)
    W = burn_in if S > 1 else 0
    x = torch.zeros(S, W + L, dtype=torch.long)
    y = torch.full((S, W + L), -1, dtype=torch.long)  # -1 = not scored
    for s in range(S):
        a, b = s * L, min((s + 1) * L, n)
        lo = max(0, a - W)
        x[s, W - (a - lo) : W + (b - a)] = ids[lo:b]
        y[s, W : W + (b - a)] = ids[a + 1 : b + 1]
    with eval_mode(model) as device:
        x, y = x.to(device), y.to(device)
        state = None
        if W:
            _, state = model(x[:, :W], None)
            zero_row(state, 0)  # segment 0 has no text before it
        total = torch.zeros((), dtype=torch.float64, device=device)
        for t in range(W, W + L, chunk):
            logits, state = model(x[:, t : t + chunk], state)  # (S, chunk, V)
            loss = F.cross_entropy(logits.float().flatten(0, 1), y[:, t : t + chunk].flatten(), ignore_index=-1,
                                   reduction="sum")
            total += loss.double()
    return loss_record(total.item() / n, n)


@torch.inference_mode()
def read(model, text: str, k: int = 5, *, deadline: float | None = None,
         chunk: int = CHUNK) -> tuple[torch.Tensor, list[list[tuple[str, float]]]]:
    """`text` read as one pass reads it: the loss in nats of each character after the first, (len(text) - 1,),
    and at every position the k most likely next characters with their probabilities (none if k is 0):
    guesses[i] is what the model expected after text[:i + 1], so guesses[-1] is its guess for the character
    after the text.

    The text is read in pieces of `chunk` characters, the state carried from one to the next, which gives
    the one-pass values; deadline, a time.monotonic() value, is checked between pieces (DeadlineExceeded).
    """
    if not text:
        raise ValueError("reading a text needs at least one character")
    chars, losses, guesses = model.vocab.chars, [], []
    with eval_mode(model) as device:
        ids = torch.tensor([model.encode(text)], dtype=torch.long, device=device)  # (1, N)
        n, state = ids.shape[1], None
        for a in range(0, n, chunk):
            check_deadline(deadline, a, n, "read")
            logits, state = model(ids[:, a : a + chunk], state)  # (1, c, V)
            logp = torch.log_softmax(logits[0].float(), -1)  # (c, V)
            targets = ids[0, a + 1 : a + chunk + 1]  # (c,), or (c - 1,) in the last piece: the text's end
            losses.append(-logp[: len(targets)].gather(1, targets[:, None])[:, 0])
            if k:
                top = torch.topk(logp.exp(), min(k, logp.shape[-1]), dim=-1)
                guesses += [[(chars[i], p) for i, p in zip(row_i, row_p)]
                            for row_i, row_p in zip(top.indices.tolist(), top.values.tolist())]
    return torch.cat(losses).cpu(), guesses


def char_losses(model, text: str, *, deadline: float | None = None, chunk: int = CHUNK) -> torch.Tensor:
    """Loss in nats of each character of `text` after the first, as read in one pass: shape (len(text) - 1,).
    deadline: see read."""
    return read(model, text, 0, deadline=deadline, chunk=chunk)[0]


def average(losses: torch.Tensor) -> dict:
    """Per-character losses (nats) as evaluate reports a text: mean nats and bits per character, and how many."""
    return loss_record(losses.double().sum().item() / len(losses), len(losses))


def costly_lines(text: str, losses, top: int = 10) -> list[dict]:
    """The distinct non-blank lines of `text` whose occurrences cost the most nats in all, costliest first.

    losses[i] is the loss of text[i + 1] (as char_losses gives them, or dynamic_char_losses). A line's
    cost is the loss of its characters and of the line break after it. Each entry: the line, how many
    times it occurs, the total and the costs of its first and last occurrence. The two costs side by
    side show whether the model learns a line from its earlier occurrences: a static model cannot learn,
    say, a new speaker's name, and pays for it in full every time.
    """
    if len(losses) != len(text) - 1:
        raise ValueError(f"{len(losses)} losses for a text of {len(text)} characters: one per character after the first")
    losses = torch.as_tensor(losses, dtype=torch.float64).tolist()
    lines: dict[str, dict] = {}
    start = 0
    for line in text.split("\n"):
        end = start + len(line)  # the line break after the line, or the end of the text
        if line.strip() and start > 0:  # the text's first character is given, not predicted
            cost = sum(losses[start - 1 : end])
            entry = lines.setdefault(line, {"line": line, "count": 0, "nats": 0.0, "first": cost})
            entry["count"] += 1
            entry["nats"] += cost
            entry["last"] = cost
        start = end + 1
    return sorted(lines.values(), key=lambda e: -e["nats"])[:top]


def next_chars(model, text: str, k: int = 5, *, deadline: float | None = None) -> list[tuple[str, float]]:
    """The k most likely characters to follow `text` (as read in one pass), with their probabilities.
    deadline: see read."""
    return read(model, text or START, k, deadline=deadline)[1][-1]
