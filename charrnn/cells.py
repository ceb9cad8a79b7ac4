"""The recurrent cells, and the registry that describes each one in a single entry.

The rnn, gru and lstm cells also come regularised as AWD-LSTM (Merity et al. 2018; LockedRecurrence), the
layer-normalised LSTM (Ba et al. 2016; LayerNormLSTM) is its own cell, and so is the minimal GRU (Feng et al. 2024;
MinGRU), whose recurrence is linear in its state and so trains as a parallel scan over the sequence.

A cell is a module with the contract of PyTorch's batch-first recurrences: cell(x, state) -> (out, state),
x (B, T, in), out (B, T, H) the top layer's output at every step, state None at the start of a text.
Everything else the project needs to know about a cell (its name in a model card, its Hub tag, whether
the output layer has a bias, how its hidden units are read) is in its `CELLS` entry, so that adding a cell is
one entry and one class.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .transformer import Transformer


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
            out = self.layer(l, inp, s[l])  # (B, T, H)
            states.append(out[:, -1])
            if l + 1 < len(self.U):
                # Dropout acts on s, then the next layer sees it in its tanh form 2s - 1.
                inp = 2 * F.dropout(out, self.dropout, self.training) - 1
        return out, torch.stack(states)  # (B, T, H), (L, B, H)

    def layer(self, l: int, inp: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Layer l's state s(t) in [0, 1] at every step, (B, T, H), from its input (B, T, in) (the one-hot or embedded
        text, or the tanh form 2s - 1 of the layer below) and its previous state s (B, H)."""
        W_ih, W_hh, bias = self.tanh_weights(l)
        h, _ = torch.rnn_tanh(inp, (2 * s - 1).unsqueeze(0), [W_ih, W_hh, bias, torch.zeros_like(bias)],
                              True, 1, 0.0, self.training, False, True)  # (B, T, H)
        return (1 + h) / 2  # back to the paper's s(t)

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


