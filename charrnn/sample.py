"""Generating text one character at a time: temperature, top-k, top-p and a random seed."""
from __future__ import annotations

import os
from typing import Iterator

import torch

from .data import START
from .deadline import check_deadline


def check_sampling(length: int, temperature: float, top_k: int, top_p: float) -> None:
    if length < 0:
        raise ValueError("length must be >= 0")
    if not (temperature >= 0 and temperature != float("inf")):
        raise ValueError("temperature must be a finite number >= 0 (0 = always the most likely character)")
    if top_k < 0:
        raise ValueError("top_k must be >= 0 (0 = no top-k cut)")
    if not 0 < top_p <= 1:
        raise ValueError("top_p must be in (0, 1] (1 = no nucleus cut)")


def next_char_probs(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """Sampling distribution (V,) from next-character logits (V,); temperature > 0.

    Computed in float64, with the largest logit subtracted before the division: the most likely character's scaled
    logit is 0 whatever the temperature, so a tiny one (1e-40) samples greedily instead of dividing inf by inf.
    """
    logits = logits.double()
    top = logits.max()  # NaN if any is
    if not torch.isfinite(top):
        raise ValueError("the model's next-character scores are not numbers (NaN or infinite): its weights are broken")
    logits = (logits - top) / temperature
    if 0 < top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if top_p < 1:
        # Keep the smallest set of most likely characters whose mass reaches top_p.
        sorted_p, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_p, 0) - sorted_p < top_p  # mass before this one is still short
        keep[0] = True  # the most likely one always, however small top_p (1e-40, or a denormal flushed to 0)
        probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
        probs /= probs.sum()
    return probs.float()


@torch.inference_mode()
def generate(model, prompt: str, length: int, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
             seed: int | None = None, *, deadline: float | None = None) -> Iterator[str]:
    """Yield `length` characters that continue `prompt`, one at a time.

    The whole prompt warms the recurrent state (not only its last character). Characters the model
    does not know are normalised or dropped (see Vocab.normalize). temperature 0 is greedy decoding;
    the same seed gives the same text. deadline: a time.monotonic() value; once it has passed, the next
    character raises DeadlineExceeded instead (those yielded so far stand).
    """
    check_sampling(length, temperature, top_k, top_p)
    model.eval()
    device = model.device
    gen = torch.Generator().manual_seed(seed if seed is not None else int.from_bytes(os.urandom(8), "little") >> 1)
    prompt, _ = model.vocab.normalize(prompt)
    check_deadline(deadline, 0, length, "generated")
    ids = torch.tensor([model.encode(prompt or START)], dtype=torch.long, device=device)  # (1, P)
    logits, state = model(ids)  # the prompt in one call: the fused recurrence warms the state
    for i in range(length):
        check_deadline(deadline, i, length, "generated")
        last = logits[0, -1]  # (V,)
        if temperature == 0:
            nxt = int(torch.argmax(last))
        else:
            nxt = int(torch.multinomial(next_char_probs(last, temperature, top_k, top_p).cpu(), 1, generator=gen))
        yield model.vocab.chars[nxt]
        logits, state = model(torch.tensor([[nxt]], device=device), state)


def configure_cpu_for_sampling(threads: int = 1) -> None:
    """Process-wide CPU settings for generating one character at a time (see python -m charrnn bench app).

    oneDNN's RNN kernels cost ~5 ms per one-character call of a 2-layer nn.LSTM, ~20x the plain
    kernels; they win only on long sequences (scoring, by ~30 %). A one-character step is too small to
    gain from more threads, and a server runs several requests side by side on its cores.
    """
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = False
