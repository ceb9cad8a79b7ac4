"""Dynamic evaluation as Krause, Kahembwe, Murray & Renals (ICML 2018, "Dynamic evaluation of neural
sequence models"): the network keeps learning while it reads, each weight's step scaled by how large its
gradient usually is, and every weight pulled back toward its trained value.

The paper's dynamic model (testtime.dynamic) takes a plain SGD step after each segment: one learning rate
for weights whose gradients differ by orders of magnitude, and nothing that stops the weights drifting
away from what training found. Krause et al. measure, on training text and before reading anything,
the root mean square RMS_g of each weight's gradient over segments, and after scoring each segment update

    theta <- theta - eta g / (RMS_g + eps) + min(1, lam RMS_g / mean(RMS_g)) (theta_0 - theta)

where g is the segment's gradient, theta_0 the trained weights and mean(RMS_g) the mean over every weight.
The first term is a step of about eta in each weight's own units; the second a decay toward theta_0,
stronger for the weights that learn most (clipped at 1, as in the authors' code, so that a step never
overshoots theta_0). With lam = 0 it is RMS-normalised SGD.

The gradient statistics come from the last `grad_chars` characters the model trained on (just before its
validation slice), read as the test text is read: one stream, segments of `seq_len`, the same gradient.
eta and lam are chosen on the validation slice, never on the test split.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from ..scoring import average
from .dynamic import SEQ_LEN, adaptive_char_losses
from .method import Method

GRAD_CHARS = 50_000  # training text the gradient RMS is measured on: 1,000 segments of 50
EPS = 1e-4  # keeps a step finite for a weight whose gradient the training text never moved (a rare character's)
# What tune() searches: eta in units of a weight's gradient RMS per step (factors of 2 around the best of a
# wider sweep on the first 10,000 characters of gru's validation slice: 3e-5, 1e-4, 3e-4, 1e-3, 3e-3 at lam 0),
# then lam, the pull back per step of a weight of mean RMS.
ETAS = (5e-5, 1e-4, 2e-4)
LAMBDAS = (0.0, 0.002, 0.01)


class RMSDecay(torch.optim.Optimizer):
    """Krause et al.'s update (the equation in the module docstring) as a torch optimizer, so that
    training.train_step makes it: the trained weights theta_0 are the parameters when it is built."""

    def __init__(self, params, rms: list[torch.Tensor], lr: float, lam: float, eps: float = EPS):
        params = list(params)
        if len(rms) != len(params) or any(r.shape != p.shape for r, p in zip(rms, params)):
            raise ValueError("the gradient statistics do not match the model's weights: measure them on this model")
        super().__init__(params, dict(lr=lr, lam=lam, eps=eps))
        mean = torch.cat([r.flatten() for r in rms]).mean()
        for p, r in zip(params, rms):
            self.state[p] = {"theta0": p.detach().clone(), "rms": r.to(p.device),
                             "decay": (lam * r / mean).clamp(max=1.0).to(p.device)}

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                s = self.state[p]
                pull = s["decay"] * (s["theta0"] - p)  # from theta before this step, as in the equation
                if p.grad is not None:
                    p.addcdiv_(p.grad, s["rms"] + group["eps"], value=-group["lr"])
                p.add_(pull)


class SquaredGradients(torch.optim.Optimizer):
    """An optimizer that does not move: each step adds the squared gradient of every weight to a sum, so that
    train_step measures exactly the gradients the update will later see."""

    def __init__(self, params):
        super().__init__(list(params), {})
        self.steps = 0
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p] = {"sum": torch.zeros_like(p)}

    @torch.no_grad()
    def step(self, closure=None):
        self.steps += 1
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.state[p]["sum"].addcmul_(p.grad, p.grad)

    def rms(self) -> list[torch.Tensor]:
        return [(self.state[p]["sum"] / max(1, self.steps)).sqrt() for p in self.param_groups[0]["params"]]


def gradient_rms(model, text: str, seq_len: int = SEQ_LEN) -> list[torch.Tensor]:
    """The root mean square over the segments of `text` of each weight's gradient (in the order of
    model.parameters()), each segment's gradient that of its mean loss, read as the test text is read."""
    made: list[SquaredGradients] = []
    adaptive_char_losses(model, text, seq_len, lambda m: made.append(SquaredGradients(m.parameters())) or made[0])
    return made[0].rms()


def check_krause(lr: float, lam: float, eps: float) -> None:
    for name, v in (("lr", lr), ("lam", lam)):
        if not (v >= 0 and math.isfinite(v)):
            raise ValueError(f"{name} must be a finite number >= 0, not {v}")
    if not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a finite number > 0, not {eps}")


