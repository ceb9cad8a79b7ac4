"""Small builders shared by the library tests: tiny text and tiny models, made in the test."""
from __future__ import annotations

import torch

from charrnn.data import Vocab
from charrnn.model import CharRNN, ModelConfig

# A made-up dialogue in the corpus's layout (speaker line, blank line, speech): written here, not copied.
TINY_TEXT = ("ARGAN.\n\nMon ami, la pièce est très belle; où est le valet?\n\n"
             "TOINETTE.\n\nIl est là, monsieur, à la fenêtre; il chante et il rit.\n\n") * 20


def tiny_model(cell: str = "paper", text: str = TINY_TEXT, seed: int = 0, **kw) -> CharRNN:
    torch.manual_seed(seed)
    cfg = dict(hidden_size=16, num_layers=1, embed_size=0, dropout=0.0)
    cfg.update(kw)
    return CharRNN(ModelConfig(vocab=Vocab.from_text(text).chars, cell=cell, **cfg))


def assert_shown(checkpoint, words: str, nats: float) -> None:
    """A test-time figure recorded into `checkpoint` shows in its model card and in the app's summary table."""
    import charrnn
    from charrnn.report import summary_rows
    from charrnn.units import LN2

    assert f"| {words} | {nats:.4f} |" in (checkpoint / "README.md").read_text()
    assert [f"test bits/char, {words}", f"{nats / LN2:.3f}"] in summary_rows(charrnn.load(checkpoint).record)
