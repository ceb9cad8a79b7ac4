"""The parts of a context-mixing compressor's last stages (paq8px, cmix), over a character vocabulary: a fixed
binary tree that codes each character as a path of yes/no decisions, the logistic domain (stretch, squash), a
mixer whose weight sets are chosen by small contexts with a second layer over several of them, and the adaptive
probability map (APM, or SSE) that corrects a probability given a context.

Every part here reads a decision's inputs before the decision and learns from its outcome after it, so what it
gives a decision depends on the decisions before it only. testtime.mixing puts them together.
"""
from __future__ import annotations

import heapq

import numpy as np

P_MIN = 1 / 4096  # no decision is given less: one wrong decision costs at most 8.3 nats
ST_MAX = float(np.log((1 - P_MIN) / P_MIN))


def stretch(p):
    """ln(p / (1 - p)), the logistic domain, p clipped to [P_MIN, 1 - P_MIN]."""
    p = np.clip(p, P_MIN, 1 - P_MIN)
    return np.log(p / (1 - p))


def squash(x):
    """The inverse of stretch: 1 / (1 + e^-x), kept within [P_MIN, 1 - P_MIN]."""
    return 1 / (1 + np.exp(-np.clip(x, -ST_MAX, ST_MAX)))


class Tree:
    """A Huffman tree over the vocabulary, built from how often each character comes in a text: a character is
    coded as the decisions on its path from the root (about 4.5 for French prose, against 7 for a balanced tree),
    the common ones decided first.

    Internal nodes are numbered 0..J-1, the root 0. under (J, V): which characters lie under each node; right
    (J, V): which lie under its "1" branch. path[c]: the nodes on c's path; bits[c]: the branch taken at each.
    """

    def __init__(self, counts):
        V = len(counts)
        if V < 2:
            raise ValueError("a binary tree over the vocabulary needs at least two characters")
        # Each entry: (count, tie-breaker, the characters under it, its children); ties broken by creation order
        heap = [(int(n) + 1, c, (c,), None) for c, n in enumerate(counts)]  # +1: a character never seen still codes
        heapq.heapify(heap)
        made = V
        while len(heap) > 1:
            a, b = heapq.heappop(heap), heapq.heappop(heap)
            heapq.heappush(heap, (a[0] + b[0], made, a[2] + b[2], (a, b)))
            made += 1
        nodes = []  # breadth first from the root, so the root is node 0

        def number(root):
            queue = [root]
            while queue:
                node = queue.pop(0)
                if node[3] is not None:
                    nodes.append(node)
                    queue.extend(node[3])

        number(heap[0])
        index = {id(n): j for j, n in enumerate(nodes)}
        self.J, self.V = len(nodes), V
        self.under = np.zeros((self.J, V), bool)
        self.right = np.zeros((self.J, V), bool)
        self.depth = np.zeros(self.J, np.int64)
        self.path, self.bits = [[] for _ in range(V)], [[] for _ in range(V)]
        for j, node in enumerate(nodes):
            self.under[j, list(node[2])] = True
            self.right[j, list(node[3][1][2])] = True
            for bit, child in enumerate(node[3]):
                if child[3] is not None:
                    self.depth[index[id(child)]] = self.depth[j] + 1
        for c in range(V):
            for j in np.nonzero(self.under[:, c])[0]:  # breadth-first numbering: ancestors in order of depth
                self.path[c].append(int(j))
                self.bits[c].append(int(self.right[j, c]))
        self.path = [np.array(p) for p in self.path]
        self.bits = [np.array(b, np.float64) for b in self.bits]
        self.max_depth = max(len(p) for p in self.path)

    def decisions(self, dist: np.ndarray, eps: float = 0.0) -> np.ndarray:
        """The probability of the "1" branch at every node under a distribution over the vocabulary, dist (..., V)
        -> (..., J); eps is added to both branches' masses (for a count vector, or a distribution with zeros)."""
        r = dist @ self.right.T.astype(dist.dtype)
        s = dist @ self.under.T.astype(dist.dtype)
        return (r + eps) / (s + 2 * eps)

    def log_dist(self, p: np.ndarray) -> np.ndarray:
        """log P(c) for every character, from the probability p (J,) of the "1" branch at every node: (V,)."""
        lp1, lp0 = np.log(p), np.log1p(-p)
        return np.array([np.where(b > 0, lp1[j], lp0[j]).sum() for j, b in zip(self.path, self.bits)])


