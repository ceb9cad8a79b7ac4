"""The activation of every hidden unit at every character, and how well one unit alone tells a feature.

The units of a model are numbered in one sequence, layer by layer: the paper RNN's, the tanh RNN's and
the GRU's state (one group of hidden_size units per layer), the LSTM's hidden state h then its cell c.
An activation is given in [-1, 1]: the paper's sigmoid state s as 2s - 1 (the tanh form its cell
computes), the LSTM's cell as tanh(c) (as in Karpathy et al. 2015), the others as they are.
A unit "predicts" a feature as well as its ROC AUC says: the probability that a character with the
feature gets a higher activation than one without (ties count half). A unit whose activation falls
where the feature holds predicts it too: its AUC with the sign flipped is 1 - AUC.
"""
from __future__ import annotations

import re
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..cells import PaperRNN
from ..scoring import eval_mode

UNIT_CHUNK = 64  # units ranked at once: (64, 50,000) ranks take ~25 MB
TIME_CHUNK = 4096  # steps whose LSTM gates are computed at once: (4096, 4H) floats


def model_inputs(model, idx: torch.Tensor) -> torch.Tensor:
    """idx (B, T) -> what the recurrence reads, (B, T, D): the one-hot vectors or the embeddings, as
    CharRNN.features builds them."""
    if model.embed is not None:
        return model.embed(idx)
    return F.one_hot(idx, model.config.vocab_size).to(model.head.weight.dtype)


def unit_groups(model) -> list[tuple[int, str]]:
    """(layer from 0, kind) of each group of hidden_size units, in the order the units are numbered."""
    kinds = ("hidden", "cell") if model.config.cell == "lstm" else ("state",)
    return [(layer, kind) for layer in range(model.config.num_layers) for kind in kinds]


def num_units(model) -> int:
    return len(unit_groups(model)) * model.config.hidden_size


