"""Named recipes: a model configuration and a training configuration that belong together.

Every value here can be overridden by a train.py flag; the shipped checkpoints were made with these.
"""
from __future__ import annotations


def _gated(cell: str, name: str, hidden_size: int = 512, epochs: int = 20, num_layers: int = 2) -> dict:
    """The recipe the gated models share, so that they compare on the cell and the size alone."""
    return {"about": f"{num_layers}-layer {name}, embedding 64, hidden {hidden_size}, dropout 0.5, weight decay 0.1",
            "model": dict(cell=cell, hidden_size=hidden_size, num_layers=num_layers, embed_size=64, dropout=0.5),
            "train": dict(batch_size=64, seq_len=128, epochs=epochs, lr=2e-3, weight_decay=0.1,
                          val_chars=50_000, save_dtype="float16")}


PRESETS: dict[str, dict] = {
    # Mikolov et al. 2010's model at a size that fits the 1.5 M-character corpus on a CPU.
    "paper": {"about": "the paper's sigmoid Elman RNN, one-hot input, hidden 768",
              "model": dict(cell="paper", hidden_size=768),
              "train": dict(batch_size=32, seq_len=128, epochs=20, lr=3e-3)},
    # The gated models: two layers with a learned embedding. The corpus is small (1.5 M characters) and
    # they over-fit it: the first shipped LSTM (dropout 0.25, no weight decay) ended at train 0.83 and
    # test 1.35 nats/char, its recorded test loss rising after epoch 10. Hence dropout 0.5 and weight
    # decay 0.1, and a 50,000-character validation slice held out of the training text, so that the two
    # cells can be compared without looking at the test split.
    "lstm": _gated("lstm", "LSTM"),
    "gru": _gated("gru", "GRU"),
    # The minimal GRU (Feng et al. 2024) at the gru preset's parameter count (2.53 M to its 2.51 M): its layers have
    # no recurrent matrix (2H(in + 1) weights to the GRU's 3H(in + H + 2)), so the same count buys a wider, deeper
    # stack: 3 layers of 768. In training (docs/transformer.md): no checkpoint ships with it yet.
    "mingru": _gated("mingru", "minGRU", hidden_size=768, num_layers=3),
    # The bigger hidden state: the largest 2-layer GRU whose float16 weights (4.7 M) fit the 10 MB a
    # checkpoint may take. Its validation loss had flattened by epoch 15 at hidden 512, and an epoch
    # costs 1.9x as much here, hence 14 epochs.
    # The course's spoiler: a causal transformer (charrnn.transformer) of about the GRU's size, 4 blocks of 256 wide
    # (3.2 M weights, 6.4 MB in float16). nanoGPT's shakespeare_char recipe (Karpathy) for the rest: AdamW at 1e-3,
    # dropout 0.2, weight decay 0.1. A window of 128 characters a layer, carried across chunks as a key/value cache,
    # reaches 4 x 127 = 508 characters back; the gated recipe's 64 x 128-character batches and 20 epochs, so that the
    # models differ in the architecture, not the data they saw. On one of this machine's 2 cores a step of it took
    # 3.6 s (2,274 characters/s): about 3.6 h for the run, two working sessions with --resume.
    "transformer": {"about": "4-block causal transformer, width 256, 4 heads, ALiBi, window 128, dropout 0.2",
                    "model": dict(cell="transformer", hidden_size=256, num_layers=4, embed_size=256, heads=4,
                                  window=128, dropout=0.2),
                    "train": dict(batch_size=64, seq_len=128, epochs=20, lr=1e-3, weight_decay=0.1,
                                  val_chars=50_000, save_dtype="float16")},
    "gru-large": _gated("gru", "GRU", hidden_size=704, epochs=14),
    # gru-large's size regularised as AWD-LSTM (Merity et al. 2018): DropConnect on the recurrent weights, dropout
    # locked to one mask per sequence on the input, between the layers and on the output. The gated models over-fit
    # this 1.3 M-character text (gru-large: train 0.90, validation 1.04 nats/char), hence rates at the strong end
    # of AWD-LSTM's, and 16 epochs to gru-large's 14, as regularised runs converge later (16, not more, so that a
    # run fits in a working session on 2 CPU cores: 1.9 s a step, about 95 minutes). Judged on the validation slice
    # against gru-large's 1.0439: a run stopped at epoch 7 trailed gru-large's by 0.08 at every epoch, its train
    # loss equal to its validation loss (under-fitting; docs/analysis.md), so these rates are not shipped.
    "awd-gru": {"about": "2-layer GRU, embedding 64, hidden 704, AWD regularisation: DropConnect 0.5 on the "
                         "recurrent weights, locked dropout 0.1 in, 0.4 between layers and out, weight decay 0.1",
                "model": dict(cell="gru", hidden_size=704, num_layers=2, embed_size=64, dropout=0.4, input_dropout=0.1,
                              dropout_mask="sequence", weight_drop=0.5),
                "train": dict(batch_size=64, seq_len=128, epochs=16, lr=2e-3, weight_decay=0.1, val_chars=50_000,
                              save_dtype="float16")},
    # A readable model in minutes on a laptop's CPU: a short budget wants many small updates (the gated recipes
    # make 116 steps of 64 x 128 characters in two minutes), so a single small layer, short sequences, a high
    # learning rate and no dropout; the run stops at its time budget, the learning rate decaying to it.
    "quick": {"about": "1-layer GRU, embedding 64, hidden 256, no dropout, 10 minutes of training",
              "model": dict(cell="gru", hidden_size=256, num_layers=1, embed_size=64),
              "train": dict(batch_size=32, seq_len=64, epochs=100, lr=5e-3, warmup_steps=50, time_budget=600.0,
                            eval_every=1000)},
    # The course notebook's recipe, for a before/after: one SGD step per character on the first 50,000
    # characters, of which the notebook measured its test loss on the last 5,000 and trained on the rest:
    # held out here as the validation slice, so that its loss is the notebook's own test figure.
    "seed": {"about": "the course notebook: paper RNN, hidden 128, first 50,000 characters (the last 5,000 held out), "
                      "per-character SGD",
             "model": dict(cell="paper", hidden_size=128),
             "train": dict(batch_size=1, seq_len=1, epochs=10, optimizer="sgd", lr=0.1, grad_clip=0.0,
                           schedule="constant", max_chars=50_000, val_chars=5_000, eval_every=0)},
}
