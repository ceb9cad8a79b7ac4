"""The unit of every loss in the project: nats per character, with bits per character beside it.

A loss record is {"nats": mean nats/char, "bpc": the same in bits/char, "chars": how many characters
were scored}: what evaluate returns and what config.json stores for each split.
"""
from __future__ import annotations

import math

LN2 = math.log(2)  # nats per bit


def bits(nats: float) -> float:
    return nats / LN2


def loss_record(nats: float, chars: int) -> dict:
    """The loss record of `chars` characters whose mean loss is `nats` nats/char."""
    return {"nats": nats, "bpc": bits(nats), "chars": chars}
