"""The writing form of a model: a copy whose weights are cheaper to read, for generating text on a CPU.

Writing is one matrix-vector product per layer per character, so on a CPU it is bound by reading the
weights (13 MB per character for the 2-layer LSTM in float32), not by arithmetic. The writing form reads
fewer bytes: int8 weights (PyTorch's dynamic quantisation: one scale per output row, the activations
quantised on the fly, 4x fewer bytes) or bfloat16 ones (2x). It honours the model contract,
model(idx, state) -> (logits, state), and carries the model's vocab and record, so charrnn.generate takes
it unchanged. Its predictions differ from the float32 model's by a little: `python -m charrnn writing`
chooses the fastest form on the machine it runs on, measures its test loss and records both
(final["writing"]), and `for_writing` builds the recorded form.

The paper RNN runs torch.rnn_tanh with weights derived from U and b at every call, a cost that a
one-character step pays in full; its writing form derives them once (PaperRNN.tanh_weights), turns the
one-hot input's product into a table lookup and folds s = (1 + h)/2 into the output layer, so that a
step is one (H, H) product, an addition and a tanh. The Elman RNN gets the same recurrence.
"""
from __future__ import annotations

import copy
import platform
import time
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .cells import LayerNormLSTM, MinGRU, PaperRNN
from .model import CharRNN
from .transformer import Transformer

FORMS = ("float32", "bf16", "int8")
WITHIN = 1.1  # a more exact form is chosen over a faster one within 10 %
DEFAULT_FORM = "int8"  # for a model that records none: the fewest bytes to read, the fastest for the gated models


class TanhSteps(nn.Module):
    """A tanh RNN run step by step with its weights as modules (so that they can be quantised):

        h_l(t) = tanh(inputs[l](x_l(t)) + recurrent[l](h_l(t-1)))     x_0 the input, x_l = h_{l-1}

    inputs[l] holds W_ih and the bias (layer 0's is the identity where the caller's table lookup did it),
    recurrent[l] holds W_hh. `sigmoid_state`: the state is carried as the paper's s = (1 + h)/2 (PaperRNN's
    state, whose start of text s(0) = 0 is h = -1), else as h (nn.RNN's). The output is h of the top layer.
    """

    def __init__(self, layers: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], sigmoid_state: bool,
                 table: bool):
        super().__init__()
        self.sigmoid_state = sigmoid_state
        self.inputs, self.recurrent = nn.ModuleList(), nn.ModuleList()
        for l, (W_ih, W_hh, bias) in enumerate(layers):
            if l == 0 and table:
                self.inputs.append(nn.Identity())
            else:
                self.inputs.append(nn.Linear(W_ih.shape[1], W_ih.shape[0]))
                self.inputs[-1].weight.data, self.inputs[-1].bias.data = W_ih.clone(), bias.clone()
            self.recurrent.append(nn.Linear(W_hh.shape[1], W_hh.shape[0], bias=False))
            self.recurrent[-1].weight.data = W_hh.clone()

    def forward(self, x: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, in), state (L, B, H) -> h of the top layer (B, T, H), new state (L, B, H)."""
        L, H = len(self.recurrent), self.recurrent[0].in_features
        if state is None:
            h0 = x.new_full((L, x.shape[0], H), -1.0 if self.sigmoid_state else 0.0)
        else:
            h0 = 2 * state - 1 if self.sigmoid_state else state
        inp, last = x, []
        for proj, rec, h in zip(self.inputs, self.recurrent, h0):
            pre = proj(inp)  # (B, T, H)
            hs = []
            for t in range(pre.shape[1]):
                h = torch.tanh(pre[:, t] + rec(h))  # (B, H)
                hs.append(h)
            inp = torch.stack(hs, 1)  # (B, T, H)
            last.append(h)
        h_last = torch.stack(last)  # (L, B, H)
        return inp, (1 + h_last) / 2 if self.sigmoid_state else h_last


def _tanh_layers(rnn: nn.Module) -> tuple[list, bool]:
    """The (W_ih, W_hh, bias) of each layer of a PaperRNN or an nn.RNN, and whether its state is the paper's s."""
    if isinstance(rnn, PaperRNN):
        return [tuple(w.detach() for w in rnn.tanh_weights(l)) for l in range(len(rnn.U))], True
    layers = [(getattr(rnn, f"weight_ih_l{l}"), getattr(rnn, f"weight_hh_l{l}"),
               getattr(rnn, f"bias_ih_l{l}") + getattr(rnn, f"bias_hh_l{l}")) for l in range(rnn.num_layers)]
    return [tuple(w.detach() for w in layer) for layer in layers], False