class Mixer:
    """A two-layer logistic mixer (paq8px's Mixer): each of the first layer's mixers has one weight vector per value of
    its selecting context, and gives squash(w . x) for the inputs x (stretched probabilities); the second layer mixes
    their stretched outputs the same way, its weights chosen by a context of its own. After the decision each weight
    vector that was used takes a step of rate lr on its own log loss, w += lr (bit - p) x.

    sizes: how many values each first-layer context takes; size2: the second layer's. Every weight vector starts as
    init (K,): the first layer starts at what init says (e.g. the networks' mean), the second at the mean of the first.
    """

    def __init__(self, init: np.ndarray, sizes: list[int], size2: int, lr: float, lr2: float):
        self.offsets = np.cumsum([0, *sizes[:-1]])
        self.w1 = np.tile(init, (sum(sizes), 1))  # (all sets, K)
        m = len(sizes)
        self.w2 = np.full((size2, m + 1), 1 / m)
        self.w2[:, -1] = 0.0  # the bias's weight
        self.lr, self.lr2 = lr, lr2

    def predict(self, x: np.ndarray, select: np.ndarray, select2: np.ndarray) -> np.ndarray:
        """x (D, K) the inputs of D decisions; select (M, D) each first-layer context's value at each, select2 (D,).
        Returns the probability of "1" at each decision (D,); keeps what update needs."""
        self.rows = select + self.offsets[:, None]  # (M, D)
        self.x = x
        self.p1 = squash(np.einsum("mdk,dk->md", self.w1[self.rows], x))  # (M, D)
        self.x2 = np.concatenate([stretch(self.p1).T, np.ones((x.shape[0], 1))], 1)  # (D, M + 1)
        self.select2 = select2
        self.p2 = squash((self.w2[select2] * self.x2).sum(1))
        return self.p2

    def update(self, bits: np.ndarray, taken: slice | np.ndarray = slice(None)) -> None:
        """Learn from the outcomes `bits` of the decisions predict() read at positions `taken` (default: all). The
        decisions of one character use distinct weight vectors (every context names the node), so the steps add up."""
        rows, x = self.rows[:, taken], self.x[taken]
        self.w1[rows] += self.lr * (bits - self.p1[:, taken])[..., None] * x
        self.w2[self.select2[taken]] += self.lr2 * (bits - self.p2[taken])[:, None] * self.x2[taken]


class APM:
    """An adaptive probability map (paq's APM, SSE): for each context, a table over 33 points of the stretched
    probability, each point a probability; a prediction is the interpolation between the two points around
    stretch(p), and both move toward the outcome in proportion to their share of it, at `rate`. A new context maps
    each p to itself."""

    POINTS = 33

    def __init__(self, contexts: int, rate: float):
        grid = np.linspace(-ST_MAX, ST_MAX, self.POINTS)
        self.t = np.tile(squash(grid), (contexts, 1))  # (contexts, 33)
        self.step = grid[1] - grid[0]
        self.rate = rate

    def predict(self, p: np.ndarray, ctx: np.ndarray) -> np.ndarray:
        pos = (stretch(p) + ST_MAX) / self.step
        lo = np.minimum(pos.astype(np.int64), self.POINTS - 2)
        self.ctx, self.lo, self.frac = ctx, lo, pos - lo
        return self.t[ctx, lo] * (1 - self.frac) + self.t[ctx, lo + 1] * self.frac

    def update(self, bits: np.ndarray, taken: slice | np.ndarray = slice(None)) -> None:
        ctx, lo, frac = self.ctx[taken], self.lo[taken], self.frac[taken]
        self.t[ctx, lo] += self.rate * (1 - frac) * (bits - self.t[ctx, lo])
        self.t[ctx, lo + 1] += self.rate * frac * (bits - self.t[ctx, lo + 1])


class CountMap:
    """paq8's indirect modelling of counts: how often the "1" branch was taken after a context whose counts under the
    two branches were (n0, n1), learned per kind of context and pair of bucketed counts, rather than taken to be
    n1 / (n0 + n1). One occurrence of an order-6 context is no evidence of the same weight as one of an order-1 one.
    Each entry moves toward the outcome by 1 / (times seen + 1.5), the times seen capped at `limit`."""

    EDGES = np.array([0, 1, 2, 3, 4, 5, 7, 10, 15, 23, 35, 61, 100, 200])  # bucket b holds EDGES[b] <= n < EDGES[b+1]

    def __init__(self, kinds: int, limit: int = 255):
        B = len(self.EDGES)
        e0, e1 = np.meshgrid(self.EDGES, self.EDGES, indexing="ij")
        self.p = np.tile((e1 + 0.4) / (e0 + e1 + 0.8), (kinds, 1, 1)).reshape(kinds, B * B)  # starts at KT's estimate
        self.n = np.zeros_like(self.p)
        self.kind = np.arange(kinds)[:, None]
        self.limit, self.B = limit, B

    def predict(self, n0: np.ndarray, n1: np.ndarray) -> np.ndarray:
        """n0, n1 (kinds, D): the counts under each decision's two branches -> the probability of "1" (kinds, D)."""
        b0 = np.searchsorted(self.EDGES, n0, side="right") - 1
        b1 = np.searchsorted(self.EDGES, n1, side="right") - 1
        self.cell = b0 * self.B + b1
        return self.p[self.kind, self.cell]

    def update(self, bits: np.ndarray, taken: slice | np.ndarray = slice(None)) -> None:
        cell = self.cell[:, taken]
        kind = np.broadcast_to(self.kind, cell.shape)
        step = (bits - self.p[kind, cell]) / (self.n[kind, cell] + 1.5)
        np.add.at(self.p, (kind, cell), step)  # a cell met twice in one character takes both steps
        np.add.at(self.n, (kind, cell), 1)
        np.minimum(self.n, self.limit, out=self.n)
