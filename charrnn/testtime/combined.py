"""The network, its continuous cache and a count-based model of the text read so far, mixed by weights that
themselves learn as they read: the context-mixing compressors' recipe with a neural network among the
predictors.

At each character three predictors give the probability of what comes next:

    network   the network as it reads the text: adapting by Krause et al.'s update or the paper's dynamic
              model, with the settings its checkpoint records for that reading, or its weights alone. For a
              mixture (charrnn.mixture), each member is a predictor of its own, read in its own recorded way
    cache     the continuous cache's own distribution p_cache (testtime.cache) over the stored weights'
              states, with the checkpoint's recorded theta and window
    counts    character n-grams of orders 0 to `order`, counted on the training text the model trained on
              and then on the text as it is read, interpolated from the longest context down (Witten-Bell)
    words     (where the tuning text chose it) the same counts over word contexts, as the context-mixing
              compressors' word models: the letters of the word so far, and those after the previous word

and the mixture is p(c) = sum_i w_i p_i(c), w = softmax(a_s), with one weight vector a_s per length s of
the longest context the counts have seen (how much the counts know here). After each character, a_s takes
a gradient step on -log p(c) at rate `mixer_lr`: weights are set before each character is read, so every
character is coded from the text before it. mixer_lr is chosen on the validation slice, never the test split.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Literal

import torch

from ..scoring import average, char_losses
from .cache import cache_distribution
from .dynamic import METHOD as DYNAMIC
from .dynamic import adaptive_char_losses
from .krause import METHOD as KRAUSE
from .method import Method

ORDER = 5  # longest character context counted: about a word
STATIC_PIECE = 1024  # characters a network reading by its weights alone reads at once
MIXER_RATES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)  # the grid tune() searches (0.2, its edge, was gru-large's best of 0.005-0.2)


class Counts:
    """Counts of every character that followed each context, of orders 0 to `order`: order 0 is the empty context,
    order k the k characters before (`contexts` says what the orders are; a subclass can count other contexts)."""

    def __init__(self, order: int, vocab_size: int):
        self.order, self.V = order, vocab_size
        self.n = [defaultdict(lambda: defaultdict(int)) for _ in range(order + 1)]  # n[k][context][c]
        self.total = [defaultdict(int) for _ in range(order + 1)]  # the context's count, N
        self.kinds = [defaultdict(int) for _ in range(order + 1)]  # distinct characters after it, T

    def contexts(self, ids: list[int], i: int) -> list[tuple]:
        """The contexts of orders 1, 2, ... of ids[i], each longer than the last: here ids[i-k:i]."""
        return [tuple(ids[i - k : i]) for k in range(1, min(self.order, i) + 1)]

    def add(self, ids: list[int], i: int) -> None:
        """Count ids[i] after each of its contexts."""
        c = ids[i]
        for k, ctx in enumerate([(), *self.contexts(ids, i)]):
            seen = self.n[k][ctx]
            if seen[c] == 0:
                self.kinds[k][ctx] += 1
            seen[c] += 1
            self.total[k][ctx] += 1

    def prob(self, ids: list[int], i: int) -> tuple[float, int]:
        """p(ids[i] | ids[:i]) interpolated from order 0 up (Witten-Bell: p_k = (n + T p_{k-1}) / (N + T)), and the
        longest order whose context has been seen."""
        c = ids[i]
        p = (self.n[0][()][c] + 1) / (self.total[0][()] + self.V)  # order 0, add-one
        longest = 0
        for k, ctx in enumerate(self.contexts(ids, i), 1):
            N = self.total[k].get(ctx, 0)
            if N == 0:
                break  # longer contexts of an unseen one are unseen too
            T = self.kinds[k][ctx]
            p, longest = (self.n[k][ctx].get(c, 0) + T * p) / (N + T), k
        return p, longest


class WordCounts(Counts):
    """Counts over word contexts: order 1 is the letters of the current word so far (empty between words), order 2
    those and the previous word. They know a word's spelling and which word follows which, however long the words."""

    def __init__(self, vocab):
        super().__init__(2, len(vocab))
        self.letter = [ch.isalpha() for ch in vocab.chars]

    def contexts(self, ids: list[int], i: int) -> list[tuple]:
        j = i
        while j > 0 and self.letter[ids[j - 1]]:
            j -= 1
        word = tuple(ids[j:i])
        while j > 0 and not self.letter[ids[j - 1]]:  # the separators before it: spaces, punctuation, line breaks
            j -= 1
        end = j
        while j > 0 and self.letter[ids[j - 1]]:
            j -= 1
        return [("w", *word), (*ids[j:end], "w", *word)]