def locked_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout with one mask per sequence (Gal & Ghahramani 2016, AWD-LSTM's "locked" dropout): x (B, T, D) loses
    the same units at every step of a sequence, so the recurrence sees a consistently thinned input."""
    if not training or p == 0:
        return x
    mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - p) / (1 - p)  # (B, 1, D)
    return x * mask


def sequence_dropout(x: torch.Tensor, p: float, locked: bool, training: bool) -> torch.Tensor:
    """Dropout on x (B, T, D): locked (one mask per sequence) or a new mask at every step."""
    return locked_dropout(x, p, training) if locked else F.dropout(x, p, training)


def drop_connect(weight: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """DropConnect (Wan et al. 2013) on a weight matrix: each entry dropped with probability p, the rest scaled by
    1 / (1 - p); one mask per call, so every step of the sequence uses the same thinned matrix."""
    if not training or p == 0:
        return weight
    return weight * weight.new_empty(weight.shape).bernoulli_(1 - p) / (1 - p)


class LockedRecurrence(nn.Module):
    """PyTorch's fused RNN, GRU or LSTM kernel, one layer at a time, regularised as AWD-LSTM (Merity et al. 2018):
    DropConnect on each layer's recurrent matrix W_hh, drawn on the matrix before the kernel runs (so training
    keeps the fused kernel's speed), and dropout between the layers, locked (one mask per sequence) or not.

    State as nn.GRU / nn.LSTM: (L, B, H), or the LSTM's pair of them.
    """

    def __init__(self, kind: str, input_size: int, hidden_size: int, num_layers: int, dropout: float,
                 weight_drop: float = 0.0, locked: bool = False):
        super().__init__()
        cls, self.kernel = {"rnn": (nn.RNN, torch.rnn_tanh), "gru": (nn.GRU, torch.gru), "lstm": (nn.LSTM, torch.lstm)}[kind]
        self.lstm, self.hidden_size = kind == "lstm", hidden_size
        self.dropout, self.weight_drop, self.locked = dropout, weight_drop, locked
        self.layers = nn.ModuleList(cls(n, hidden_size, 1, batch_first=True)
                                    for n in [input_size] + [hidden_size] * (num_layers - 1))

    def forward(self, x: torch.Tensor, state=None):
        L, B = len(self.layers), x.shape[0]
        if state is None:
            zeros = x.new_zeros(L, B, self.hidden_size)
            state = (zeros, zeros) if self.lstm else zeros
        inp, hs, cs = x, [], []
        for l, layer in enumerate(self.layers):
            params = [layer.weight_ih_l0, drop_connect(layer.weight_hh_l0, self.weight_drop, self.training),
                      layer.bias_ih_l0, layer.bias_hh_l0]
            if self.lstm:
                out, h, c = self.kernel(inp, (state[0][l : l + 1], state[1][l : l + 1]), params, True, 1, 0.0,
                                        self.training, False, True)  # (B, T, H), (1, B, H), (1, B, H)
                cs.append(c)
            else:
                out, h = self.kernel(inp, state[l : l + 1], params, True, 1, 0.0, self.training, False, True)
            hs.append(h)
            if l + 1 < L:
                inp = sequence_dropout(out, self.dropout, self.locked, self.training)
        h = torch.cat(hs)  # (L, B, H)
        return out, ((h, torch.cat(cs)) if self.lstm else h)


class LayerNormLSTM(nn.Module):
    """An LSTM with layer normalisation (Ba, Kiros & Hinton 2016, eq. 20-22), at each layer:

        (i, f, g, o) = LN(W_h h(t-1)) + LN(W_x x(t)) + b
        c(t) = sigmoid(f) c(t-1) + sigmoid(i) tanh(g)
        h(t) = sigmoid(o) tanh(LN(c(t)))

    each LN with its own gain and bias. Normalising inside the step rules the fused kernel out: the recurrence
    is a loop over time in Python (`python -m charrnn bench train` measures what that costs). DropConnect on W_h
    and dropout between layers (locked or not) as in LockedRecurrence. State: (h, c), each (L, B, H).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float, weight_drop: float = 0.0,
                 locked: bool = False):
        super().__init__()
        H, sizes = hidden_size, [input_size] + [hidden_size] * (num_layers - 1)
        self.hidden_size, self.dropout, self.weight_drop, self.locked = H, dropout, weight_drop, locked
        bound = H**-0.5  # PyTorch's LSTM initialisation
        self.W_x = nn.ParameterList([nn.Parameter(torch.empty(4 * H, n).uniform_(-bound, bound)) for n in sizes])
        self.W_h = nn.ParameterList([nn.Parameter(torch.empty(4 * H, H).uniform_(-bound, bound)) for _ in sizes])
        self.b = nn.ParameterList([nn.Parameter(torch.zeros(4 * H)) for _ in sizes])
        self.ln_x = nn.ModuleList(nn.LayerNorm(4 * H) for _ in sizes)
        self.ln_h = nn.ModuleList(nn.LayerNorm(4 * H) for _ in sizes)
        self.ln_c = nn.ModuleList(nn.LayerNorm(H) for _ in sizes)

    def forward(self, x: torch.Tensor, state=None):
        L, B = len(self.W_x), x.shape[0]
        if state is None:
            state = (x.new_zeros(L, B, self.hidden_size), x.new_zeros(L, B, self.hidden_size))
        inp, hs, cs = x, [], []
        for l in range(L):
            out, c = self.layer(l, inp, state[0][l], state[1][l])
            hs.append(out[:, -1])
            cs.append(c)
            if l + 1 < L:
                inp = sequence_dropout(out, self.dropout, self.locked, self.training)
        return out, (torch.stack(hs), torch.stack(cs))

    def layer(self, l: int, inp: torch.Tensor, h: torch.Tensor, c: torch.Tensor, cells: list | None = None):
        """Layer l over its input (B, T, in) from the state h, c (B, H): its output h at every step (B, T, H) and
        its last cell state c (B, H); each step's c is appended to `cells` if one is given."""
        W_h = drop_connect(self.W_h[l], self.weight_drop, self.training)
        from_x = self.ln_x[l](inp @ self.W_x[l].T) + self.b[l]  # (B, T, 4H): every step at once
        outs = []
        for t in range(inp.shape[1]):
            i, f, g, o = (from_x[:, t] + self.ln_h[l](h @ W_h.T)).chunk(4, -1)  # each (B, H)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(self.ln_c[l](c))
            outs.append(h)
            if cells is not None:
                cells.append(c)
        return torch.stack(outs, 1), c  # (B, T, H), (B, H)


