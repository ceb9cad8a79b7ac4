"""The activation of every hidden unit at every character, and how well one unit alone tells a feature.

The units of a model are numbered in one sequence, layer by layer, each layer's groups of hidden_size units in
the order its cell's registry entry names them (cells.Cell.unit_kinds: the state of the paper RNN, the tanh RNN
and the GRU; the LSTMs' hidden state h then their cell c). An activation is given in [-1, 1], as the cell's
`units` hook reads it (the paper's sigmoid state s as 2s - 1, the form its cell computes; an LSTM's cell as
tanh(c), as in Karpathy et al. 2015). A mixture of models has no units of its own: these measures read one network.
A unit "predicts" a feature as well as its ROC AUC says: the probability that a character with the
feature gets a higher activation than one without (ties count half). A unit whose activation falls
where the feature holds predicts it too: its AUC with the sign flipped is 1 - AUC.
"""
from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F

from ..cells import CELLS
from ..mixture import Mixture
from ..model import CharRNN
from ..scoring import eval_mode

UNIT_CHUNK = 64  # units ranked at once: (64, 50,000) ranks take ~25 MB


def not_readable(model, units: bool = True) -> str | None:
    """Why the inside measures do not apply to `model`, as a clause ("it is a mixture ..."); None if they do.
    `units`: the measures that read hidden units; the others (the memory horizon, what a prediction leans on) need
    only the gradient with respect to the input, which every single network has."""
    if not isinstance(model, CharRNN):
        what = f"a mixture of {len(model.members)} models" if isinstance(model, Mixture) else f"a {type(model).__name__}"
        return (f"it is {what}, and these measures read one network's hidden units and inputs: look inside its "
                "members instead")
    if units and CELLS[model.config.cell].units is None:
        return f"its cell, {model.config.cell!r}, offers no reading of its hidden units (cells.CELLS)"
    return None


def check_readable(model, units: bool = True) -> None:
    if why := not_readable(model, units):
        raise ValueError(f"the inside measures do not apply to this model: {why}")


def model_inputs(model, idx: torch.Tensor) -> torch.Tensor:
    """idx (B, T) -> what the recurrence reads, (B, T, D): the one-hot vectors or the embeddings, as
    CharRNN.features builds them."""
    if model.embed is not None:
        return model.embed(idx)
    return F.one_hot(idx, model.config.vocab_size).to(model.head.weight.dtype)


def unit_groups(model) -> list[tuple[int, str]]:
    """(layer from 0, kind) of each group of hidden_size units, in the order the units are numbered."""
    check_readable(model)
    kinds = CELLS[model.config.cell].unit_kinds
    return [(layer, kind) for layer in range(model.config.num_layers) for kind in kinds]


def num_units(model) -> int:
    return len(unit_groups(model)) * model.config.hidden_size


def unit_name(model, index: int) -> str:
    """The unit numbered `index`, in words: "layer 2 cell 137" (layers and units counted as in the numbering,
    layers from 1)."""
    H = model.config.hidden_size
    layer, kind = unit_groups(model)[index // H]
    return f"layer {layer + 1} {kind} {index % H}"


@torch.no_grad()
def activations(model, text: str) -> Iterator[tuple[int, str, torch.Tensor]]:
    """For each group of units in numbering order: (layer, kind, activations (len(text), H) in [-1, 1]),
    row t being the state after reading text[t], the text read in one pass from the zero state.

    A generator: the groups of the later layers are not computed if the caller stops early.
    """
    groups = iter(unit_groups(model))
    with eval_mode(model) as device:
        idx = torch.tensor([model.encode(text)], dtype=torch.long, device=device)  # (1, T)
        for layer_groups in CELLS[model.config.cell].units(model.rnn, model_inputs(model, idx)):
            for acts in layer_groups:  # (1, T, H)
                layer, kind = next(groups)
                yield layer, kind, acts[0]


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