class WritingModel(nn.Module):
    """A CharRNN's writing form (see the module's docstring): embedding or table -> recurrence -> head.

    `form` is "float32", "bf16" or "int8"; `vocab`, `record` and `config` are the model's. It runs on the CPU.
    """

    def __init__(self, model: CharRNN):
        super().__init__()
        model = copy.deepcopy(model).cpu().eval()
        self.form, self.config, self.vocab, self.record = "float32", model.config, model.vocab, model.record
        self.embed, self.rnn, self.head = model.embed, model.rnn, model.head
        if isinstance(self.rnn, (PaperRNN, nn.RNN)):
            layers, sigmoid_state = _tanh_layers(self.rnn)
            table = self.embed is None
            if table:  # one-hot input: layer 0's W_ih w(t) + bias is row w of a (V, H) table
                W_ih, _, bias = layers[0]
                self.embed = nn.Embedding.from_pretrained(W_ih.T + bias, freeze=True)
            self.rnn = TanhSteps(layers, sigmoid_state, table)
            if sigmoid_state:  # the head reads s = (1 + h)/2: V s + c = (V/2) h + (c + V 1/2)
                W, c = self.head.weight.detach(), self.head.bias
                self.head = nn.Linear(W.shape[1], W.shape[0])
                self.head.weight.data = W / 2
                self.head.bias.data = W.sum(1) / 2 + (c.detach() if c is not None else 0)
        elif not isinstance(self.rnn, (nn.GRU, nn.LSTM, MinGRU, LayerNormLSTM, Transformer)):
            # the others step as they are, their Linear layers quantised in int8 (LayerNormLSTM has none)
            raise ValueError(f"no writing form for a {type(self.rnn).__name__} recurrence: add it to charrnn.fast")
        self.one_hot = self.embed is None  # a GRU or an LSTM without an embedding reads one-hot vectors

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def forward(self, idx: torch.Tensor, state=None):
        """idx (B, T) -> logits (B, T, V) in float32, new state (the float32 model's kind of state)."""
        if self.one_hot:
            x = F.one_hot(idx, self.config.vocab_size).to(torch.bfloat16 if self.form == "bf16" else torch.float32)
        else:
            x = self.embed(idx)  # (B, T, E), or layer 0's input product (B, T, H) for the tanh cells
        out, state = self.rnn(x, state)
        return self.head(out).float(), state

    def encode(self, text: str) -> list[int]:
        return self.vocab.encode(text)

    def decode(self, ids) -> str:
        return self.vocab.decode(ids)


def recorded_form(record: dict) -> str | None:
    """The writing form a checkpoint's record names (final["writing"]["form"]), or None."""
    return ((record.get("final") or {}).get("writing") or {}).get("form")


def for_writing(model: CharRNN, form: str | None = None) -> WritingModel:
    """The writing form of `model` (a copy: `model` is left as it is), on the CPU.

    form: "int8", "bf16" or "float32"; None = the form its record names, else DEFAULT_FORM.
    """
    if not isinstance(model, CharRNN):
        raise ValueError(f"for_writing takes a CharRNN (as charrnn.load returns), not a {type(model).__name__}")
    form = form or recorded_form(model.record) or DEFAULT_FORM
    if form not in FORMS:
        raise ValueError(f"unknown writing form {form!r}: choose one of {', '.join(FORMS)}")
    w = WritingModel(model)
    if form == "bf16":
        w.to(torch.bfloat16)
    elif form == "int8":
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        with warnings.catch_warnings():
            # torch.ao.quantization warns that it moves to torchao; torch is pinned (requirements.txt) at a
            # release that has it, and its int8 kernels (fbgemm) are the fastest measured here.
            warnings.simplefilter("ignore")
            quantize_dynamic(w, {nn.Linear: per_channel_dynamic_qconfig, nn.GRU: per_channel_dynamic_qconfig,
                                 nn.LSTM: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    w.form = form
    return w


@torch.inference_mode()
def step_us(models: dict[str, nn.Module], steps: int = 200, reps: int = 10) -> dict[str, float]:
    """Microseconds of one one-character step (a call on one character from a warm state) of each model, the
    best of `reps` runs taken in turns: other processes on the machine only ever slow a run down, and in turns
    a busy spell slows all the models alike."""
    idx = torch.zeros(1, 1, dtype=torch.long)
    states = {name: m(idx)[1] for name, m in models.items()}
    best = dict.fromkeys(models, float("inf"))
    for _ in range(reps):
        for name, m in models.items():
            state = states[name]
            t = time.perf_counter()
            for _ in range(steps):
                _, state = m(idx, state)
            best[name] = min(best[name], (time.perf_counter() - t) / steps)
    return {name: 1e6 * b for name, b in best.items()}


def choose_form(model: CharRNN) -> tuple[str, dict[str, float]]:
    """The form to write `model` with on this machine, and each form's one-character step in µs: the most
    exact form (float32, then bf16, then int8) whose step is within WITHIN of the fastest, so that no
    precision is given up for a gain as small as the timing's noise."""
    times = step_us({form: for_writing(model, form) for form in FORMS})
    return next(f for f in FORMS if times[f] <= WITHIN * min(times.values())), times


def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else its architecture: where a form was chosen."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        info = ""
    names = [line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")]
    return names[0] if names else platform.machine() or "unknown CPU"
