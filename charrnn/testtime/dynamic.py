"""The paper's dynamic model: a trained network that keeps learning while it reads the test text.

Mikolov et al. (2010) keep training their network while it processes the test data, once, with
standard back-propagation at a fixed learning rate, and report this "dynamic" model beside the static
one. Here the text is read in segments of `seq_len` characters: each segment is scored first,
then the model takes one SGD step on that segment's loss and carries its state on. So every character
is predicted by a model that has trained only on the text before it, as in an adaptive compressor.

The learning rate is the one free choice, and it is made on the validation slice, never on the test
split. The result is a second test figure: `evaluate` (static) stays the loss of the stored weights.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..scoring import average
from ..training import train_step
from .method import Method

SEQ_LEN = 50  # characters per update: short enough to adapt within a scene, long enough for a useful gradient
LEARNING_RATES = (0.005, 0.01, 0.02, 0.04, 0.08)  # the grid tune() searches, factors of 2


@dataclass
class Settings:
    lr: float | None = None  # learning rate of the updates; if not given, tuned over 0.005, 0.01, 0.02, 0.04, 0.08
    seq_len: int = SEQ_LEN  # characters scored between two updates


def dynamic_char_losses(model, text: str, lr: float, seq_len: int = SEQ_LEN, log_probs: bool = False) -> torch.Tensor:
    """Loss in nats of each character of `text` after the first under the dynamic model: shape (len(text) - 1,).
    log_probs: the whole next-character distribution instead, log p (len(text) - 1, V).

    One stream, one pass, from the zero state. `model` itself is not changed: a copy adapts. With
    lr = 0 these are the static losses of reading the text in one pass (as scoring.char_losses).
    """
    if lr < 0 or not math.isfinite(lr):
        raise ValueError(f"the learning rate must be a finite number >= 0, not {lr}")
    return adaptive_char_losses(model, text, seq_len, lambda m: torch.optim.SGD(m.parameters(), lr=lr) if lr else None,
                                log_probs)


class _Watched(nn.Module):
    """`model` seen through a window: each forward pass also keeps its log-probabilities (detached), so that
    train_step's reading of a segment gives the whole distribution, not only the loss of what came."""

    def __init__(self, model):
        super().__init__()
        self.model, self.seen = model, []

    def forward(self, idx, state=None):
        logits, state = self.model(idx, state)
        self.seen.append(F.log_softmax(logits.detach().float(), -1)[0].cpu())  # (T, V)
        return logits, state


def adaptive_char_losses(model, text: str, seq_len: int, make_optimizer: Callable, log_probs: bool = False
                         ) -> torch.Tensor:
    """Loss in nats of each character of `text` after the first, read by a copy of `model` that takes a step
    of `make_optimizer(copy)` after scoring each `seq_len` characters (None: no step, the static reading).
    log_probs: the whole next-character distribution at each of those characters instead, log p (N, V).

    One stream, one pass, from the zero state; `model` itself is not changed. The step is train_step's:
    the gradient of the segment's mean loss, in eval mode (no dropout).
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be at least 1, not {seq_len}")
    m = copy.deepcopy(model).float().eval()  # eval: no dropout; the copy is what learns
    ids = torch.tensor([model.encode(text)], dtype=torch.long, device=model.device)  # (1, N)
    n = ids.shape[1] - 1
    if n < 1:
        raise ValueError("the dynamic model needs a text of at least two characters")
    opt = make_optimizer(m)
    if log_probs:
        m = _Watched(m)  # the optimizer was made on the copy's parameters, which the window leaves as they are
    losses, state = [], None
    # cuDNN's RNN refuses a backward pass in eval mode; its non-fused path computes the same thing.
    with torch.backends.cudnn.flags(enabled=False):
        for t in range(0, n, seq_len):
            x, y = ids[:, t : min(t + seq_len, n)], ids[:, t + 1 : min(t + seq_len, n) + 1]
            if opt is not None:  # scored before the step learns from it
                loss, state = train_step(m, opt, x, y, state)
            else:
                with torch.no_grad():
                    logits, state = m(x, state)
                    loss = F.cross_entropy(logits[0], y[0], reduction="none")
            losses.append(loss.reshape(-1).cpu())
    return torch.cat(m.seen) if log_probs else torch.cat(losses)


def evaluate_dynamic(model, text: str, lr: float, seq_len: int = SEQ_LEN) -> dict:
    """Average loss of `text` (nats and bits per character) under the dynamic model (see dynamic_char_losses)."""
    return average(dynamic_char_losses(model, text, lr, seq_len))


def tune(model, text: str, rates=LEARNING_RATES, seq_len: int = SEQ_LEN, log=None) -> tuple[float, dict[float, float]]:
    """The learning rate of `rates` with the lowest dynamic loss on `text`, and every rate's loss (0 included)."""
    losses = {}
    for lr in (0.0, *rates):
        losses[lr] = evaluate_dynamic(model, text, lr, seq_len)["nats"]
        if log:
            log(f"  lr {lr:<6g} {losses[lr]:.4f} nats/char")
    return min(losses, key=losses.get), losses


def _tune(model, text: str, settings: Settings, log=None) -> tuple[Settings, dict[tuple, float]]:
    if settings.lr is not None:  # given: its loss on the tuning text, for the record
        return settings, {(settings.lr,): evaluate_dynamic(model, text, settings.lr, settings.seq_len)["nats"]}
    lr, losses = tune(model, text, seq_len=settings.seq_len, log=log)
    return replace(settings, lr=lr), {(r,): v for r, v in losses.items()}


def _about(s: Settings, tuned_on: str) -> str:
    return (f"the paper's dynamic model (Mikolov et al. 2010), which keeps learning from the test text as it reads "
            f"it: one SGD step at learning rate {s.lr:g} after scoring each {s.seq_len} characters, the rate chosen on "
            f"{tuned_on}")


def _char_losses(model, text: str, s: Settings) -> torch.Tensor:
    return dynamic_char_losses(model, text, s.lr, s.seq_len)


def _char_log_probs(model, text: str, s: Settings) -> torch.Tensor:
    return dynamic_char_losses(model, text, s.lr, s.seq_len, log_probs=True)


PROSE = ("the network keeps learning from every 50 characters once it has scored them, so that it picks up the new "
         "plays' names and words as it reads")
METHOD = Method("dynamic", "dynamic evaluation", PROSE, Settings, _char_losses, _tune, _about,
                char_log_probs=_char_log_probs)
