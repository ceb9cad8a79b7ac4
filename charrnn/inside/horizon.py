"""How far back a prediction looks: the dependence of log p(x_t) on the character read k steps before.

The dependence on distance k is the norm of the gradient of log p(x_t | x_<t) with respect to the
network's input at t - k (the one-hot vector of the paper's RNN, the embedding of the gated models):
how much a small change of that input would move the prediction. k = 1 is the last character read
before x_t is predicted. Averaged over many positions t, it gives the model's memory horizon: the
distance at which what was read no longer moves the prediction. The vanishing gradient of a simple RNN
predicts a fast decay; the figures recorded for the shipped models show what it is.

The state before a window of K characters is the state after reading `warmup` characters before it
from the zero state, held constant: the gradient with respect to the K inputs in the window is exact.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ..scoring import eval_mode
from .probe import check_readable, model_inputs

MAX_DISTANCE = 256  # K: the distances measured, 1..K
WARMUP = 256  # characters read before each window, so that its first state is a realistic one
BATCH = 32  # windows back-propagated at once
THRESHOLDS = {"10%": 0.1, "1%": 0.01}  # the record's distances at which the dependence falls below these


def dependence(model, ids: torch.Tensor, positions: Sequence[int], max_distance: int, warmup: int = WARMUP,
               batch: int = BATCH) -> torch.Tensor:
    """(len(positions), max_distance): [i, k - 1] = || d log p(x_t) / d input(t - k) || for t = positions[i],
    k = 1..max_distance, in the text of character ids `ids` (N,). Needs t >= max_distance for every t.

    The windows whose warm-up fits share a batch; those near the text's start read what there is.
    """
    check_readable(model, units=False)
    K = max_distance
    if K < 1 or any(not K <= t < len(ids) for t in positions):
        raise ValueError(f"every position must be from max_distance ({K}) to the text's length - 1 ({len(ids) - 1})")
    out = torch.empty(len(positions), K, dtype=model.head.weight.dtype)
    warm = [min(warmup, t - K) for t in positions]
    # cuDNN's RNN refuses a backward pass in eval mode; its non-fused path computes the same thing.
    with eval_mode(model) as device, torch.backends.cudnn.flags(enabled=False):
        for w in sorted(set(warm)):
            same = [i for i, wi in enumerate(warm) if wi == w]
            for a in range(0, len(same), batch):
                rows = same[a : a + batch]
                # (B, w + K + 1): the warm-up, the window, and the predicted character
                window = torch.stack([ids[positions[i] - K - w : positions[i] + 1] for i in rows]).to(device)
                state = None
                if w:
                    with torch.no_grad():
                        _, state = model.features(window[:, :w])
                x = model_inputs(model, window[:, w:-1]).detach().requires_grad_()  # (B, K, D)
                top, _ = model.rnn(x, state)  # (B, K, H)
                logp = F.log_softmax(model.readout(top[:, -1]), dim=-1)  # (B, V): p(x_t | x_<t)
                picked = logp.gather(1, window[:, -1:]).sum()  # the windows are independent: one backward for all
                (grad,) = torch.autograd.grad(picked, x)  # (B, K, D)
                out[rows] = grad.norm(dim=-1).flip(1).cpu()  # column k - 1 = distance k
    return out


def leans_on(model, text: str, t: int, max_distance: int | None = None) -> torch.Tensor:
    """How much the prediction of text[t] depends on each character before it, (t,): entry j is the
    dependence on text[j], the text read from its start. With `max_distance`, only the characters at most
    that far back are measured (the others are read without a gradient, which is cheaper) and are NaN."""
    if not 1 <= t < len(text):
        raise ValueError(f"the predicted character must be from 1 to {len(text) - 1} (the first is only read)")
    K = t if max_distance is None else min(t, max_distance)
    ids = torch.tensor(model.encode(text[: t + 1]), dtype=torch.long)
    near = dependence(model, ids, [t], K, warmup=t - K)[0].flip(0)  # (K,): text[t-K] .. text[t-1]
    return torch.cat([near.new_full((t - K,), float("nan")), near])


def significant(x: float, digits: int = 4) -> float:
    """x rounded to `digits` significant digits, for a record that stays readable and reproducible."""
    return 0.0 if x == 0 or not math.isfinite(x) else round(x, digits - 1 - math.floor(math.log10(abs(x))))


def memory_horizon(model, text: str, positions: int, max_distance: int = MAX_DISTANCE, warmup: int = WARMUP) -> dict:
    """The mean dependence on distances 1..max_distance over `positions` evenly spaced positions of `text`,
    as a checkpoint records it: relative to its value at k = 1, and where it falls below THRESHOLDS."""
    ids = torch.tensor(model.encode(text), dtype=torch.long)
    first = max_distance + warmup
    if positions < 1 or len(ids) - 1 < first:
        raise ValueError(f"the memory horizon needs a text of more than {first:,} characters (max_distance + "
                         f"warmup) and at least one position; got {len(ids):,} characters and {positions} positions")
    where = torch.linspace(first, len(ids) - 1, positions).round().long().unique().tolist()
    mean = dependence(model, ids, where, max_distance, warmup).double().mean(0)  # (K,)
    relative = (mean / mean[0]).tolist()
    below = {name: next((k for k, r in enumerate(relative, 1) if r < frac), None) for name, frac in THRESHOLDS.items()}
    return {"positions": len(where), "max_distance": max_distance, "warmup": warmup,
            "input": "embedding" if model.embed is not None else "one-hot", "at_1": significant(mean[0].item()),
            "relative": [significant(r) for r in relative], "below": below}
