"""The paper's dynamic model: a trained network that keeps learning while it reads the test text.

Mikolov et al. (2010) keep training their network while it processes the test data, once, with
standard back-propagation at a fixed learning rate, and report this "dynamic" model beside the static
one. Here the text is read in segments of `seq_len` characters: each segment is scored first,
then the model takes one SGD step on that segment's loss and carries its state on. So every character
is predicted by a model that has trained only on the text before it, as in an adaptive compressor.

The learning rate is the one free choice, and it is made on the validation slice, never on the test
split. The result is a second test figure: `evaluate` (static) stays the loss of the stored weights.

    python -m charrnn.dynamic --checkpoint checkpoints/gru --data ../shared/data/moliere.txt [--record]
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F

from .model import detach_state
from .scoring import average

SEQ_LEN = 50  # characters per update: short enough to adapt within a scene, long enough for a useful gradient
LEARNING_RATES = (0.005, 0.01, 0.02, 0.04, 0.08)  # the grid tune() searches, factors of 2


def dynamic_char_losses(model, text: str, lr: float, seq_len: int = SEQ_LEN) -> torch.Tensor:
    """Loss in nats of each character of `text` after the first under the dynamic model: shape (len(text) - 1,).

    One stream, one pass, from the zero state. `model` itself is not changed: a copy adapts. With
    lr = 0 these are the static losses of reading the text in one pass (as scoring.char_losses).
    """
    if lr < 0 or not math.isfinite(lr):
        raise ValueError(f"the learning rate must be a finite number >= 0, not {lr}")
    if seq_len < 1:
        raise ValueError(f"seq_len must be at least 1, not {seq_len}")
    device = next(model.parameters()).device
    m = copy.deepcopy(model).float().eval()  # eval: no dropout; the copy is what learns
    ids = torch.tensor([model.encode(text)], dtype=torch.long, device=device)  # (1, N)
    n = ids.shape[1] - 1
    if n < 1:
        raise ValueError("the dynamic model needs a text of at least two characters")
    opt = torch.optim.SGD(m.parameters(), lr=lr)
    losses, state = [], None
    # cuDNN's RNN refuses a backward pass in eval mode; its non-fused path computes the same thing.
    with torch.backends.cudnn.flags(enabled=False):
        for t in range(0, n, seq_len):
            x, y = ids[:, t : min(t + seq_len, n)], ids[:, t + 1 : min(t + seq_len, n) + 1]
            logits, state = m(x, state)
            loss = F.cross_entropy(logits[0], y[0], reduction="none")
            losses.append(loss.detach().cpu())  # scored before the step below learns from it
            if lr:
                opt.zero_grad(set_to_none=True)
                loss.mean().backward()
                opt.step()
            state = detach_state(state)
    return torch.cat(losses)


def evaluate_dynamic(model, text: str, lr: float, seq_len: int = SEQ_LEN) -> dict:
    """Average loss of `text` (nats and bits per character) under the dynamic model (see dynamic_char_losses)."""
    return average(dynamic_char_losses(model, text, lr, seq_len))


def tune(model, text: str, rates=LEARNING_RATES, seq_len: int = SEQ_LEN, log=None) -> tuple[float, dict[float, float]]:
    """The learning rate of `rates` with the lowest dynamic loss on `text`, and every rate's loss (0 included)."""
    losses = {}
    for lr in (0.0, *rates):
        losses[lr] = evaluate_dynamic(model, text, lr, seq_len)["nats"]
        if log:
            log(f"  lr {lr:<6g} {losses[lr]:.4f} nats/char")
    return min(losses, key=losses.get), losses


def main(argv=None) -> None:
    import sys

    from .checkpoint import recorded_nats
    from .testtime import finish, inputs, parser

    p = parser("Test loss of a checkpoint as the paper's dynamic model (Mikolov et al. 2010): the model keeps "
               "training, once, on each test segment after scoring it.", "checkpoints/gru", "dynamic")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate of the updates; default: tuned on the validation slice over "
                        + ", ".join(map(str, LEARNING_RATES)))
    p.add_argument("--seq-len", type=int, default=SEQ_LEN, help="characters scored between two updates")
    args = p.parse_args(argv)
    try:
        model, test_text, tune_on, tune_words = inputs(args)
        if args.lr is None:
            print(f"choosing the learning rate on {tune_words}:", flush=True)
            lr, grid = tune(model, tune_on, seq_len=args.seq_len, log=lambda s: print(s, flush=True))
        else:
            lr, grid = args.lr, {args.lr: evaluate_dynamic(model, tune_on, args.lr, args.seq_len)["nats"]}
            print(f"lr {lr:g} on {tune_words}: {grid[lr]:.4f} nats/char", flush=True)
        test_losses = dynamic_char_losses(model, test_text, lr, args.seq_len)
    except (ValueError, OSError) as e:  # DataError and CheckpointError are ValueErrors
        sys.exit(f"error: {e}")
    test = average(test_losses)
    static = recorded_nats(model.meta)
    print(f"{args.checkpoint}: dynamic test {test['nats']:.4f} nats/char, {test['bpc']:.4f} bits/char "
          f"(lr {lr:g}, {args.seq_len} characters per update)"
          + (f"; static {static:.4f}" if static is not None else ""))
    finish(args, model, "dynamic", test_text, test_losses,
           {"lr": lr, "seq_len": args.seq_len, "tuned_on": tune_words,
            "tuning": {f"{r:g}": round(v, 6) for r, v in grid.items()}, "test": test})


if __name__ == "__main__":
    main()
