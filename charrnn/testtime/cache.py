"""A continuous cache (Grave, Joulin & Usunier, ICLR 2017): a trained model that remembers, without
learning, which character followed each of its recent states.

A static network pays in full for a new speaker's name every time it comes (`python -m charrnn score
--lines`): nothing in its weights says that a name it has just read is likely to come again. The cache
adds that. At each step t the model has its distribution p_model(c) of the next character and the top
layer's output h(t). The cache holds the outputs h(i) of the last `window` steps, each with the character
x(i+1) that followed it, and predicts

    p_cache(c) = sum over i with x(i+1) = c of softmax_i(theta h(t) . h(i))
    p(c)       = (1 - lam) p_model(c) + lam p_cache(c)

so after "\\nSBRI" the state is close to the one after the last "\\nSBRI", and the "G" that followed it
gets weight. No weight changes and nothing is trained at test time: every character is predicted by
the same fixed function of the text before it, which is what distinguishes this from the paper's dynamic
model (testtime.dynamic). theta and lam are chosen on the validation slice, never on the test split.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..scoring import char_losses
from .method import Method

WINDOW = 20_000  # characters remembered: several scenes; the cost of a step grows with it
MAX_WINDOW = 200_000  # more than the test split (168,729): its ring storage is MAX_WINDOW x H floats, 0.56 GB at
#                       H = 704, and CachedModel scores QUERY_CHUNK x window at once
# The grid tune() searches, factors of 2, wide because the scale of h . h differs by cell (GRU, LSTM, sigmoid).
THETAS = tuple(0.0125 * 2**k for k in range(11))  # 0.0125 to 12.8
LAMBDAS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
QUERY_CHUNK = 1024  # steps scored against the cache at once: bounds memory at QUERY_CHUNK x window floats


def check_cache(theta: float, lam: float, window: int) -> None:
    if not (theta >= 0 and math.isfinite(theta)):
        raise ValueError(f"theta must be a finite number >= 0, not {theta}")
    if not 0 <= lam < 1:
        raise ValueError(f"lam must be in [0, 1), not {lam} (0 = the model alone)")
    if not 1 <= window <= MAX_WINDOW:
        raise ValueError(f"window must be 1 to {MAX_WINDOW:,} characters, not {window}")


class CachedModel(nn.Module):
    """`model` with a continuous cache; honours the models' contract, cached(idx, state) -> (logits, state).

    The logits are the mixture's log-probabilities, so generate, evaluate and char_losses use it as they
    use any model. Its state is the model's state, the cache's outputs (B, n, H) with the characters that
    followed them (B, n), and the last output, whose follower is the first character of the next call.
    evaluate reads it in one stream (one_stream): parallel streams would each start with an empty cache.
    """

    one_stream = True

    def __init__(self, model, theta: float, lam: float, window: int = WINDOW):
        super().__init__()
        check_cache(theta, lam, window)
        self.model, self.theta, self.lam, self.window = model, theta, lam, window
        self.vocab, self.record = model.vocab, model.record
        self.config = getattr(model, "config", None)  # a mixture (charrnn.mixture) has members, not one config

    @classmethod
    def from_record(cls, model) -> "CachedModel":
        """`model` with the cache settings its checkpoint recorded (python -m charrnn cache --record)."""
        reading = (model.record.get("final") or {}).get("cache")
        if not reading:
            raise ValueError("this checkpoint records no cache settings: run python -m charrnn cache --checkpoint "
                             "DIR --record, or give CachedModel(model, theta, lam) yourself")
        return cls(model, reading["theta"], reading["lam"], reading["window"])

    @property
    def device(self) -> torch.device:
        return self.model.device

    def encode(self, text: str) -> list[int]:
        return self.model.encode(text)

    def decode(self, ids) -> str:
        return self.model.decode(ids)

    def forward(self, idx: torch.Tensor, state=None):
        model_state, keys, followers, last = state if state is not None else (None, None, None, None)
        h, model_state = self.model.features(idx, model_state)  # (B, T, H)
        logp = F.log_softmax(self.model.readout(h).float(), -1)
        # Every output before the last, with the character that followed it, in the order read.
        keys = _cat(keys, last, h[:, :-1])  # (B, n, H): the first n0 come from earlier calls
        followers = _cat(followers, idx[:, :1] if last is not None else None, idx[:, 1:])  # (B, n)
        n0 = keys.shape[1] - (h.shape[1] - 1)
        if self.lam > 0:
            p_cache, seen_any = cache_distribution(h, keys, followers, n0, self.theta, self.window, logp.shape[-1])
            logp = mix(logp, p_cache, seen_any, self.lam)
        # The cache is a memory, not a path for gradients: a caller that trains through it must not drag
        # every earlier call's graph along.
        keys, last = keys[:, -self.window :].detach(), h[:, -1:].detach()
        return logp, (model_state, keys, followers[:, -self.window :], last)


class CacheMemory:
    """CachedModel's cache for a reader that takes one character at a time (the compressor): the last
    `window` outputs h(i) (H,) and the characters that followed them, in preallocated ring storage.

    CachedModel concatenates its keys on every call, which copies window x H floats per one-character call
    near a full window; here a step writes one row. The distribution is CachedModel's (the softmax does not
    depend on the keys' order), up to rounding.
    """

    def __init__(self, theta: float, lam: float, window: int = WINDOW):
        check_cache(theta, lam, window)
        self.theta, self.lam, self.window = theta, lam, window
        self.keys = None  # (window, H), allocated by the first add
        self.followers = torch.zeros(window, dtype=torch.long)
        self.count = 0  # pairs added so far; pair i sits in row i % window

    def add(self, h: torch.Tensor, follower: int) -> None:
        """Remember output h (H,) and the character id that followed it."""
        if self.keys is None:
            self.keys = h.new_zeros(self.window, h.shape[-1], dtype=torch.float32)
        row = self.count % self.window
        self.keys[row] = h
        self.followers[row] = follower
        self.count += 1

    def mix(self, h: torch.Tensor, p_model: torch.Tensor) -> torch.Tensor:
        """(1 - lam) p_model + lam p_cache (V,) at output h (H,), in p_model's dtype; p_model alone while empty."""
        n = min(self.count, self.window)
        if n == 0 or self.lam == 0:
            return p_model
        weights = torch.softmax(self.theta * (self.keys[:n] @ h.float()), 0)  # (n,)
        p_cache = torch.zeros_like(p_model).index_add_(0, self.followers[:n], weights.to(p_model.dtype))
        return (1 - self.lam) * p_model + self.lam * p_cache