def unit_name(model, index: int) -> str:
    """The unit numbered `index`, in words: "layer 2 cell 137" (layers and units counted as in the numbering,
    layers from 1)."""
    H = model.config.hidden_size
    layer, kind = unit_groups(model)[index // H]
    return f"layer {layer + 1} {kind} {index % H}"


def _layer_of(key: str) -> int:
    """The layer a recurrence's parameter belongs to: weight_ih_l1 -> 1 (PyTorch), U.1 -> 1 (PaperRNN)."""
    return int(re.search(r"(?:_l|\.)(\d+)$", key).group(1))


def one_layer(rnn: nn.Module, layer: int) -> nn.Module:
    """A one-layer copy of layer `layer` of the recurrence `rnn`: fed the output of the layer below (or the
    inputs), it outputs that layer's. For the paper's RNN too: its layers above the first read the state s
    below, and a one-layer PaperRNN computes s(t) = sigmoid(U [x(t); s(t-1)] + b) of whatever x it reads."""
    H = rnn.hidden_size
    if isinstance(rnn, PaperRNN):
        sub = PaperRNN(rnn.U[layer].shape[1] - H, H, 1, 0.0)
    else:
        sub = type(rnn)(rnn.input_size if layer == 0 else H, H, 1, batch_first=True)
    sub.load_state_dict({re.sub(r"(_l|\.)\d+$", r"\g<1>0", k): v for k, v in rnn.state_dict().items()
                         if _layer_of(k) == layer})
    return sub.to(next(rnn.parameters()).device).eval()


def lstm_cells(rnn: nn.LSTM, layer: int, inp: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The cell state c of `layer` at every step, (T, H), from its input (T, D) and its hidden state (T, H)
    from the zero state: PyTorch's fused LSTM returns c at the last step only.

    c(t) = f(t) c(t-1) + i(t) g(t), the gates in PyTorch's order i, f, g, o computed from inp(t) and h(t-1).
    """
    W_ih, W_hh, b_ih, b_hh = (getattr(rnn, f"{name}_l{layer}")
                              for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    h_prev = torch.cat([h.new_zeros(1, h.shape[1]), h[:-1]])  # (T, H): h(t-1), h(-1) = 0
    c, prev = torch.empty_like(h), h.new_zeros(h.shape[1])
    for a in range(0, len(h), TIME_CHUNK):
        b = min(a + TIME_CHUNK, len(h))
        gates = inp[a:b] @ W_ih.T + b_ih + h_prev[a:b] @ W_hh.T + b_hh  # (chunk, 4H)
        i, f, g, _ = gates.chunk(4, dim=1)
        ig, f = i.sigmoid() * g.tanh(), f.sigmoid()
        for t in range(b - a):  # the recurrence itself is elementwise: a cheap loop over time
            prev = torch.addcmul(ig[t], f[t], prev)
            c[a + t] = prev
    return c


@torch.no_grad()
def activations(model, text: str) -> Iterator[tuple[int, str, torch.Tensor]]:
    """For each group of units in numbering order: (layer, kind, activations (len(text), H) in [-1, 1]),
    row t being the state after reading text[t], the text read in one pass from the zero state.

    A generator: the groups of the later layers are not computed if the caller stops early.
    """
    with eval_mode(model) as device:
        idx = torch.tensor([model.encode(text)], dtype=torch.long, device=device)  # (1, T)
        x = model_inputs(model, idx)  # (1, T, D)
        below = x  # (1, T, D)
        for layer in range(model.config.num_layers):
            out = one_layer(model.rnn, layer)(below, None)[0]  # (1, T, H): this layer's output
            if model.config.cell == "paper":
                yield layer, "state", 2 * out[0] - 1  # s in [0, 1] as its tanh form h = 2s - 1
            elif model.config.cell == "lstm":
                yield layer, "hidden", out[0]
                yield layer, "cell", lstm_cells(model.rnn, layer, below[0], out[0]).tanh()
            else:
                yield layer, "state", out[0]
            below = out


def unit_activations(model, text: str, index: int) -> torch.Tensor:
    """The activation in [-1, 1] of unit number `index` after each character of `text`, (len(text),)."""
    if not 0 <= index < num_units(model):
        raise ValueError(f"unit must be from 0 to {num_units(model) - 1}; got {index}")
    H = model.config.hidden_size
    for g, (_, _, acts) in enumerate(activations(model, text)):
        if g == index // H:
            return acts[:, index % H].cpu()


def midranks(s: torch.Tensor) -> torch.Tensor:
    """The rank (from 1) of every entry of each row of s (u, N) within its row, float64; tied entries share the
    mean of the places they occupy."""
    ranked, order = s.sort(dim=1)
    N = s.shape[1]
    place = torch.arange(N, device=s.device).expand_as(ranked)
    first = torch.ones_like(ranked, dtype=torch.bool)  # each tie group's first place in the sorted row
    first[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
    last = torch.ones_like(first)
    last[:, :-1] = first[:, 1:]
    start = torch.where(first, place, 0).cummax(dim=1).values  # (u, N): the first place of each entry's group
    end = torch.where(last, place, N - 1).flip(1).cummin(dim=1).values.flip(1)  # and its last place
    return torch.empty(s.shape, dtype=torch.float64, device=s.device).scatter_(1, order, (start + end + 2).double() / 2)


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The ROC AUC of each column of scores (N, U) as a predictor of each row of labels (F, N) bool:
    (F, U) float64, ties counted half (the Mann-Whitney statistic with mid-ranks); NaN for a feature whose
    labels are all true or all false."""
    labels = labels.to(torch.float64)
    n1 = labels.sum(1, keepdim=True)  # (F, 1)
    n0 = labels.shape[1] - n1
    out = []
    for a in range(0, scores.shape[1], UNIT_CHUNK):
        s = scores[:, a : a + UNIT_CHUNK].T.contiguous()  # (u, N)
        midrank = midranks(s).cpu()  # (u, N)
        out.append(labels @ midrank.T)  # (F, u): each feature's sum of its positives' ranks
    rank_sum = torch.cat(out, dim=1)
    auc = (rank_sum - n1 * (n1 + 1) / 2) / (n1 * n0)
    return auc.masked_fill((n1 == 0) | (n0 == 0), float("nan"))


def feature_aucs(model, text: str, labels: dict[str, list[bool]], skip: int = 0) -> torch.Tensor:
    """The AUC of every unit for every feature: (len(labels), num_units(model)) float64, over the characters of
    `text` from index `skip` on (those before only warm the state up)."""
    masks = torch.tensor([v[skip:] for v in labels.values()], dtype=torch.bool)  # (F, N)
    return torch.cat([roc_auc(acts[skip:], masks) for _, _, acts in activations(model, text)], dim=1)
