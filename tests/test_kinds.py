"""The kinds of model a record names (charrnn.kinds): written with every checkpoint, read where a record is read,
an unknown one refused with what to do, and records written before kinds existed read as networks."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import charrnn
from charrnn.checkpoint import CheckpointError, read_record
from charrnn.kinds import MIXTURE, NETWORK, kind_of
from charrnn.mixture import is_mixture
from charrnn.model import num_streams, select_streams
from tests.helpers import tiny_model


def test_a_saved_network_names_its_kind_as_the_shipped_mixture_does(tmp_path):
    gru = charrnn.save(tiny_model("gru", embed_size=4), tmp_path / "gru", {})
    assert read_record(gru)["model"]["kind"] == NETWORK and not is_mixture(read_record(gru))
    mixed = read_record(Path(__file__).parent.parent / "checkpoints" / "mixture")
    assert kind_of(mixed) == MIXTURE and is_mixture(mixed)


def test_a_record_without_a_kind_is_a_network(tiny_checkpoints, tmp_path):
    old = shutil.copytree(tiny_checkpoints["lstm"], tmp_path / "old")
    record = json.loads((old / "config.json").read_text())
    del record["model"]["kind"]
    (old / "config.json").write_text(json.dumps(record))
    assert kind_of(read_record(old)) == NETWORK and charrnn.load(old).config.cell == "lstm"


def test_an_unknown_kind_is_refused_where_the_record_is_read(tiny_checkpoints, tmp_path):
    odd = shutil.copytree(tiny_checkpoints["lstm"], tmp_path / "odd")
    record = json.loads((odd / "config.json").read_text())
    record["model"]["kind"] = "hypernetwork"
    (odd / "config.json").write_text(json.dumps(record))
    for read in (read_record, charrnn.load):
        with pytest.raises(CheckpointError, match="its model is of kind 'hypernetwork', which this charrnn does not "
                                                  "know \\(it knows network, mixture\\): written by a newer charrnn"):
            read(odd)


@pytest.mark.parametrize("cell", ["gru", "lstm", "transformer"])
def test_streams_are_selected_on_dimension_1_of_every_state(cell):
    import torch

    model = tiny_model(cell, embed_size=16, hidden_size=16, **({"heads": 2, "window": 4} if cell == "transformer" else {}))
    ids = torch.tensor([model.encode("ARGAN. Mon ami"), model.encode("TOINETTE. Il e")])
    with torch.no_grad():
        _, state = model.eval()(ids)
        assert num_streams(state) == 2 and num_streams(select_streams(state, [1])) == 1
        one, _ = model(ids[1:, :3], select_streams(state, [1]))
        both, _ = model(ids[:, :3], state)
    assert (one[0] - both[1]).abs().max() < 1e-5