def _cat(*parts):
    return torch.cat([p for p in parts if p is not None], 1)


def cache_distribution(h, keys, followers, n0: int, theta: float, window: int, vocab_size: int):
    """The cache's next-character distribution at each step of h (B, T, H): (B, T, V), and whether a step
    had anything in the cache (T,).

    keys (B, n, H) are the outputs read so far and followers (B, n) the character after each; key j is
    seen by step t of h when n0 + t - window <= j < n0 + t, so the first n0 keys come before h.
    """
    B, T, _ = h.shape
    p_cache = h.new_zeros(B, T, vocab_size, dtype=torch.float32)
    for a in range(0, T, QUERY_CHUNK):
        b = min(a + QUERY_CHUNK, T)
        lo, hi = max(0, n0 + a - window), n0 + b - 1  # the keys any step of [a, b) may see
        if hi <= lo:
            continue  # the first character of a text: nothing read yet
        t = torch.arange(n0 + a, n0 + b, device=h.device)[:, None]  # (b - a, 1)
        scores = h[:, a:b].float() @ keys[:, lo:hi].float().transpose(1, 2)  # (B, b - a, hi - lo)
        scores.mul_(theta)
        # Only the first and the last b - a keys of [lo, hi) can lie outside a step's window: mask those
        # two bands rather than the whole block, which costs as much as the product above.
        for c0 in {0, max(0, hi - lo - (b - a))}:
            c1 = min(c0 + b - a, hi - lo)
            j = torch.arange(lo + c0, lo + c1, device=h.device)[None, :]
            scores[:, :, c0:c1].masked_fill_((j >= t) | (j < t - window), float("-inf"))
        weights = torch.softmax(scores, -1)
        if n0 + a == 0:
            weights[:, 0] = 0.0  # the text's first step has no key: its row was all -inf
        p_cache[:, a:b] = weights @ F.one_hot(followers[:, lo:hi], vocab_size).float()
    seen_any = torch.arange(n0, n0 + T, device=h.device) > 0  # every step but a text's first has a key
    return p_cache, seen_any


