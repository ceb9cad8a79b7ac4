"""Context mixing: the networks, the cache and the compressors' models of text, mixed as paq8px and cmix mix their
models, in the logistic domain, by mixers whose weights are chosen by small contexts, a second mixer layer over
them and two adaptive probability maps.

Per binary decision, not per character. Each character is coded as the path of yes/no decisions from the root of
a fixed Huffman tree over the vocabulary to its leaf (logistic.Tree), and every predictor's character distribution
gives each decision a probability (the mass under the "1" branch over the mass under the node). Mixing is then a
logistic regression per decision, where a weighted sum of stretched probabilities is the paq8px/cmix mixer
exactly; and an APM, which corrects one probability given a context, needs a binary probability to correct. Mixing
whole distributions (testtime.combined) can only weigh each predictor's distribution as a whole; per decision a
predictor can be trusted for "a capital or not" and distrusted for "which capital".

The inputs of each decision, stretched:

    networks   each network's reading: by its weights alone, and by its best recorded update (Krause's or the
               paper's dynamic one, through combined.Network); for a mixture, each member's two readings
    cache      the continuous cache's own distribution, with the checkpoint's recorded theta and window
    counts     (n_1 + a) / (n + 2a) of the characters under the node's branches, after each context of
               textmodels.NAMES (orders 1-6, the word so far, the word pair, the line so far), primed on the text
               the model trained on; an unseen context gives 1/2, stretched to 0. And the same counts through a
               CountMap (paq8's indirect model: what a pair of counts has meant so far, per kind of context)
    Witten-Bell  the character counts of orders 0 to 6 interpolated into one distribution (as combined's)
    linear     the adapted networks, the cache and Witten-Bell mixed linearly by weights learned per longest order
               seen (combined's mixer, over whole distributions): where they are best mixed as probabilities
    match      the character that followed the longest earlier occurrence of the context: at a node above it, the
               probability (learned per match length) that the decision goes its way, signed toward it
    bias       1

Five first-layer mixers, each with one weight set per value of its context, each context naming the node or the
depth (so that the decisions of one character use distinct weights and may be learned after the character, all at
once): the node; the previous character and the depth; the two previous characters and the depth; the column and
whether a speaker's name is being read, and the depth; how many distinct characters the adapted networks expect,
the match length, and the depth. The second layer mixes their outputs with one weight set per node and longest
order of context seen before. Then two APMs (the node and the previous character; the node and the two previous
characters, hashed) and p = (2 p_mix + p_apm1 + p_apm2) / 4. On the first 20,000 characters of the mixture's
validation slice, the second-order mixer and the second layer's order took 0.0010 nats/char off; the APMs, as
weighted here, less than 0.0001 (kept, as issue 29 asks; weighing them otherwise is left to try).

Every stage learns from a decision only after it, so each character is coded from the text before it: a decoder
(part 2 of issue 29) makes the same decisions one by one. All settings are chosen on the validation slice.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch

from . import combined
from .logistic import APM, CountMap, Mixer, Tree, stretch
from .method import Method
from .textmodels import MIN_MATCH, NAMES, ORDERS, Contexts, Counts, Match, Primed

COUNT_EPS = 0.4  # a: the prior mass of each branch in a count's probability (Krichevsky-Trofimov's 1/2, a little less)
APM_RATE = 0.02  # how fast an APM's points move toward the outcome
APM2_CONTEXTS = 1 << 17  # the second APM's contexts (node, two previous characters), hashed to this many
MATCH_BUCKETS = 17  # match lengths 0 (none), then 6..64 in steps of 4
LINEAR_RATE = 0.2  # the linear mixer's rate: combined's, chosen there on the validation slices
# What tune() searches, one setting at a time in this order, each from the best of the one before
# (a reading of the validation slice takes about a minute: factors of 2 to 2.5 around where the search starts, the
# best of a first look at the first 20,000 characters of the mixture's validation slice)
RATES = (0.002, 0.005, 0.01)
RATES2 = (0.001, 0.002, 0.005)
LIMITS = (60.0, 250.0, 1000.0)
DEFAULTS = {"lr": 0.005, "lr2": 0.002, "limit": 250.0}  # where the search starts


@dataclass
class Settings:
    lr: float | None = None  # the first-layer mixers' rate; if not given, tuned over 0.002, 0.005, 0.01
    lr2: float | None = None  # the second layer's rate; if not given, tuned over 0.001, 0.002, 0.005
    limit: float | None = None  # a context's counts are halved past this sum; if not given, tuned over 60, 250, 1000
    adapt: Literal["krause", "dynamic", "static", "best"] = "best"  # each network's reading beside its weights alone



class Prepared:
    """What the mixing reads: the model, the networks (each by its weights alone and, unless adapt is static, by its
    update), the cache's settings, the text the model trained on, and the tree built from that text's counts."""

    def __init__(self, model, trained_on: str, networks: list, adapted: list):
        self.model, self.trained_on, self.networks, self.adapted = model, trained_on, networks, adapted
        self.cache = model.record["final"]["cache"]
        self.primer = np.array(model.encode(trained_on), np.int64)
        self.tree = Tree(np.bincount(self.primer, minlength=len(model.vocab.chars)))
        self._contexts = (None, None)

    def contexts(self, text: str) -> tuple[np.ndarray, Contexts, Primed]:
        """The ids of the training text and `text` one after the other, their contexts, and the counts primed on
        the training text: the same for every setting, so kept for the last text asked (tune reads one many times)."""
        if self._contexts[0] != text:
            ids = np.concatenate([self.primer, np.array(self.model.encode(text), np.int64)])
            ctx = Contexts(ids, self.model.vocab.chars)
            self._contexts = (text, (ids, ctx, Primed(ctx.keys, ids, len(self.primer), len(self.model.vocab.chars))))
        return self._contexts[1]


def _prepare(model, trained_on: str, s: Settings, log=None) -> Prepared:
    combined._recorded(model, "cache")
    if not trained_on:
        raise ValueError("the mixing primes its counts on the text the model trained on, and none was given")
    members = getattr(model, "members", [model])
    static = [combined.Network(net, "static", trained_on) for net in members]
    adapted = []
    if s.adapt != "static":
        adapted = combined._prepare(model, trained_on, combined.Settings(adapt=s.adapt), log).networks
    return Prepared(model, trained_on, static + adapted, adapted)


def _decisions(p: Prepared, log_probs: torch.Tensor) -> np.ndarray:
    """The probability of the "1" branch at every node under each character's distribution: (N, J) float32."""
    return p.tree.decisions(log_probs.double().exp().numpy()).astype(np.float32)