def log_g(x: torch.Tensor) -> torch.Tensor:
    """log g(x) for minGRU's positive activation g(x) = x + 0.5 for x >= 0, sigmoid(x) otherwise (continuous at 0)."""
    return torch.where(x >= 0, (F.relu(x) + 0.5).log(), -F.softplus(-x))


def linear_scan(log_a: torch.Tensor, log_b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """h(t) = a(t) h(t-1) + b(t) at every step, (B, T, H), from log a and log b (B, T, H) and h0 (B, H), in
    parallel over time (Heinsen 2023): with A(t) = sum_{s<=t} log a(s),

        h(t) = exp(A(t)) h0 + exp(A(t) + logcumsumexp_{s<=t}(log b(s) - A(s)))

    h0 is added outside the logarithms, so a start-of-text state of zeros needs no log 0."""
    A = log_a.cumsum(1)
    return A.exp() * h0.unsqueeze(1) + (A + (log_b - A).logcumsumexp(1)).exp()


class MinGRU(nn.Module):
    """The minimal GRU (Feng et al. 2024, "Were RNNs All We Needed?", its log-space version), at each layer:

        z(t) = sigmoid(W_z x(t) + b_z)          h~(t) = g(W_h x(t) + b_h)
        h(t) = (1 - z(t)) h(t-1) + z(t) h~(t)    g(x) = x + 0.5 if x >= 0 else sigmoid(x)

    Neither gate reads h(t-1), so the recurrence is linear in h and a whole chunk runs as one parallel scan in log
    space (linear_scan) instead of a loop over time. In float32 the scan's cumulative sum of log(1 - z) loses
    precision as it grows, so it runs SCAN steps at a time, the state carried from each piece to the next (the
    forms agree within 1e-4 at T = 1,024; tests/test_mingru.py). A single step (writing) is the recurrence itself.
    h stays positive (a convex mix of positive h~ and h(0) = 0). The layers are stacked as the other cells are
    (the paper's plain stacking, without its extra layers): each layer's input the output of the one below, with
    dropout between. State (L, B, H), as nn.GRU's.
    """

    SCAN = 64  # steps per piece of the parallel scan in float32 (float64 scans the whole chunk at once)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        self.hidden_size, self.dropout = hidden_size, dropout
        # One product gives both pre-activations: rows [:H] for z, [H:] for h~.
        self.gates = nn.ModuleList(nn.Linear(n, 2 * hidden_size)
                                   for n in [input_size] + [hidden_size] * (num_layers - 1))

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None):
        """x (B, T, in), state (L, B, H) -> the top layer's h at every step (B, T, H), new state (L, B, H)."""
        L, B = len(self.gates), x.shape[0]
        if state is None:
            state = x.new_zeros(L, B, self.hidden_size)
        inp, last = x, []
        for l in range(L):
            out = self.layer(l, inp, state[l])
            last.append(out[:, -1])
            if l + 1 < L:
                inp = F.dropout(out, self.dropout, self.training)
        return out, torch.stack(last)

    def layer(self, l: int, inp: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Layer l's h at every step (B, T, H) from its input (B, T, in) and its previous state h (B, H)."""
        k, pre = self.gates[l](inp).chunk(2, -1)  # (B, T, H) each
        if inp.shape[1] == 1:  # one step: the recurrence as written
            g = torch.where(pre >= 0, pre + 0.5, torch.sigmoid(pre))
            return torch.lerp(h.unsqueeze(1), g, torch.sigmoid(k))
        # The scan in float32 at least: its cumulative sums in bfloat16 (the bf16 writing form) lose the state.
        dtype, work = k.dtype, torch.float64 if k.dtype == torch.float64 else torch.float32
        k, pre, h = k.to(work), pre.to(work), h.to(work)
        log_a, log_b = -F.softplus(k), -F.softplus(-k) + log_g(pre)  # log(1 - z), log(z h~)
        piece = inp.shape[1] if work == torch.float64 else self.SCAN
        outs = []
        for a in range(0, inp.shape[1], piece):
            outs.append(linear_scan(log_a[:, a : a + piece], log_b[:, a : a + piece], h))
            h = outs[-1][:, -1]
        return torch.cat(outs, 1).to(dtype)


def _torch_cell(cls) -> Callable[..., nn.Module]:
    """A builder for PyTorch's fused nn.RNN / nn.GRU / nn.LSTM with the registry's signature."""
    def build(input_size: int, hidden_size: int, num_layers: int, dropout: float) -> nn.Module:
        # PyTorch applies its dropout between layers only, and warns when there is a single layer.
        return cls(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0)
    return build


# How a cell's hidden units are read (the Inside view, charrnn.inside): a hook of its registry entry, called in eval
# mode on the recurrence as built, rnn(x (B, T, in)) -> for each layer in turn, its groups of hidden_size units at
# every step, (B, T, H) each, in [-1, 1] and in the order of the entry's unit_kinds. A generator: the later layers
# are not computed if the caller stops early.

def _paper_units(rnn: PaperRNN, x: torch.Tensor):
    """The paper's state s in [0, 1] as its tanh form 2s - 1, the form its recurrence computes."""
    inp = x
    for l in range(len(rnn.U)):
        h = 2 * rnn.layer(l, inp, x.new_zeros(x.shape[0], rnn.hidden_size)) - 1  # (B, T, H)
        yield [h]
        inp = h


def _one_layer_modules(rnn: nn.Module) -> list[nn.Module]:
    """The layers of a fused recurrence as one-layer PyTorch modules, each fed the output of the one below: the
    regularised build holds them as such; PyTorch's multi-layer module is copied layer by layer."""
    if isinstance(rnn, LockedRecurrence):
        return list(rnn.layers)
    layers = []
    for l in range(rnn.num_layers):
        one = type(rnn)(rnn.input_size if l == 0 else rnn.hidden_size, rnn.hidden_size, 1, batch_first=True)
        one.load_state_dict({k.removesuffix(f"_l{l}") + "_l0": v for k, v in rnn.state_dict().items()
                             if k.endswith(f"_l{l}")})
        layers.append(one.to(rnn.weight_hh_l0.device).eval())
    return layers


def lstm_cells(layer: nn.LSTM, inp: torch.Tensor, h: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """The cell state c at every step, (B, T, H), of a one-layer LSTM from its input (B, T, D) and its output h
    (B, T, H) from the zero state: PyTorch's fused LSTM returns c at the last step only. The gates are computed
    `chunk` steps at a time: (B, chunk, 4H) floats.

    c(t) = f(t) c(t-1) + i(t) g(t), the gates in PyTorch's order i, f, g, o computed from inp(t) and h(t-1).
    """
    h_prev = torch.cat([h.new_zeros(h.shape[0], 1, h.shape[2]), h[:, :-1]], 1)  # (B, T, H): h(t-1), h(-1) = 0
    c, prev = torch.empty_like(h), h.new_zeros(h.shape[0], h.shape[2])
    for a in range(0, h.shape[1], chunk):
        b = min(a + chunk, h.shape[1])
        gates = (inp[:, a:b] @ layer.weight_ih_l0.T + layer.bias_ih_l0
                 + h_prev[:, a:b] @ layer.weight_hh_l0.T + layer.bias_hh_l0)  # (B, chunk, 4H)
        i, f, g, _ = gates.chunk(4, dim=-1)
        ig, f = i.sigmoid() * g.tanh(), f.sigmoid()
        for t in range(b - a):  # the recurrence itself is elementwise: a cheap loop over time
            prev = torch.addcmul(ig[:, t], f[:, t], prev)
            c[:, a + t] = prev
    return c


def _fused_units(rnn: nn.Module, x: torch.Tensor):
    """The state of a tanh RNN or GRU as it is; an LSTM's hidden state h, then its cell state as tanh(c) (as in
    Karpathy et al. 2015)."""
    inp = x
    for layer in _one_layer_modules(rnn):
        out = layer(inp)[0]  # (B, T, H): this layer's output, its state h
        yield [out, lstm_cells(layer, inp, out).tanh()] if isinstance(layer, nn.LSTM) else [out]
        inp = out


def _ln_lstm_units(rnn: LayerNormLSTM, x: torch.Tensor):
    """The hidden state h, then the cell state as the output gate reads it, tanh(LN(c))."""
    inp, zeros = x, x.new_zeros(x.shape[0], rnn.hidden_size)
    for l in range(len(rnn.W_x)):
        cells = []
        out, _ = rnn.layer(l, inp, zeros, zeros, cells)
        yield [out, rnn.ln_c[l](torch.stack(cells, 1)).tanh()]
        inp = out


def _mingru_units(rnn: MinGRU, x: torch.Tensor):
    """minGRU's state h is positive and unbounded above: shown as tanh(h), in [0, 1), as the LSTM's cell state is."""
    inp = x
    for l in range(len(rnn.gates)):
        out = rnn.layer(l, inp, x.new_zeros(x.shape[0], rnn.hidden_size))  # (B, T, H)
        yield [out.tanh()]
        inp = out


@dataclass(frozen=True)
class Cell:
    build: Callable[..., nn.Module]  # (input_size, hidden_size, num_layers, dropout) -> the recurrence
    card_name: str  # what the model card calls it
    tag: str  # its tag on the Hugging Face Hub
    head_bias: bool = True  # whether the output layer V has a bias
    # (input_size, hidden_size, num_layers, dropout, weight_drop, locked) -> the recurrence with DropConnect on its
    # recurrent weights and locked dropout between layers (ModelConfig.weight_drop, dropout_mask); None: not offered
    regularised: Callable[..., nn.Module] | None = None
    # (the recurrence, plain or regularised, x) -> each layer's groups of units (see _paper_units above); None: the
    # Inside view's units are not offered for the cell
    units: Callable | None = None
    unit_kinds: tuple[str, ...] = ("state",)  # what each group of a layer's hidden_size units is, in the hook's order
    options: tuple[str, ...] = ()  # the ModelConfig fields that only this cell takes, passed to build by name
    about: str = ""  # what it is, in a sentence for the demo's visitors


CELLS: dict[str, Cell] = {
    # The paper's output layer y = softmax(V s) has no bias; the other cells get the usual one.
    "paper": Cell(PaperRNN, "simple (Elman) RNN with sigmoid state, Mikolov et al. (2010)", "mikolov-2010",
                  head_bias=False, units=_paper_units,
                  about="Mikolov et al.'s 2010 network: after each character it rewrites its whole memory, one vector "
                        "squashed by a sigmoid, from that character and the memory before."),
    "rnn": Cell(_torch_cell(nn.RNN), "Elman RNN with tanh state", "elman-rnn", regularised=partial(LockedRecurrence, "rnn"),
                units=_fused_units, about="The 2010 design with a tanh state: it rewrites its whole memory after each "
                                          "character."),
    "gru": Cell(_torch_cell(nn.GRU), "GRU", "gru", regularised=partial(LockedRecurrence, "gru"), units=_fused_units,
                about="A gated recurrent unit: at each character, gates decide how much of its memory to keep and how "
                      "much to overwrite, so what it read earlier can last."),
    "lstm": Cell(_torch_cell(nn.LSTM), "LSTM", "lstm", regularised=partial(LockedRecurrence, "lstm"), units=_fused_units,
                 unit_kinds=("hidden", "cell"),
                 about="A long short-term memory: a cell state that gates protect, written to and read from, so that "
                       "what it read long ago can survive."),
    "ln-lstm": Cell(LayerNormLSTM, "LSTM with layer normalisation (Ba et al. 2016)", "layer-norm-lstm",
                    regularised=LayerNormLSTM, units=_ln_lstm_units, unit_kinds=("hidden", "cell"),
                    about="An LSTM whose gates are normalised at every step, which steadies its training."),
    # No recurrent matrix, so no DropConnect on one (weight_drop): ModelConfig refuses the regularised build.
    "mingru": Cell(MinGRU, "minimal GRU, parallel scan (Feng et al. 2024)", "mingru", units=_mingru_units,
                   about="A minimal GRU (2024): its gates read the character, not the memory, so a whole text trains "
                         "at once, as a parallel scan, and it still writes one character at a time."),
    # Not a recurrence, on the same contract (charrnn.transformer): its carried state is a key/value cache. Its
    # residual stream is not a state carried from step to step, so the Inside view's units are not offered.
    "transformer": Cell(Transformer, "causal transformer, ALiBi positions, sliding window", "transformer",
                        options=("heads", "window"),
                        about="A transformer, what replaced the RNNs: no memory rewritten at each step; each character "
                              "looks back directly, through attention, at the characters before it, all trained at "
                              "once."),
}