def count_probs(primer: str, text: str, vocab, order: int = ORDER, counts: Counts | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """For each character of `text` after the first: its probability under the counts (primed on `primer`, then
    on `text` as read) and the longest context seen, each (len(text) - 1,). `counts`: what to count (default:
    character n-grams of orders 0 to `order`)."""
    ids_p, ids = vocab.encode(primer), vocab.encode(text)
    counts = counts or Counts(order, len(vocab))
    for i in range(len(ids_p)):
        counts.add(ids_p, i)
    probs, longest = [], []
    for i in range(1, len(ids)):  # text[0] is given, as in every reading; it is counted with its own contexts
        counts.add(ids, i - 1)
        p, s = counts.prob(ids, i)
        probs.append(p)
        longest.append(s)
    return torch.tensor(probs, dtype=torch.float64), torch.tensor(longest)


@torch.inference_mode()
def cache_distributions(model, text: str, theta: float, window: int) -> torch.Tensor:
    """p_cache over the vocabulary at each character of `text` after the first (uniform where the cache is still
    empty): (len(text) - 1, V) float32."""
    model.eval()
    ids = torch.tensor([model.encode(text)], dtype=torch.long, device=model.device)
    h, _ = model.features(ids[:, :-1])  # (1, N, H)
    p, seen = cache_distribution(h, h[:, :-1], ids[:, 1:-1], 0, theta, window, len(model.vocab.chars))
    return torch.where(seen.cpu()[:, None], p[0].cpu(), 1 / len(model.vocab.chars))


def cache_probs(model, text: str, theta: float, window: int) -> torch.Tensor:
    """p_cache of each character of `text` after the first (1 / V where the cache is still empty): (len(text) - 1,)."""
    ids = torch.tensor(model.encode(text)[1:])
    return cache_distributions(model, text, theta, window).gather(-1, ids[:, None])[:, 0].double()


def mix_losses(q: torch.Tensor, select: torch.Tensor, lr: float) -> torch.Tensor:
    """-log sum_i w_i q_i at each step, w = softmax(a[select[t]]) learning as it reads.

    q (N, M): each predictor's probability of the character that came; select (N,): which weight vector.
    """
    if not (lr >= 0 and math.isfinite(lr)):
        raise ValueError(f"mixer_lr must be a finite number >= 0, not {lr}")
    a = torch.zeros(int(select.max()) + 1, q.shape[1], dtype=torch.float64)  # equal weights to start
    losses = torch.empty(q.shape[0], dtype=torch.float64)
    for t in range(q.shape[0]):
        s = select[t]
        w = torch.softmax(a[s], 0)
        p = (w * q[t]).sum()
        losses[t] = -math.log(p)
        a[s] -= lr * (w - w * q[t] / p)  # d(-log p) / d a_s
    return losses


@dataclass
class Settings:
    mixer_lr: float | None = None  # rate of the mixer's weights; if not given, tuned over 0.005 to 1
    # How the network reads: as recorded for that method; best: by the recorded update (krause or dynamic) that
    # did best on the tuning text (its weights alone if it records neither), for each member of a mixture
    adapt: Literal["krause", "dynamic", "static", "best"] = "krause"
    order: int = ORDER  # longest character context the counts use
    # 1: word counts as a fourth predictor, 0: none; chosen on the tuning text unless given. Readings recorded
    # before it existed were made without them.
    words: int | None = field(default=None, metadata={"recorded_before": 0})


class Network:
    """One network as the combination reads it: by its weights alone (adapt "static") or by a recorded update, through
    that method of the registry with the settings its checkpoint records for it (and what the method measures on the
    training text first: Krause's gradient RMS, measured when first needed).

    Where the environment names a directory in CHARRNN_READINGS_CACHE, each whole reading (log_probs) is kept there,
    under the network's weights, its settings, the text and the training text: a reading of the test split by an
    adapting network takes minutes, and a mixer tuned again reads the same distributions."""

    UPDATES = {m.key: m for m in (KRAUSE, DYNAMIC)}

    def __init__(self, net, adapt: str, trained_on: str, log=None):
        self.adapt, self.method = adapt, self.UPDATES.get(adapt)
        self.net, self.trained_on, self.log, self._ready = net, trained_on, log, None
        self.settings = None if self.method is None else self.method.settings_of(_recorded(net, adapt))

    @property
    def ready(self):
        if self._ready is None:
            self._ready = self.net if self.method is None else self.method.ready(self.net, self.trained_on,
                                                                                 self.settings, self.log)
        return self._ready

    def losses(self, text: str) -> torch.Tensor:
        """The loss of each character of `text` after the first."""
        if self.method is None:
            return char_losses(self.ready, text)
        return self.method.char_losses(self.ready, text, self.settings)

    def log_probs(self, text: str) -> torch.Tensor:
        """log p of every character of the vocabulary at each character of `text` after the first, (N, V) float32."""
        if self.method is None:  # one pass, no step: pieces of any length read the same
            return kept([self.net.record.get("weights_sha256"), "static", text],
                        lambda: adaptive_char_losses(self.ready, text, STATIC_PIECE, lambda m: None, log_probs=True))
        return kept([self.net.record.get("weights_sha256"), self.adapt, dataclasses.asdict(self.settings), text,
                     self.trained_on], lambda: self.method.char_log_probs(self.ready, text, self.settings))


def kept(key: list, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """compute(), kept under `key` (JSON-able; texts in it are hashed) in the directory CHARRNN_READINGS_CACHE names,
    if it names one, and read from there when it is already kept."""
    root = os.environ.get("CHARRNN_READINGS_CACHE")
    if not root:
        return compute()
    key = [hashlib.sha256(k.encode()).hexdigest() if isinstance(k, str) and len(k) > 64 else k for k in key]
    path = Path(root) / f"{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:32]}.pt"
    if path.exists():
        return torch.load(path)
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(value, path.with_suffix(".tmp"))
    os.replace(path.with_suffix(".tmp"), path)  # a reading cut short leaves nothing behind
    return value


class Prepared:
    """The networks the combination reads (the model, or a mixture's members), the model, the text it trained on."""

    def __init__(self, model, trained_on: str, networks: list[Network]):
        self.model, self.trained_on, self.networks = model, trained_on, networks


def _recorded(model, key: str) -> dict:
    reading = (model.record.get("final") or {}).get(key)
    if not reading:
        raise ValueError(f"the combination reads with the checkpoint's recorded {key} settings, and it has none: run "
                         f"python -m charrnn {key} --checkpoint DIR --record first")
    return reading


def best_update(model) -> str:
    """The recorded update (krause or dynamic) with the lowest loss on its tuning text; static if none is recorded.
    Resolved when the text is read, from the records as they are then: after recording a new update for a member of
    a mixture, record the mixture's combination again (test_shipped's replay of it turns red otherwise)."""
    final = model.record.get("final") or {}
    tuned = {key: min(final[key]["tuning"].values()) for key in ("krause", "dynamic") if final.get(key)}
    return min(tuned, key=tuned.get) if tuned else "static"


def _prepare(model, trained_on: str, s: Settings, log=None) -> Prepared:
    if s.order < 0:
        raise ValueError(f"order must be at least 0, not {s.order}")
    if s.words not in (None, 0, 1):
        raise ValueError(f"words must be 0 (no word counts) or 1, not {s.words}")
    _recorded(model, "cache")
    networks = []
    for net in getattr(model, "members", [model]):
        adapt = best_update(net) if s.adapt == "best" else s.adapt
        if log:
            log(f"  network {len(networks) + 1}: {'its weights alone' if adapt == 'static' else adapt}")
        networks.append(Network(net, adapt, trained_on, log))
    return Prepared(model, trained_on, networks)


def predictors(p: Prepared, text: str, s: Settings) -> tuple[torch.Tensor, torch.Tensor]:
    """Each predictor's probability of each character of `text` after the first, (N, M): each network, the cache,
    the character counts, then the word counts (unless s.words is 0); and the mixer's selector."""
    model = p.model
    q = [(-net.losses(text).double()).exp() for net in p.networks]
    cache = model.record["final"]["cache"]
    q.append(cache_probs(model, text, cache["theta"], cache["window"]))
    counts, longest = count_probs(p.trained_on, text, model.vocab, s.order)
    q.append(counts)
    if s.words != 0:
        q.append(count_probs(p.trained_on, text, model.vocab, counts=WordCounts(model.vocab))[0])
    return torch.stack(q, 1), longest


def _tune(p: Prepared, text: str, s: Settings, log=None) -> tuple[Settings, dict[tuple, float]]:
    q, select = predictors(p, text, s)  # with the word counts, the last column, unless s.words is 0
    rates = (s.mixer_lr,) if s.mixer_lr is not None else MIXER_RATES
    losses = {}
    for words in (s.words,) if s.words is not None else (0, 1):
        columns = q if s.words is not None else q[:, : q.shape[1] - 1 + words]  # both tried: drop the last for 0
        for lr in rates:
            losses[(lr, words)] = mix_losses(columns, select, lr).mean().item()
            if log:
                log(f"  mixer_lr {lr:<6g} words {words}  {losses[(lr, words)]:.4f} nats/char")
    lr, words = min(losses, key=losses.get)
    return replace(s, mixer_lr=lr, words=words), losses


def _about(s: Settings, tuned_on: str) -> str:
    net = {"krause": "read with its recorded Krause update", "dynamic": "read with its recorded dynamic update",
           "static": "its weights alone", "best": "or each member of a mixture, read with its recorded update that did "
                                                  "best on the tuning text"}[s.adapt]
    words = " and word counts (the word so far, the word before)" if s.words else ""
    return (f"the network ({net}), its continuous cache, character counts of orders 0 to {s.order}{words} (primed on "
            f"the training text, learning the text as it is read), mixed by weights that learn as they read, one set per "
            f"length of the longest context the counts have seen, at rate {s.mixer_lr:g} chosen on {tuned_on}")


def _char_losses(p: Prepared, text: str, s: Settings) -> torch.Tensor:
    q, select = predictors(p, text, s)
    return mix_losses(q, select, s.mixer_lr).float()


PROSE = ("the network, reading as it learns, mixed with its continuous cache and with counts of the characters that "
         "followed each short context so far, by weights that learn which to trust as they read")
METHOD = Method("combined", "network + cache + counts, mixed", PROSE, Settings, _char_losses, _tune, _about, _prepare)