class Inputs:
    """What the networks and the cache say at each character of a text after the first: their stretched decisions
    st (N, J, M) (each network by its weights alone, then by its update, then the cache), their distributions
    `linear` (L, N, V) for the linear mixer (the adapted networks, or all if none adapts, and the cache), and how
    many distinct characters those networks expect most, `distinct` (N,): how far they agree."""

    def __init__(self, st: np.ndarray, linear: np.ndarray, distinct: np.ndarray):
        self.st, self.linear, self.distinct = st, linear, distinct


def predictors(p: Prepared, text: str) -> Inputs:
    """The networks' and the cache's readings of `text` (see Inputs)."""
    model, c = p.model, p.cache
    cache = combined.kept([model.record.get("weights_sha256"), "cache", c["theta"], c["window"], text],
                          lambda: combined.cache_distributions(model, text, c["theta"], c["window"]))
    readings = [net.log_probs(text) for net in p.networks]
    st = np.stack([stretch(_decisions(p, lp)) for lp in [*readings, cache]], -1).astype(np.float32)
    chosen = readings[len(p.networks) - len(p.adapted):] if p.adapted else readings  # the adapted, or all
    top = torch.stack([lp.argmax(-1) for lp in chosen], 1)  # (N, networks)
    linear = np.stack([lp.exp().numpy() for lp in chosen] + [cache.numpy()])
    return Inputs(st, linear, np.array([len(set(row)) for row in top.tolist()]))


