"""The models. Every one honours the same contract: model(idx, state=None) -> (logits, state).

idx is (B, T) character ids, logits (B, T, vocab_size) score the next character at every step,
and state is whatever the recurrence carries from one call to the next (None = start of text).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import Vocab

CELLS = ("paper", "rnn", "gru", "lstm")


@dataclass
class ModelConfig:
    vocab: str  # the characters the model knows, sorted; token id i is vocab[i]
    cell: str = "paper"  # "paper": Mikolov 2010's sigmoid Elman RNN; "rnn": tanh Elman; "gru"; "lstm"
    hidden_size: int = 256  # size of s(t); the paper used 30-500 for word models
    num_layers: int = 1  # the paper has one recurrent layer; more is one of the improvements to compare
    embed_size: int = 0  # 0 = one-hot input, as in the paper; >0 = a learned embedding of that size
    dropout: float = 0.0  # between layers and before the output layer; regularises the big models

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}: choose one of {', '.join(CELLS)}")
        if self.hidden_size < 1 or self.num_layers < 1 or self.embed_size < 0:
            raise ValueError("hidden_size and num_layers must be >= 1, embed_size >= 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        if len(self.vocab) < 2 or len(set(self.vocab)) != len(self.vocab):
            raise ValueError("vocab must hold at least two distinct characters")

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)


class PaperRNN(nn.Module):
    """Mikolov et al. (2010), eq. 1-3, one layer per entry of `U`:

        x(t) = [w(t); s(t-1)]            w(t) one-hot (or an embedding), s(0) = 0
        s(t) = sigmoid(U x(t) + b)
        y(t) = softmax(V s(t))

    The parameters are exactly the paper's U, b, V. For speed the recurrence runs as a tanh RNN
    (one fused C++/CUDA kernel instead of a Python loop over time), using the identity
    sigmoid(z) = (1 + tanh(z/2)) / 2: with h = 2s - 1,

        h(t) = tanh(U_w/2 w(t) + U_s/4 h(t-1) + b/2 + U_s 1/4)

    which is the same function of the same parameters, so gradients reach U, b, V unchanged.
    Above the first layer the input is the sigmoid state s of the layer below, re-parametrised the same way.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        self.hidden_size = hidden_size
        self.dropout = dropout
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        # U^l is (H, in + H): the columns multiply [w(t); s(t-1)] as in the paper.
        self.U = nn.ParameterList([nn.Parameter(torch.empty(hidden_size, n + hidden_size)) for n in sizes])
        self.b = nn.ParameterList([nn.Parameter(torch.zeros(hidden_size)) for _ in sizes])
        for U, n in zip(self.U, sizes):
            nn.init.uniform_(U, -(n + hidden_size) ** -0.5, (n + hidden_size) ** -0.5)

    def forward(self, x: torch.Tensor, s: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, in) is the one-hot or embedded input; s (L, B, H) the previous states in [0, 1]."""
        B = x.shape[0]
        if s is None:
            s = x.new_zeros(len(self.U), B, self.hidden_size)
        inp, below_is_state, states = x, False, []
        for l, (U, b) in enumerate(zip(self.U, self.b)):
            n_in = U.shape[1] - self.hidden_size
            U_in, U_s = U[:, :n_in], U[:, n_in:]
            W_ih = U_in / 4 if below_is_state else U_in / 2  # a state input is (1 + h)/2 as well
            bias = b / 2 + U_s.sum(1) / 4 + (U_in.sum(1) / 4 if below_is_state else 0)
            h0 = (2 * s[l] - 1).unsqueeze(0)  # (1, B, H)
            h, _ = torch.rnn_tanh(inp, h0, [W_ih, U_s / 4, bias, torch.zeros_like(bias)],
                                  True, 1, 0.0, self.training, False, True)  # (B, T, H)
            out = (1 + h) / 2  # back to the paper's s(t), (B, T, H)
            states.append(out[:, -1])
            if l + 1 < len(self.U):
                # Dropout acts on s, then the next layer sees it in its tanh form 2s - 1.
                inp, below_is_state = 2 * F.dropout(out, self.dropout, self.training) - 1, True
        return out, torch.stack(states)  # (B, T, H), (L, B, H)


class CharRNN(nn.Module):
    """A character-level language model: input (one-hot or embedding) -> recurrence -> V -> logits."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.vocab = Vocab(config.vocab)
        V, H, E = config.vocab_size, config.hidden_size, config.embed_size
        self.embed = nn.Embedding(V, E) if E else None
        input_size = E or V
        if config.cell == "paper":
            self.rnn = PaperRNN(input_size, H, config.num_layers, config.dropout)
        else:
            rnn_cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[config.cell]
            self.rnn = rnn_cls(input_size, H, config.num_layers, batch_first=True,
                               dropout=config.dropout if config.num_layers > 1 else 0.0)
        # The paper's output layer y = softmax(V s) has no bias; the gated cells get the usual one.
        self.head = nn.Linear(H, V, bias=config.cell != "paper")

    def forward(self, idx: torch.Tensor, state=None):
        """idx (B, T) -> logits (B, T, V), new state."""
        out, state = self.features(idx, state)
        out = F.dropout(out, self.config.dropout, self.training)
        return self.head(out), state

    def features(self, idx: torch.Tensor, state=None):
        """idx (B, T) -> the top layer's output (B, T, H) that the head reads, new state."""
        if self.embed is not None:
            x = self.embed(idx)  # (B, T, E)
        else:
            x = F.one_hot(idx, self.config.vocab_size).to(self.head.weight.dtype)  # (B, T, V)
        return self.rnn(x, state)

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
        return asdict(self.config)


def map_state(state, fn):
    """Apply `fn` to each tensor of a recurrent state: one tensor, or the LSTM's (h, c); None stays None."""
    if state is None:
        return None
    return tuple(fn(s) for s in state) if isinstance(state, tuple) else fn(state)


def detach_state(state):
    """Cut the graph between chunks of truncated BPTT, keeping the values."""
    return map_state(state, torch.Tensor.detach)
