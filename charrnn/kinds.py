"""The kinds of model a checkpoint holds, named by its record (config.json's model.kind), and the state contract
they share.

    network   one network: an input layer, a cell of charrnn.cells (a recurrence, or the transformer) and an
              output layer, its weights in model.safetensors. Records written before kinds existed are networks.
    mixture   a mixture of networks' next-character distributions (charrnn.mixture): their paths, the sha256 of
              their weights and their mixing weights; no weights of its own.

The carried state, for every kind and cell: None at the start of a text, else a tensor or a tuple of states (an
LSTM's (h, c), a transformer's (keys, values, lengths), a mixture's members' states), every tensor with the streams
of the batch as dimension 1. So one set of functions (charrnn.model: map_state, detach_state, zero_row,
select_streams, num_streams) starts, detaches, resets and selects streams for training, scoring, the test-time
readings and the writing forms, whatever the model.
"""
from __future__ import annotations

NETWORK, MIXTURE = "network", "mixture"
KINDS = (NETWORK, MIXTURE)


def kind_of(record: dict) -> str:
    """The kind of model a checkpoint record describes; ValueError, saying what to do, for a kind unknown here."""
    model = record.get("model")
    if not isinstance(model, dict):  # a malformed model section is the loader's to report, naming what is wrong
        return NETWORK
    kind = model.get("kind", NETWORK)
    if kind not in KINDS:
        raise ValueError(f"its model is of kind {kind!r:.40}, which this charrnn does not know (it knows "
                         f"{', '.join(KINDS)}): written by a newer charrnn? upgrade")
    return kind