def read(p: Prepared, text: str, s: Settings, full: bool = False) -> np.ndarray:
    """The loss (nats) of each character of `text` after the first, (N,); full: log P of every character of the
    vocabulary instead, (N, V), from every node's decision (the loss reads the path of what came only: each node's
    decision depends on the text before the character, not on the other decisions of the same character)."""
    check(s)
    tree, V, J, D = p.tree, p.tree.V, p.tree.J, p.tree.max_depth
    ids, ctx, primed = p.contexts(text)
    P = len(p.primer)
    inputs = predictors(p, text)
    counts = Counts(primed, ctx.keys, ids, s.limit)
    order0 = np.bincount(p.primer, minlength=V).astype(np.float64)
    count_map = CountMap(len(NAMES))
    match = Match(ctx.keys[ORDERS - 1], ids, P)
    match_p, match_n = np.full(MATCH_BUCKETS, 0.5), np.zeros(MATCH_BUCKETS)
    a_lin = np.zeros((ORDERS + 1, len(inputs.linear) + 1))  # the linear mixer's weights (softmax), per longest order
    right, under = tree.right.astype(np.float32), tree.under.astype(np.float32)
    M, C = inputs.st.shape[2], len(NAMES)
    K = M + 2 * C + 4  # the readings, the counts raw and mapped, the match, Witten-Bell, the linear mixer, the bias
    init = np.zeros(K)
    n_adapted = len(p.adapted)
    init[n_adapted : 2 * n_adapted] = 1 / max(1, n_adapted)  # starts as the adapted networks' mean
    if not n_adapted:
        init[: M - 1] = 1 / (M - 1)
    mixer = Mixer(init, [J, V * D, V * V * D, 8 * 3 * D, 4 * MATCH_BUCKETS * D], J * (ORDERS + 1), s.lr, s.lr2)
    apm1, apm2 = APM(J * V, APM_RATE), APM(APM2_CONTEXTS, APM_RATE)
    out = np.zeros((len(text) - 1, V) if full else len(text) - 1)
    every = np.arange(J)
    for i in range(P, len(ids)):
        n, rows = counts.at(i)
        if i > P:  # text[0] is given, as in every reading; it is counted with its own contexts
            t, c = i - P - 1, int(ids[i])
            nodes = every if full else tree.path[c]

            def branch(dist):  # stretch(p of "1") at each node under a distribution (V,)
                return stretch((dist @ right[nodes].T) / (dist @ under[nodes].T))

            expect, length = match.expected(i)
            bucket = 0 if length == 0 else 1 + (length - MIN_MATCH) // 4
            longest = next((k for k in range(ORDERS, 0, -1) if rows[k - 1] is not None), 0)
            r, m = n @ right[nodes].T, n @ under[nodes].T  # (C, D): the counts under each node's "1" branch, under it
            wb = witten_bell(order0, n[:ORDERS])
            parts = np.concatenate([inputs.linear[:, t], wb[None]])  # (L + 1, V)
            w_lin = np.exp(a_lin[longest] - a_lin[longest].max())
            w_lin /= w_lin.sum()
            x = np.empty((len(nodes), K))
            x[:, :M] = inputs.st[t, nodes]
            x[:, M : M + C] = stretch((r + COUNT_EPS) / (m + 2 * COUNT_EPS)).T
            x[:, M + C : M + 2 * C] = stretch(count_map.predict(m - r, r)).T
            toward = under[nodes, expect] * (2 * right[nodes, expect] - 1) if expect >= 0 else 0.0  # +1, -1, 0
            x[:, -4] = toward * stretch(match_p[bucket])
            x[:, -3] = branch(wb)
            x[:, -2] = branch(w_lin @ parts)
            x[:, -1] = 1.0
            depth, c1, c2 = tree.depth[nodes], int(ids[i - 1]), int(ids[i - 2])
            column = min(int(ctx.column[i]), 7)
            select = np.stack([nodes, c1 * D + depth, (c2 * V + c1) * D + depth, (column * 3 + ctx.name[i]) * D + depth,
                               ((min(inputs.distinct[t], 4) - 1) * MATCH_BUCKETS + bucket) * D + depth])
            pm = mixer.predict(x, select, longest * J + nodes)
            a1 = apm1.predict(pm, c1 * J + nodes)
            a2 = apm2.predict(pm, ((c2 * V + c1) * J + nodes) * 0x9E3779B1 % APM2_CONTEXTS)
            pr = (2 * pm + a1 + a2) / 4
            bits = tree.bits[c]
            if full:
                out[t] = tree.log_dist(pr)
            else:
                out[t] = -np.log(np.where(bits > 0, pr, 1 - pr)).sum()
            # Learn from what came: the decisions on its path (taken: where they sit among those predicted)
            taken = np.searchsorted(nodes, tree.path[c]) if full else slice(None)
            for stage in (mixer, apm1, apm2, count_map):
                stage.update(bits, taken)
            q = parts[:, c]
            a_lin[longest] -= LINEAR_RATE * (w_lin - w_lin * q / (w_lin @ q))  # d(-log p) / d a, as combined's
            if expect >= 0:  # the match's probability of being right, at the decisions on the path above it
                above = under[tree.path[c], expect] > 0
                for hit in (right[tree.path[c], expect] == bits)[above]:
                    match_n[bucket] = min(match_n[bucket] + 1, 255)
                    match_p[bucket] += (hit - match_p[bucket]) / (match_n[bucket] + 0.5)
        else:
            match.expected(i)
        order0[ids[i]] += 1
        counts.add(i, rows)
        match.add(i)
    return out


