import hashlib
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


def _set_config(ck, **changes):
    """Rewrite config.json with `changes` (None deletes a key); nested: model={...} replaces the model section."""
    config = json.loads((ck / "config.json").read_text(encoding="utf-8"))
    config.update(changes)
    (ck / "config.json").write_text(json.dumps({k: v for k, v in config.items() if v is not None}), encoding="utf-8")


def _set_weights(ck, change):
    """Rewrite model.safetensors with change(tensors) applied, and record its new sha256, as a consistent but
    wrong checkpoint would (a record edited by hand, or written by a buggy tool): the checks beyond it must hold."""
    tensors = load_file(ck / "model.safetensors")
    change(tensors)
    save_file(tensors, ck / "model.safetensors")
    _set_config(ck, weights_sha256=hashlib.sha256((ck / "model.safetensors").read_bytes()).hexdigest())


def _model_section(ck, **changes):
    model = json.loads((ck / "config.json").read_text(encoding="utf-8"))["model"]
    _set_config(ck, model={**model, **changes})


def _truncate(file, keep=0.5):
    data = file.read_bytes()
    file.write_bytes(data[: int(len(data) * keep)])


def _flip_byte(file, at=-5):
    data = bytearray(file.read_bytes())
    data[at] ^= 0xFF
    file.write_bytes(bytes(data))


def _nan(tensors):
    for t in tensors.values():
        t.fill_(float("nan"))


def _as_directory(file):
    file.unlink()
    file.mkdir()