def krause_char_losses(model, text: str, rms: list[torch.Tensor], lr: float, lam: float, seq_len: int = SEQ_LEN,
                       eps: float = EPS, log_probs: bool = False) -> torch.Tensor:
    """Loss in nats of each character of `text` after the first, read by a copy of `model` that makes Krause et
    al.'s update after scoring each `seq_len` characters: shape (len(text) - 1,). lr = 0: the static reading.

    rms: gradient_rms(model, training text, seq_len). log_probs: the whole distribution instead, log p (N, V).
    """
    check_krause(lr, lam, eps)
    return adaptive_char_losses(model, text, seq_len, lambda m: RMSDecay(m.parameters(), rms, lr, lam, eps) if lr else None,
                                log_probs)


@dataclass
class Settings:
    lr: float | None = None  # eta, the step in units of each weight's gradient RMS; if not given (nor lam), tuned
    #                          over 0.00005, 0.0001, 0.0002 (with lam 0)
    lam: float | None = None  # lambda, the pull back toward the trained weights; if not given (nor lr), tuned over
    #                           0.002 and 0.01 at the best lr
    seq_len: int = SEQ_LEN  # characters scored between two updates
    eps: float = EPS  # added to each gradient RMS: bounds the step of a weight the training text never moved
    grad_chars: int = GRAD_CHARS  # characters of training text (the last the model trained on) the RMS is measured on


class Prepared:
    """A model with the gradient statistics of its training text: what this method's tune and char_losses read."""

    def __init__(self, model, rms: list[torch.Tensor]):
        self.model, self.rms = model, rms


def _prepare(model, trained_on: str, s: Settings, log=None) -> Prepared:
    if s.grad_chars < 2:
        raise ValueError(f"grad_chars must be at least 2, not {s.grad_chars}")
    text = trained_on[-s.grad_chars :]
    if len(text) < 2:
        raise ValueError("Krause's dynamic evaluation measures its gradients on training text, and none was given")
    if log:
        log(f"  gradient RMS measured on the last {len(text):,} characters the model trained on")
    return Prepared(model, gradient_rms(model, text, s.seq_len))


def _losses(p: Prepared, text: str, s: Settings, lr: float, lam: float) -> torch.Tensor:
    return krause_char_losses(p.model, text, p.rms, lr, lam, s.seq_len, s.eps)


def tune(p: Prepared, text: str, s: Settings, etas=ETAS, lambdas=LAMBDAS, log=None) -> tuple[tuple, dict]:
    """The (lr, lam) with the lowest loss on `text` of a search by coordinates (each reading of the text costs
    as much as training on it): every lr of `etas` at lambdas[0], then every other lam at the best of those lr.
    Returns it and the loss of every pair tried ((0, 0): the static reading)."""
    losses = {(0.0, 0.0): average(_losses(p, text, s, 0.0, 0.0))["nats"]}

    def tried(lr: float, lam: float) -> None:
        losses[lr, lam] = average(_losses(p, text, s, lr, lam))["nats"]
        if log:
            log(f"  lr {lr:<7g} lam {lam:<6g} {losses[lr, lam]:.4f} nats/char")

    for lr in etas:
        tried(lr, lambdas[0])
    best_lr = min(etas, key=lambda lr: losses[lr, lambdas[0]])
    for lam in lambdas[1:]:
        tried(best_lr, lam)
    return min(losses, key=losses.get), losses


def _tune(p: Prepared, text: str, s: Settings, log=None) -> tuple[Settings, dict[tuple, float]]:
    if (s.lr is None) != (s.lam is None):
        raise ValueError("give both lr and lam, or neither to tune both")
    if s.lr is not None:  # given: its loss on the tuning text, for the record
        check_krause(s.lr, s.lam, s.eps)
        return s, {(s.lr, s.lam): average(_losses(p, text, s, s.lr, s.lam))["nats"]}
    (lr, lam), losses = tune(p, text, s, log=log)
    return replace(s, lr=lr, lam=lam), losses


def _about(s: Settings, tuned_on: str) -> str:
    return (f"dynamic evaluation as Krause et al. (2018): after scoring each {s.seq_len} characters, a step of "
            f"{s.lr:g} in units of each weight's gradient RMS (measured on the last {s.grad_chars:,} characters the "
            f"model trained on, eps {s.eps:g}) and a pull of {s.lam:g} x RMS / mean RMS back toward the trained "
            f"weights; lr and lambda chosen on {tuned_on}")


def _char_losses(p: Prepared, text: str, s: Settings) -> torch.Tensor:
    return _losses(p, text, s, s.lr, s.lam)


def _char_log_probs(p: Prepared, text: str, s: Settings) -> torch.Tensor:
    return krause_char_losses(p.model, text, p.rms, s.lr, s.lam, s.seq_len, s.eps, log_probs=True)


PROSE = ("the network keeps learning from every 50 characters once it has scored them, each weight at the pace its "
         "gradients on training text set, and is pulled back toward its trained weights")
METHOD = Method("krause", "dynamic evaluation (Krause)", PROSE, Settings, _char_losses, _tune, _about, _prepare,
                _char_log_probs)