def witten_bell(order0: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The counts' distribution interpolated from order 0 up (Witten-Bell, as combined.Counts, over every character at
    once): order0 (V,) the characters' counts, n (orders, V) the counts after the contexts of orders 1, 2, ..."""
    p = (order0 + 1) / (order0.sum() + len(order0))
    for row in n:
        N = row.sum()
        if N == 0:
            break  # longer contexts of an unseen one are unseen too
        T = np.count_nonzero(row)
        p = (row + T * p) / (N + T)
    return p


def check(s: Settings) -> None:
    for name in ("lr", "lr2"):
        v = getattr(s, name)
        if not (v is not None and 0 <= v < 1):
            raise ValueError(f"{name} must be a number in [0, 1), not {v}")
    if not (s.limit is not None and s.limit >= 2):
        raise ValueError(f"limit must be a number of at least 2, not {s.limit}")


def tune(p: Prepared, text: str, s: Settings, log=None) -> tuple[Settings, dict[tuple, float]]:
    """The settings with the lowest loss on `text` by a search of one setting at a time (lr, then lr2, then limit),
    each from the best so far; those given are kept. Returns them and every tried triple's loss."""
    losses: dict[tuple, float] = {}
    best = replace(s, **{k: v if getattr(s, k) is None else getattr(s, k) for k, v in DEFAULTS.items()})

    def tried(trial: Settings) -> float:
        key = (trial.lr, trial.lr2, trial.limit)
        if key not in losses:
            losses[key] = float(read(p, text, trial).mean())
            if log:
                log(f"  lr {trial.lr:<6g} lr2 {trial.lr2:<6g} limit {trial.limit:<6g} {losses[key]:.4f} nats/char")
        return losses[key]

    tried(best)
    for name, grid in (("lr", RATES), ("lr2", RATES2), ("limit", LIMITS)):
        if getattr(s, name) is None:
            best = min((replace(best, **{name: v}) for v in grid), key=tried)
    return best, losses


def _about(s: Settings, tuned_on: str) -> str:
    net = "its weights alone" if s.adapt == "static" else "its weights alone and its recorded update" + (
        " that did best on the tuning text" if s.adapt == "best" else f" ({s.adapt})")
    return (f"context mixing per binary decision (a Huffman tree over the vocabulary): each network ({net}), the "
            f"continuous cache, counts after character contexts of orders 1 to 6, the word, the word pair and the "
            f"line so far (halved past {s.limit:g}), and a match model, mixed in the logistic domain by four mixers "
            f"whose weights are chosen by small contexts (rate {s.lr:g}) and a second layer (rate {s.lr2:g}), then two "
            f"APMs; the settings chosen on {tuned_on}")


def _char_losses(p: Prepared, text: str, s: Settings) -> torch.Tensor:
    return torch.from_numpy(read(p, text, s)).float()


PROSE = ("the networks, read as they learn and by their weights alone, their cache, counts of what followed each "
         "short context, word and line, and the longest earlier match, mixed decision by decision as the "
         "strongest compressors mix their models")
METHOD = Method("mixing", "context mixing", PROSE, Settings, _char_losses, tune, _about, _prepare)
