"""The model. Every model honours the same contract: model(idx, state=None) -> (logits, state).

idx is (B, T) character ids, logits (B, T, vocab_size) score the next character at every step,
and state is whatever the recurrence carries from one call to the next (None = start of text).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from .cells import CELLS, sequence_dropout
from .data import Vocab
from .flags import check_choices
from .kinds import NETWORK


@dataclass
class ModelConfig:
    vocab: str  # the characters the model knows, sorted; token id i is vocab[i]
    cell: str = "paper"  # "paper": Mikolov 2010's sigmoid Elman RNN; "rnn": tanh Elman; "gru"; "lstm"; "ln-lstm": LSTM
    #                      with layer normalisation; "mingru": minimal GRU, a parallel scan; "transformer": a causal
    #                      transformer, its key/value cache carried as the state (see cells.CELLS)
    hidden_size: int = 256  # size of s(t); the paper used 30-500 for word models
    num_layers: int = 1  # the paper has one recurrent layer; more is one of the improvements to compare
    embed_size: int = 0  # 0 = one-hot input, as in the paper; >0 = a learned embedding of that size
    dropout: float = 0.0  # between layers and before the output layer; regularises the big models
    input_dropout: float = 0.0  # dropout on the input (embedding or one-hot) of the first layer; 0 = off
    dropout_mask: Literal["step", "sequence"] = "step"  # dropout on the input, between layers and on the output
    #                          draws a new mask at every step, or one per sequence ("locked", as AWD-LSTM)
    weight_drop: float = 0.0  # DropConnect on the recurrent weights W_hh (AWD-LSTM): this fraction of the matrix
    #                           dropped, one mask per sequence, before the fused kernel runs; 0 = off
    heads: int = 0  # the transformer's attention heads (0: one per 64 of hidden_size); other cells take none
    window: int = 0  # the transformer's attention window: each character sees itself and window - 1 before it
    #                  (0: 256); other cells take none

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}: choose one of {', '.join(CELLS)}")
        if self.hidden_size < 1 or self.num_layers < 1 or self.embed_size < 0:
            raise ValueError("hidden_size and num_layers must be >= 1, embed_size >= 0")
        check_choices(self)
        if not all(0.0 <= p < 1.0 for p in (self.dropout, self.input_dropout, self.weight_drop)):
            raise ValueError("dropout, input_dropout and weight_drop must be in [0, 1)")
        if self.regularised and CELLS[self.cell].regularised is None:
            offered = ", ".join(k for k, c in CELLS.items() if c.regularised)
            raise ValueError(f"weight_drop and dropout_mask 'sequence' are offered for the {offered} cells, not {self.cell!r}")
        if self.cell == "transformer":  # the defaults that 0 stands for, written out so that the record shows them
            self.heads, self.window = self.heads or max(1, self.hidden_size // 64), self.window or 256
            if self.heads < 1 or self.window < 1 or self.hidden_size % self.heads:
                raise ValueError(f"the transformer needs heads >= 1 dividing hidden_size ({self.hidden_size}) and "
                                 f"window >= 1, not heads {self.heads}, window {self.window}")
        elif self.heads or self.window:
            raise ValueError(f"heads and window are the transformer's settings: the {self.cell!r} cell takes none")
        if len(self.vocab) < 2 or len(set(self.vocab)) != len(self.vocab):
            raise ValueError("vocab must hold at least two distinct characters")

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def locked(self) -> bool:
        return self.dropout_mask == "sequence"

    @property
    def regularised(self) -> bool:
        """Whether the recurrence is built with DropConnect and locked dropout (cells.Cell.regularised)."""
        return bool(self.weight_drop) or self.locked


class CharRNN(nn.Module):
    """A character-level language model: input (one-hot or embedding) -> recurrence -> V -> logits.

    `record` is the checkpoint's config.json as loaded (history, final losses, command); {} for a new model.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.vocab = Vocab(config.vocab)
        self.record: dict = {}
        V, H, E = config.vocab_size, config.hidden_size, config.embed_size
        cell = CELLS[config.cell]
        self.embed = nn.Embedding(V, E) if E else None
        if config.regularised:
            self.rnn = cell.regularised(E or V, H, config.num_layers, config.dropout, config.weight_drop,
                                        config.locked)
        else:
            self.rnn = cell.build(E or V, H, config.num_layers, config.dropout,
                                  **{name: getattr(config, name) for name in cell.options})
        self.head = nn.Linear(H, V, bias=cell.head_bias)

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def forward(self, idx: torch.Tensor, state=None):
        """idx (B, T) -> logits (B, T, V), new state."""
        out, state = self.features(idx, state)
        return self.readout(out), state

    def features(self, idx: torch.Tensor, state=None):
        """idx (B, T) -> the top layer's output (B, T, H) that the head reads, new state."""
        if self.embed is not None:
            x = self.embed(idx)  # (B, T, E)
        else:
            x = F.one_hot(idx, self.config.vocab_size).to(self.head.weight.dtype)  # (B, T, V)
        if self.config.input_dropout:
            x = sequence_dropout(x, self.config.input_dropout, self.config.locked, self.training)
        return self.rnn(x, state)

    def readout(self, out: torch.Tensor) -> torch.Tensor:
        """The top layer's output (B, T, H) -> logits (B, T, V): dropout (in training), then V."""
        return self.head(sequence_dropout(out, self.config.dropout, self.config.locked, self.training))

    # The model knows its vocabulary, so callers never handle a separate stoi/itos.
    def encode(self, text: str) -> list[int]:
        return self.vocab.encode(text)

    def decode(self, ids) -> str:
        return self.vocab.decode(ids)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def num_weights(self) -> int:
        """Weights used per character in a forward pass (embedding rows are lookups, not multiplies)."""
        return sum(p.numel() for n, p in self.named_parameters() if not n.startswith("embed."))

    def config_dict(self) -> dict:
        return {"kind": NETWORK, **asdict(self.config)}