def mix(logp, p_cache, seen_any, lam: float):
    """log((1 - lam) p_model + lam p_cache) from the model's log-probabilities; the model alone where the
    cache was empty."""
    mixed = torch.logaddexp(logp + math.log1p(-lam), p_cache.log() + math.log(lam))
    return torch.where(seen_any[None, :, None], mixed, logp)


@torch.inference_mode()
def tune(model, text: str, thetas=THETAS, lambdas=LAMBDAS, window: int = WINDOW, log=None):
    """The (theta, lam) of the grid with the lowest loss on `text`, and every pair's loss ((0, 0): no cache).

    The text is read once, in one pass; each theta then costs one pass of the cache over it, each lam a mix.
    The losses are those CachedModel(model, theta, lam, window) gives reading `text` in one call.
    """
    model.eval()
    ids = torch.tensor([model.encode(text)], dtype=torch.long, device=model.device)
    if ids.shape[1] < 2:
        raise ValueError("tuning the cache needs a text of at least two characters")
    h, _ = model.features(ids[:, :-1])
    logp = F.log_softmax(model.readout(h).float(), -1)
    target = ids[:, 1:, None]

    def nats(lp):
        return -lp.gather(-1, target).double().mean().item()

    losses = {(0.0, 0.0): nats(logp)}
    if log:
        log(f"  without the cache: {losses[0.0, 0.0]:.4f} nats/char")
    for theta in thetas:
        p_cache, seen_any = cache_distribution(h, h[:, :-1], ids[:, 1:-1], 0, theta, window, logp.shape[-1])
        for lam in lambdas:
            losses[theta, lam] = nats(mix(logp, p_cache, seen_any, lam))
        if log:
            log(f"  theta {theta:<8g}" + "  ".join(f"lam {lam:g}: {losses[theta, lam]:.4f}" for lam in lambdas))
    return min(losses, key=losses.get), losses


@dataclass
class Settings:
    theta: float | None = None  # sharpness of the match of states; if not given (nor lam), tuned over 0.0125 to 12.8
    lam: float | None = None  # weight of the cache in the mixture; if not given (nor theta), tuned over 0.05 to 0.5
    window: int = WINDOW  # characters the cache remembers


def _tune(model, text: str, s: Settings, log=None) -> tuple[Settings, dict[tuple, float]]:
    if (s.theta is None) != (s.lam is None):
        raise ValueError("give both theta and lam, or neither to tune both")
    if s.theta is not None:  # given: its loss on the tuning text, for the record
        check_cache(s.theta, s.lam, s.window)
        return s, {(s.theta, s.lam): tune(model, text, (s.theta,), (s.lam,), s.window)[1][s.theta, s.lam]}
    (theta, lam), losses = tune(model, text, window=s.window, log=log)
    return replace(s, theta=theta, lam=lam), losses


def _about(s: Settings, tuned_on: str) -> str:
    return (f"a continuous cache (Grave et al. 2017), which changes no weight but mixes into each prediction what "
            f"followed the model's most similar states of the last {s.window:,} characters: theta {s.theta:g}, "
            f"lambda {s.lam:g}, both chosen on {tuned_on}")


def _char_losses(model, text: str, s: Settings) -> torch.Tensor:
    # Read offline, with no deadline: pieces as long as the query blocks cost no more than one pass, while the
    # default 128-character pieces copy the cache's keys 8 times as often (lstm, 30,000 characters: +25 %).
    return char_losses(CachedModel(model, s.theta, s.lam, s.window), text, chunk=QUERY_CHUNK)


PROSE = ("the stored weights, unchanged, with a memory of what followed the model's most similar states of the last "
         "20,000 characters, so that a name once read is expected again")
METHOD = Method("cache", "continuous cache", PROSE, Settings, _char_losses, _tune, _about)