# (how the checkpoint is damaged, the file the error must name, what it must say)
MALFORMED = {
    "invalid JSON": (lambda ck: (ck / "config.json").write_text("{", encoding="utf-8"), "config.json",
                     "not valid JSON"),
    "format as a string": (lambda ck: _set_config(ck, charrnn_format="1"), "config.json", "no format version"),
    "newer format": (lambda ck: _set_config(ck, charrnn_format=2), "ck", "newer charrnn"),
    "non-UTF-8 config": (lambda ck: (ck / "config.json").write_bytes('{"é": 1}'.encode("latin-1")), "config.json",
                         "not UTF-8"),
    "config is a directory": (lambda ck: _as_directory(ck / "config.json"), "config.json", "is a directory"),
    "deep JSON": (lambda ck: (ck / "config.json").write_text("[" * 100_000, encoding="utf-8"), "config.json",
                  "too deeply"),
    "unknown cell": (lambda ck: _model_section(ck, cell="mamba"), "config.json", "no valid model: unknown cell"),
    "size as a string": (lambda ck: _model_section(ck, hidden_size="16"), "config.json",
                         "hidden_size must be of type int"),
    "model not a mapping": (lambda ck: _set_config(ck, model=[1, 2]), "config.json", "not a mapping"),
    "unknown model field": (lambda ck: _model_section(ck, heads=4), "config.json", "no valid model"),
    "100000 layers": (lambda ck: _model_section(ck, num_layers=100_000), "config.json", "bigger than its weights"),
    "hidden size 1000000": (lambda ck: _model_section(ck, hidden_size=1_000_000), "config.json",
                            "bigger than its weights"),
    "wrong shapes": (lambda ck: _model_section(ck, hidden_size=17), "model.safetensors",
                     "where the config implies [36, 17]"),
    "missing weight": (lambda ck: _set_weights(ck, lambda w: w.pop("head.weight")), "model.safetensors",
                       "missing weights head.weight"),
    "unexpected weight": (lambda ck: _set_weights(ck, lambda w: w.update({"head.bias": torch.zeros(3)})),
                          "model.safetensors", "unexpected weights head.bias"),
    "integer weights": (lambda ck: _set_weights(ck, lambda w: w.update({"rnn.b.0": w["rnn.b.0"].long()})),
                        "model.safetensors", "stored as I64"),
    "all-NaN weights": (lambda ck: _set_weights(ck, _nan), "model.safetensors", "NaN or infinite"),
    "flipped bytes": (lambda ck: _flip_byte(ck / "model.safetensors"), "model.safetensors", "damaged or changed"),
    "truncated weights": (lambda ck: _truncate(ck / "model.safetensors"), "model.safetensors", "damaged or changed"),
    "corrupt safetensors": (lambda ck: [(ck / "model.safetensors").write_bytes(b"\x08" + bytes(40)),
                                        _set_config(ck, weights_sha256=None)],
                            "model.safetensors", "not a readable safetensors"),
    "no weights": (lambda ck: (ck / "model.safetensors").unlink(), "ck", "has no model.safetensors"),
    "weights are a directory": (lambda ck: _as_directory(ck / "model.safetensors"), "ck", "(it is a directory)"),
    "bad sha256": (lambda ck: _set_config(ck, weights_sha256="abc"), "config.json", "no sha256"),
    "malformed final": (lambda ck: _set_config(ck, final={"train": {}, "test": "x"}), "config.json", "final losses"),
    "malformed reading": (lambda ck: _set_config(ck, final={"train": {"nats": 1.0, "bpc": 1.4}, "test": {
        "nats": 1.0, "bpc": 1.4}, "cache": {"label": "continuous cache", "test": 3}}), "config.json", "final['cache']"),
    "malformed history": (lambda ck: _set_config(ck, history=[{"epoch": 1}]), "config.json", "history entry (1)"),
    "history not a list": (lambda ck: _set_config(ck, history="x"), "config.json", "history that is not a list"),
    "unknown dtype": (lambda ck: _set_config(ck, dtype="__class__"), "config.json", "no storage type"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_every_malformed_checkpoint_ends_in_one_error_naming_the_file(tmp_path, case):
    damage, named, words = MALFORMED[case]
    ck = tmp_path / "ck"
    charrnn.save(tiny_model("paper"), ck, {"history": []})
    damage(ck)
    with pytest.raises(CheckpointError) as e:
        charrnn.load(ck)
    assert str(ck if named == "ck" else ck / named) in str(e.value) and words in str(e.value), str(e.value)


def test_a_huge_config_json_is_refused_without_being_read_whole(tmp_path, monkeypatch):
    ck = charrnn.save(tiny_model("paper"), tmp_path / "ck", {"note": "x" * 2000})
    monkeypatch.setattr(charrnn.checkpoint, "MAX_CONFIG_BYTES", 1000)
    with pytest.raises(CheckpointError, match=f"{ck / 'config.json'} is larger than"):
        charrnn.load(ck)


def test_a_config_far_bigger_than_its_weights_is_refused_before_anything_is_built(tmp_path, monkeypatch):
    ck = tmp_path / "ck"
    charrnn.save(tiny_model("lstm"), ck, {})
    _model_section(ck, num_layers=100_000)
    built = []
    monkeypatch.setattr(charrnn.checkpoint, "CharRNN", lambda config: built.append(config))
    with pytest.raises(CheckpointError, match=r"num_layers 100,000 \(the file holds 6 tensors\)"):
        charrnn.load(ck)
    assert built == []  # not even on the meta device


def test_the_record_holds_the_sha256_of_the_weights_and_old_records_without_it_still_load(tmp_path):
    model = tiny_model("gru").eval()
    ck = charrnn.save(model, tmp_path / "ck", {"note": "x"})
    recorded = json.loads((ck / "config.json").read_text(encoding="utf-8"))["weights_sha256"]
    assert recorded == hashlib.sha256((ck / "model.safetensors").read_bytes()).hexdigest()
    loaded = charrnn.load(ck)
    # Saved again, the caller's record carries the old sha256 along: the new file's replaces it.
    charrnn.save(tiny_model("gru", seed=5), ck, loaded.record)
    resaved = hashlib.sha256((ck / "model.safetensors").read_bytes()).hexdigest()
    assert charrnn.load(ck).record["weights_sha256"] == resaved != recorded
    _set_config(ck, weights_sha256=None)  # as every checkpoint saved before the sha256 was recorded
    assert "weights_sha256" not in charrnn.load(ck).record


def test_saving_non_finite_weights_is_refused_and_keeps_the_checkpoint(tmp_path):
    good = tiny_model("paper")
    charrnn.save(good, tmp_path / "ck", {"note": "good"})
    bad = tiny_model("paper")
    with torch.no_grad():
        bad.head.weight[0, 0] = 70_000.0  # finite in float32, infinite in float16
    charrnn.save(bad, tmp_path / "f32", {})
    with pytest.raises(ValueError, match=r"head.weight hold NaN or infinite values \(as float16\)"):
        charrnn.save(bad, tmp_path / "ck", {}, dtype=torch.float16)
    assert charrnn.load(tmp_path / "ck").record["note"] == "good"
    assert sorted(os.listdir(tmp_path)) == ["ck", "f32"]


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


def test_a_truncated_training_state_says_so_and_the_weights_still_load(tmp_path):
    model = tiny_model("paper")
    ck = charrnn.save(model, tmp_path / "ck", {}, training_state={"model": model.state_dict(), "step": 7})
    _truncate(ck / "training_state.pt")
    with pytest.raises(CheckpointError, match=f"{ck / 'training_state.pt'} cannot be read .*truncated"):
        load_training_state(ck)
    assert torch.equal(charrnn.load(ck)(_idx(model))[0], model.eval()(_idx(model))[0])


def test_a_training_state_saved_with_other_weights_is_refused(tmp_path):
    a, b = tiny_model("paper", seed=1), tiny_model("paper", seed=2)
    charrnn.save(a, tmp_path / "a", {}, training_state={"step": 1})
    charrnn.save(b, tmp_path / "b", {}, training_state={"step": 2})
    (tmp_path / "b" / "training_state.pt").replace(tmp_path / "a" / "training_state.pt")
    with pytest.raises(CheckpointError, match="not saved with the weights beside it"):
        load_training_state(tmp_path / "a")


def test_the_resume_state_falls_back_to_the_copy_a_save_killed_between_its_renames_left(tmp_path):
    charrnn.save(tiny_model("paper"), tmp_path / "ck", {}, training_state={"step": 3})
    (tmp_path / "ck").rename(tmp_path / ".ck.old")
    assert load_training_state(tmp_path / "ck")["step"] == 3


# A save that stops for good while writing its resume state, until the test kills it.
SAVE_THEN_HANG = """
import sys, time, torch
import charrnn
from tests.helpers import tiny_model
def hang(*args, **kwargs):
    print("writing", flush=True)
    time.sleep(600)
torch.save = hang
charrnn.save(tiny_model("paper"), sys.argv[1], {}, training_state={"step": 1})
"""


def test_a_killed_save_s_directory_is_removed_by_the_next_save_and_a_live_one_never(tmp_path):
    import fcntl
    import subprocess
    import sys
    from pathlib import Path

    ck = tmp_path / "ck"
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", SAVE_THEN_HANG, str(ck)], cwd=root, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline() == "writing\n"
        live = tmp_path / f".ck.tmp-{proc.pid}"
        assert (live / "model.safetensors").exists()
        charrnn.save(tiny_model("paper", seed=1), ck, {"note": "mine"})
        assert (live / "model.safetensors").exists()  # another process's save, still running: untouched
        proc.kill()  # kill -9: the save never finishes, its directory stays behind
        proc.wait()
    finally:
        proc.kill()
    # A directory whose pid is gone but whose lock someone holds (a save in another pid namespace) stays too.
    held = tmp_path / f".ck.tmp-{proc.pid + 1_000_000}"
    held.mkdir()
    fd = os.open(held, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        charrnn.save(tiny_model("paper", seed=2), ck, {"note": "next"})
        assert sorted(os.listdir(tmp_path)) == sorted(["ck", held.name])
    finally:
        os.close(fd)
    assert charrnn.load(ck).record["note"] == "next"


def test_every_shipped_checkpoint_records_the_sha256_of_its_weights():
    """Every shipped checkpoint with weights; the mixture holds none and names its members' by their sha256."""
    from pathlib import Path

    every = sorted((Path(__file__).resolve().parents[1] / "checkpoints").glob("*/model.safetensors"))
    # Runs still training are committed as they go (to be resumed): not shipped, but their sha256 holds as well.
    shipped = [w for w in every if json.loads((w.parent / "config.json").read_text())["status"] == "complete"]
    assert len(shipped) == 5
    for config in (weights.parent / "config.json" for weights in every):
        recorded = json.loads(config.read_text(encoding="utf-8"))["weights_sha256"]
        assert recorded == hashlib.sha256((config.parent / "model.safetensors").read_bytes()).hexdigest(), config
