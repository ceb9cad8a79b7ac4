import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

import charrnn
from charrnn.checkpoint import CheckpointError, load_training_state

from .helpers import tiny_model


def _idx(model):
    return torch.randint(0, model.config.vocab_size, (2, 15), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("cell", ["paper", "gru", "lstm"])
def test_save_then_load_gives_identical_logits(tmp_path, cell):
    model = tiny_model(cell, num_layers=2, embed_size=4).eval()
    charrnn.save(model, tmp_path / "ck", {"history": []})
    loaded = charrnn.load(tmp_path / "ck")
    assert loaded.config == model.config  # architecture and vocabulary travel inside the checkpoint
    assert torch.equal(loaded(_idx(model))[0], model(_idx(model))[0])
    assert sorted(os.listdir(tmp_path)) == ["ck"]  # no temporary directory left behind
    assert sorted(os.listdir(tmp_path / "ck")) == ["README.md", "config.json", "model.safetensors"]


def test_float16_storage_halves_the_file_and_loads(tmp_path):
    model = tiny_model("lstm", hidden_size=64, embed_size=8).eval()
    charrnn.save(model, tmp_path / "a", {})
    charrnn.save(model, tmp_path / "b", {}, dtype=torch.float16)
    a, b = (tmp_path / "a" / "model.safetensors").stat().st_size, (tmp_path / "b" / "model.safetensors").stat().st_size
    assert b < 0.55 * a
    assert all(t.dtype == torch.float16 for t in load_file(tmp_path / "b" / "model.safetensors").values())
    assert json.loads((tmp_path / "b" / "config.json").read_text())["dtype"] == "float16"
    loaded = charrnn.load(tmp_path / "b")
    assert torch.allclose(loaded(_idx(model))[0], model(_idx(model))[0], atol=1e-2)


@pytest.mark.parametrize("change, message", [("drop", "missing"), ("add", "unexpected")])
def test_missing_or_extra_weight_fails_loudly(tmp_path, change, message):
    charrnn.save(tiny_model("paper"), tmp_path / "ck", {})
    weights = load_file(tmp_path / "ck" / "model.safetensors")
    if change == "drop":
        weights.pop("head.weight")
    else:
        weights["head.bias"] = torch.zeros(3)
    save_file(weights, tmp_path / "ck" / "model.safetensors")
    with pytest.raises(CheckpointError, match=f"(?i){message}"):
        charrnn.load(tmp_path / "ck")


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        charrnn.load(tmp_path / "x")
    (tmp_path / "x" / "config.json").write_text('{"architectures": ["Bert"]}')
    with pytest.raises(CheckpointError, match="not a charrnn checkpoint"):
        charrnn.load(tmp_path / "x")
    with pytest.raises(CheckpointError, match="no checkpoint directory"):
        charrnn.load(tmp_path / "nothing")


def test_interrupted_save_leaves_the_old_checkpoint_loadable(tmp_path, monkeypatch):
    old, new = tiny_model("paper", seed=1).eval(), tiny_model("paper", seed=2).eval()
    charrnn.save(old, tmp_path / "ck", {"note": "old"})

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # a kill while the new checkpoint is being written

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        charrnn.save(new, tmp_path / "ck", {"note": "new"}, training_state={"step": 1})
    monkeypatch.undo()
    loaded = charrnn.load(tmp_path / "ck")
    assert loaded.record["note"] == "old"
    assert torch.equal(loaded(_idx(old))[0], old(_idx(old))[0])


def test_kill_between_the_two_renames_falls_back_to_the_old_checkpoint(tmp_path, monkeypatch):
    old, new = tiny_model("paper", seed=1).eval(), tiny_model("paper", seed=2).eval()
    charrnn.save(old, tmp_path / "ck", {"note": "old"})
    real_replace, calls = os.replace, []

    def replace_then_die(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the old checkpoint is already moved aside, the new one not yet in
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_then_die)
    with pytest.raises(KeyboardInterrupt):
        charrnn.save(new, tmp_path / "ck", {"note": "new"})
    monkeypatch.undo()
    assert not (tmp_path / "ck").exists()
    assert charrnn.load(tmp_path / "ck").record["note"] == "old"
    charrnn.save(new, tmp_path / "ck", {"note": "new"})  # the next save cleans up
    assert charrnn.load(tmp_path / "ck").record["note"] == "new"
    assert sorted(os.listdir(tmp_path)) == ["ck"]


def test_training_state_loads_without_pickle(tmp_path):
    model = tiny_model("paper")
    charrnn.save(model, tmp_path / "ck", {}, training_state={"model": model.state_dict(), "step": 7})
    assert load_training_state(tmp_path / "ck")["step"] == 7
    charrnn.save(model, tmp_path / "ck2", {}, training_state={"evil": object()})
    with pytest.raises(Exception, match="[Ww]eights only"):
        load_training_state(tmp_path / "ck2")
