"""The course's crossed-out spoiler: a small causal transformer, on the recurrent models' contract.

A pre-norm decoder (GPT-2's block: LayerNorm, attention, residual; LayerNorm, 4x MLP, residual) whose positions
are ALiBi biases (Press et al. 2022: head i subtracts slope_i x distance from its attention scores), so no table of
positions bounds the length it reads, and whose attention is a sliding window: each character sees itself and the
W - 1 before it. With that window, what it carries from one call to the next is finite, as an RNN's state is: each
layer's keys and values of the last W characters (a key/value cache) and how many of them are real. So writing
streams one character at a time, texts are scored in chunks, and training carries the cache from chunk to chunk
(detached, as the RNNs' state is), like Transformer-XL.

State: ((keys, values) of each layer, n), keys and values (1, B, W, C) with the newest position last, n (1, B) the
number of valid positions at their end, the same in every layer. Every tensor has the batch as dimension 1, as the
RNNs' states (charrnn.kinds): the trainer, scoring and the test-time readings select, reset and concatenate streams
on it. A reset stream (n = 0) sees none of its zeroed slots. n is float32 (so that code which moves a state moves it
too), exact far beyond any window. A layer's keys and values are separate tensors, not slices of one (L, ...) stack,
so that a one-character step copies each once (the attention reads the last W - 1 cached and the new one, which
are the new cache as they are), not twice.

Memory: a layer's key at position p was computed from the layer below at p, which saw W - 1 characters before p,
so a prediction can depend on the last character read and on up to L (W - 1) characters before it.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def alibi_slopes(heads: int) -> torch.Tensor:
    """ALiBi's slopes, a geometric sequence 2^(-8/heads), 2^(-16/heads), ... (Press et al. 2022)."""
    return torch.tensor([2.0 ** (-8.0 * (i + 1) / heads) for i in range(heads)])


class Block(nn.Module):
    """x + attention(LN(x)), then x + MLP(LN(x)); attention over the cached keys and values, then this chunk's."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.fc = nn.Linear(width, 4 * width)
        self.proj = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, bias: torch.Tensor):
        """x (B, T, C), the cached keys and values it may see (B, W - 1, C), bias (B, heads, T, W - 1 + T) -> the
        block's output (B, T, C), and the keys and values of the cache and the chunk (B, W - 1 + T, C)."""
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, -1)
        k, v = torch.cat([keys, k], 1), torch.cat([values, v], 1)

        def split(t):  # (B, S, C) -> (B, heads, S, C / heads)
            return t.view(B, t.shape[1], self.heads, C // self.heads).transpose(1, 2)

        a = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=bias)  # (B, heads, T, C / heads)
        x = x + F.dropout(self.out(a.transpose(1, 2).reshape(B, T, C)), self.dropout, self.training)
        x = x + F.dropout(self.proj(F.gelu(self.fc(self.ln2(x)))), self.dropout, self.training)
        return x, k, v


class Transformer(nn.Module):
    """A causal decoder with the recurrences' contract: module(x (B, T, in), state) -> (out (B, T, C), state),
    out the final LayerNorm's output that the model's head reads. See the module's docstring for the state."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float, heads: int, window: int):
        super().__init__()
        if hidden_size % heads:
            raise ValueError(f"hidden_size {hidden_size} must be a multiple of heads {heads}")
        self.hidden_size, self.window, self.heads = hidden_size, window, heads
        # The model's embedding (or one-hot input) of another width is projected to the blocks' width.
        self.inp = nn.Linear(input_size, hidden_size) if input_size != hidden_size else None
        self.blocks = nn.ModuleList(Block(hidden_size, heads, dropout) for _ in range(num_layers))
        self.ln_f = nn.LayerNorm(hidden_size)
        self.register_buffer("slopes", alibi_slopes(heads), persistent=False)
        self._steady = None  # (batch, dtype, device) and the attention bias of a step with every cache full
        # GPT-2's initialisation: N(0, 0.02), the projections onto the residual stream scaled by 1/sqrt(2L) so that
        # its variance does not grow with depth.
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / (2 * num_layers) ** 0.5 if name.endswith(("out.weight", "proj.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias") and "ln" not in name:
                nn.init.zeros_(p)

    def empty_state(self, batch: int, like: torch.Tensor):
        """The start of a text: empty caches for `batch` streams, on `like`'s device and in its float type."""
        zeros = like.new_zeros(1, batch, self.window, self.hidden_size)
        return (*((zeros, zeros) for _ in self.blocks), like.new_zeros(1, batch, dtype=torch.float32))

    def attention_bias(self, n: torch.Tensor, T: int, dtype: torch.dtype) -> torch.Tensor:
        """The additive attention mask (B, heads, T, W - 1 + T): ALiBi's -slope x distance where a query may look
        (itself and the W - 1 characters before it, among the valid ones), -inf elsewhere. n (B,) valid cached
        positions per stream. The keys are the cache's last W - 1 (positions -(W - 1)..-1) and the chunk's T."""
        W, device = self.window, n.device
        key_pos = torch.arange(1 - W, T, device=device)
        dist = torch.arange(T, device=device)[:, None] - key_pos[None, :]  # (T, W - 1 + T)
        seen = (dist >= 0) & (dist < W)
        valid = key_pos[None, :] >= -n.round().long()[:, None]  # (B, W - 1 + T): the chunk, and the cache's last n
        bias = -self.slopes.to(device, dtype)[:, None, None] * dist.to(dtype)  # (heads, T, W - 1 + T)
        return bias[None].masked_fill(~(seen[None] & valid[:, None, :])[:, None], float("-inf"))

    def forward(self, x: torch.Tensor, state=None):
        B, T, _ = x.shape
        W = self.window
        state = self.empty_state(B, x) if state is None else state
        *layers, n = state
        h = self.inp(x) if self.inp is not None else x
        if T == 1 and bool((n >= W).all()):  # writing's steady state, every cache full: the same bias at each step
            key = (B, h.dtype, h.device)
            if self._steady is None or self._steady[0] != key:
                self._steady = (key, self.attention_bias(n[0], 1, h.dtype))
            bias = self._steady[1]
        else:
            bias = self.attention_bias(n[0], T, h.dtype)
        new = []
        for block, (keys, values) in zip(self.blocks, layers):
            # The last W - 1 cached positions: what the chunk's first character may still see.
            h, k, v = block(h, keys[0, :, 1:], values[0, :, 1:], bias)  # k, v: (B, W - 1 + T, C)
            new.append((k[None, :, -W:], v[None, :, -W:]))
        return self.ln_f(h), (*new, (n + T).clamp(max=W))

    @property
    def horizon(self) -> int:
        """How far back a prediction can reach: L (W - 1) characters before the last one read."""
        return len(self.blocks) * (self.window - 1)
