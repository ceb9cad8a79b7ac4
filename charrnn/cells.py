"""The recurrent cells, and the registry that describes each one in a single entry.

A cell is a module with the contract of PyTorch's batch-first recurrences: cell(x, state) -> (out, state),
x (B, T, in), out (B, T, H) the top layer's output at every step, state None at the start of a text.
Everything else the project needs to know about a cell (its name in a model card, its Hub tag, whether
the output layer has a bias) is in its `CELLS` entry, so that adding a cell is one entry and one class.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F


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
        inp, states = x, []
        for l in range(len(self.U)):
            W_ih, W_hh, bias = self.tanh_weights(l)
            h0 = (2 * s[l] - 1).unsqueeze(0)  # (1, B, H)
            h, _ = torch.rnn_tanh(inp, h0, [W_ih, W_hh, bias, torch.zeros_like(bias)],
                                  True, 1, 0.0, self.training, False, True)  # (B, T, H)
            out = (1 + h) / 2  # back to the paper's s(t), (B, T, H)
            states.append(out[:, -1])
            if l + 1 < len(self.U):
                # Dropout acts on s, then the next layer sees it in its tanh form 2s - 1.
                inp = 2 * F.dropout(out, self.dropout, self.training) - 1
        return out, torch.stack(states)  # (B, T, H), (L, B, H)

    def tanh_weights(self, l: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Layer l as a tanh RNN: h(t) = tanh(W_ih x(t) + W_hh h(t-1) + bias), with h = 2s - 1 and x the
        input (layer 0) or the tanh form 2s - 1 of the layer below. W_ih (H, in), W_hh (H, H), bias (H,)."""
        U, b = self.U[l], self.b[l]
        n_in = U.shape[1] - self.hidden_size
        U_in, U_s = U[:, :n_in], U[:, n_in:]
        if l == 0:
            return U_in / 2, U_s / 4, b / 2 + U_s.sum(1) / 4
        # A state input s = (1 + h)/2 is re-parametrised as the layer's own state is.
        return U_in / 4, U_s / 4, b / 2 + U_s.sum(1) / 4 + U_in.sum(1) / 4


def _torch_cell(cls) -> Callable[..., nn.Module]:
    """A builder for PyTorch's fused nn.RNN / nn.GRU / nn.LSTM with the registry's signature."""
    def build(input_size: int, hidden_size: int, num_layers: int, dropout: float) -> nn.Module:
        # PyTorch applies its dropout between layers only, and warns when there is a single layer.
        return cls(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0)
    return build


@dataclass(frozen=True)
class Cell:
    build: Callable[..., nn.Module]  # (input_size, hidden_size, num_layers, dropout) -> the recurrence
    card_name: str  # what the model card calls it
    tag: str  # its tag on the Hugging Face Hub
    head_bias: bool = True  # whether the output layer V has a bias


CELLS: dict[str, Cell] = {
    # The paper's output layer y = softmax(V s) has no bias; the other cells get the usual one.
    "paper": Cell(PaperRNN, "simple (Elman) RNN with sigmoid state, Mikolov et al. (2010)", "mikolov-2010",
                  head_bias=False),
    "rnn": Cell(_torch_cell(nn.RNN), "Elman RNN with tanh state", "elman-rnn"),
    "gru": Cell(_torch_cell(nn.GRU), "GRU", "gru"),
    "lstm": Cell(_torch_cell(nn.LSTM), "LSTM", "lstm"),
}