def with_vocab(model: CharRNN, config: ModelConfig) -> CharRNN:
    """A new model built with `config`, holding `model`'s weights: `config` may add characters to the vocabulary
    and change settings that own no weights (dropout), nothing else.

    Each weight keeps its value. A dimension that spans the vocabulary grows by the added characters at their
    sorted places: the embedding's rows, the one-hot input's columns of the first layer (the paper RNN's U
    holds them before its state's columns: every cell takes its input first), the output layer's rows. The
    added characters' input weights are those the architecture initialises (from torch's generator: seed it);
    their output rows (and bias) are zero, so the logits of the characters the model knew are unchanged, and
    so its prediction among them: each added one starts at logit 0 in every context, until training moves it.
    """
    old, new = model.config.vocab, config.vocab
    if not set(old) <= set(new):
        raise ValueError(f"the new vocabulary lacks characters of the model's: {''.join(sorted(set(old) - set(new)))!r}")
    grown = CharRNN(config).to(model.device)
    added = len(new) - len(old)
    place = torch.tensor([new.index(c) for c in old], device=model.device)  # the new id of each old id, (V_old,)
    state = grown.state_dict()
    with torch.no_grad():
        for name, w in model.state_dict().items():
            target = state[name]
            grows = [d for d in range(w.dim()) if w.shape[d] != target.shape[d]]
            if not grows:
                target.copy_(w)
                continue
            d = grows[0]
            if len(grows) > 1 or target.shape[d] - w.shape[d] != added:
                raise ValueError(f"{name} has shape {list(w.shape)}, {list(target.shape)} with the new vocabulary: "
                                 "only a vocabulary dimension may grow, by the characters added")
            # The vocabulary's positions first, then what follows it (the paper RNN's state columns) shifted.
            index = torch.cat([place, torch.arange(len(new), target.shape[d], device=model.device)])
            target.index_copy_(d, index, w)
        added_ids = [i for i, c in enumerate(new) if c not in old]
        state["head.weight"][added_ids] = 0
        if "head.bias" in state:
            state["head.bias"][added_ids] = 0
    grown.load_state_dict(state)
    return grown


def map_state(state, fn):
    """Apply `fn` to each tensor of a recurrent state: one tensor, or a tuple of states (the LSTM's (h, c), a
    mixture's members' states); None stays None."""
    if state is None:
        return None
    return tuple(map_state(s, fn) for s in state) if isinstance(state, tuple) else fn(state)


def detach_state(state):
    """Cut the graph between chunks of truncated BPTT, keeping the values."""
    return map_state(state, torch.Tensor.detach)


def select_streams(state, rows):
    """The state of streams `rows` (an index or a list of them) of a batch's state (charrnn.kinds: every tensor has
    the streams as dimension 1)."""
    return map_state(state, lambda s: s[:, rows])


def num_streams(state) -> int:
    """How many streams a (non-None) state carries."""
    while isinstance(state, tuple):
        state = state[0]
    return state.shape[1]


def zero_row(state, row: int) -> None:
    """Reset one stream's recurrent state, in place, to the start-of-text state (zeros; s(0) = 0 in the paper)."""
    map_state(state, lambda s: s[:, row].zero_())
