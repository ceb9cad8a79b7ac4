"""The static edition's exporter (charrnn.web): each model as an ONNX step function that gives the PyTorch model's
next-character distribution (float32 compute) within 1e-4 at every position, checked with onnxruntime."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import charrnn
from charrnn.cli import main
from charrnn import inside
from charrnn.web import WebExportError, export_site, layer_names, onnx_bytes, state_names

from .conftest import SPEAKERS, WORDS

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -r requirements-dev.txt)")

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "ui" / "web"
SHIPPED = ["seed", "paper-rnn", "gru", "lstm", "gru-large"]
needs_npm = pytest.mark.skipif(not (PAGE / "node_modules" / "onnxruntime-web").exists(),
                               reason="onnxruntime-web is not installed: run `npm ci` in ui/web")


def play_text(n: int, seed: int = 1) -> str:
    """n characters of invented dialogue in the corpus's layout (no corpus text)."""
    rng, parts = random.Random(seed), []
    while sum(map(len, parts)) < n:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))
        parts.append(f"{rng.choice(SPEAKERS)}.\n\n{line[0].upper()}{line[1:]}{rng.choice('.!?')}\n\n")
    return "".join(parts)[:n]


def exported(model, text: str, outputs: list[str]) -> list[np.ndarray]:
    """The exported model's `outputs` after reading `text` from the zero state in one call."""
    session = ort.InferenceSession(onnx_bytes(model), providers=["CPUExecutionProvider"])
    L, H = model.config.num_layers, model.config.hidden_size
    feeds = {"idx": np.array([model.encode(text)], dtype=np.int64),
             **{n: np.zeros((L, 1, H), np.float32) for n in state_names(model)}}
    return session.run(outputs, feeds)


def exported_probs(model, text: str) -> np.ndarray:
    """The exported model's next-character distributions after each character of `text`, in one call: (T, V)."""
    logits = exported(model, text, ["logits"])[0][0]  # (T, V)
    return torch.softmax(torch.from_numpy(logits).double(), -1).numpy()


def assert_layers_are_the_inside_view_s_units(model, text: str) -> None:
    """Each exported layer output (layer0, ...) at every step is that layer's group of units as the Inside view
    reads them (charrnn.inside), the LSTM's cell state aside; the last step's is the state carried out."""
    *layers, h_out = exported(model, text, [*layer_names(model), "h_out"])
    expected = [acts.numpy() for _, kind, acts in inside.probe.activations(model, text) if kind != "cell"]
    assert len(layers) == len(expected) == model.config.num_layers
    for got, want in zip(layers, expected):
        assert got.shape == (1, len(text), model.config.hidden_size)
        np.testing.assert_allclose(got[0], want, atol=1e-4, rtol=0)
    paper = model.config.cell == "paper"  # its state is s = (1 + h)/2
    np.testing.assert_allclose(np.stack([l[0, -1] for l in layers]), (2 * h_out[:, 0] - 1) if paper else h_out[:, 0],
                               atol=1e-6, rtol=0)


@torch.inference_mode()
def torch_probs(model, text: str) -> np.ndarray:
    model = model.float().eval()
    logits, _ = model(torch.tensor([model.encode(text)]))
    return torch.softmax(logits[0].double(), -1).numpy()


def tiny(cell: str, vocab: str, **kw) -> charrnn.CharRNN:
    """An untrained tiny model with its output layer scaled up, so that its predictions are far from uniform (the
    recurrence is left as initialised: scaled up, it turns chaotic, and float rounding alone parts two runs)."""
    torch.manual_seed(0)
    model = charrnn.CharRNN(charrnn.ModelConfig(vocab, cell, hidden_size=24, **kw))
    with torch.no_grad():
        model.head.weight.mul_(20)
    return model.eval()


CELLS = [("paper", {}), ("paper", {"num_layers": 2, "embed_size": 6}), ("rnn", {"num_layers": 2}), ("gru", {}),
         ("gru", {"num_layers": 2, "embed_size": 6, "dropout": 0.5}), ("lstm", {}),
         ("lstm", {"num_layers": 2, "embed_size": 6, "dropout": 0.5})]


@pytest.mark.parametrize("cell, kw", CELLS, ids=[f"{c}-{len(kw)}" for c, kw in CELLS])
def test_the_exported_step_gives_the_model_s_distribution_at_every_position(cell, kw, tiny_text):
    model = tiny(cell, charrnn.Vocab.from_text(tiny_text).chars, **kw)
    text = play_text(600)
    expected = torch_probs(model, text)
    assert expected.max(-1).mean() > 3 / len(model.vocab)  # far from uniform, so that a wrong graph shows
    np.testing.assert_allclose(exported_probs(model, text), expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("cell, kw", CELLS, ids=[f"{c}-{len(kw)}" for c, kw in CELLS])
def test_the_exported_layers_give_every_hidden_unit_at_every_step(cell, kw, tiny_text):
    model = tiny(cell, charrnn.Vocab.from_text(tiny_text).chars, **kw)
    assert_layers_are_the_inside_view_s_units(model, play_text(600))


def test_the_state_carries_from_call_to_call_as_the_model_s(tiny_checkpoints):
    model = charrnn.load(tiny_checkpoints["lstm"])
    session = ort.InferenceSession(onnx_bytes(model), providers=["CPUExecutionProvider"])
    text = play_text(200)
    L, H = model.config.num_layers, model.config.hidden_size
    state = [np.zeros((L, 1, H), np.float32)] * 2
    rows = []
    for c in text:  # one character per call, as the page writes
        logits, *state = session.run(None, {"idx": np.array([model.encode(c)]), "h": state[0], "c": state[1]})
        rows.append(logits[0, -1])
    probs = torch.softmax(torch.from_numpy(np.stack(rows)).double(), -1).numpy()
    np.testing.assert_allclose(probs, torch_probs(model, text), atol=1e-4, rtol=0)


def test_a_model_in_training_mode_is_exported_without_its_dropout(tiny_text):
    model = tiny("gru", charrnn.Vocab.from_text(tiny_text).chars, num_layers=2, embed_size=6, dropout=0.5)
    text = play_text(300)
    expected = torch_probs(model, text)
    model.train()
    np.testing.assert_allclose(exported_probs(model, text), expected, atol=1e-4, rtol=0)
    assert model.training  # the caller's model is left as it was


def test_float16_stored_weights_are_stored_as_float16_and_computed_in_float32(tiny_checkpoints, tmp_path):
    model = charrnn.load(tiny_checkpoints["lstm"])
    half = charrnn.load(charrnn.save(model, tmp_path / "half", charrnn.record.caller_fields(model.record),
                                     dtype=torch.float16))
    assert len(onnx_bytes(half)) < 0.6 * len(onnx_bytes(model))
    text = play_text(400)
    np.testing.assert_allclose(exported_probs(half, text), torch_probs(half, text), atol=1e-5, rtol=0)


@pytest.mark.parametrize("cell, kw", [("ln-lstm", {}), ("gru", {"weight_drop": 0.2}), ("mingru", {})])
def test_a_cell_without_a_native_onnx_recurrence_is_refused_saying_which_are_offered(cell, kw, tiny_text):
    model = charrnn.CharRNN(charrnn.ModelConfig(charrnn.Vocab.from_text(tiny_text).chars, cell, hidden_size=8, **kw))
    with pytest.raises(WebExportError, match="offers the paper, rnn, gru and lstm cells"):
        onnx_bytes(model)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_model_exports_to_its_own_distribution(name):
    model = charrnn.load(ROOT / "checkpoints" / name)
    text = model.vocab.normalize(play_text(2000, seed=2))[0]
    assert len(text) == 2000
    np.testing.assert_allclose(exported_probs(model, text), torch_probs(model, text), atol=1e-4, rtol=0)
    assert_layers_are_the_inside_view_s_units(model, text)


def test_export_without_onnx_says_what_to_install(tiny_checkpoints, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(WebExportError, match="pip install -r requirements-dev.txt"):
        onnx_bytes(charrnn.load(tiny_checkpoints["paper"]))


def test_export_without_the_runtime_says_to_run_npm_ci(tiny_checkpoints, tmp_path):
    (tmp_path / "page").mkdir()
    with pytest.raises(WebExportError, match="run `npm ci` in"):
        export_site({"x": charrnn.load(tiny_checkpoints["paper"])}, tmp_path / "site", tmp_path / "page", {})
    assert not (tmp_path / "site").exists()


def test_export_refuses_to_write_into_a_directory_that_holds_something_else(tiny_checkpoints, tmp_path, capsys):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match="holds no exported site"):
        main(["export-web", str(tmp_path / "site"), "--models", str(tiny_checkpoints["paper"])])
    assert (tmp_path / "site" / "notes.txt").read_text() == "mine"


@needs_npm
def test_export_web_writes_the_page_the_runtime_and_each_model(tiny_checkpoints, tmp_path, capsys):
    out = tmp_path / "site"
    main(["export-web", str(out), "--models", str(tiny_checkpoints["paper"]), str(tiny_checkpoints["lstm"])])
    site = json.loads((out / "models.json").read_text(encoding="utf-8"))
    assert [m["cell"] for m in site["models"]] == ["paper", "lstm"]
    assert [m["state"] for m in site["models"]] == [["h"], ["h", "c"]]
    assert site["limits"]["max_prompt_chars"] == 2000 and site["limits"]["max_compare_length"] == 600
    for m in site["models"]:
        assert (out / m["file"]).stat().st_size == m["bytes"]
    for f in ("index.html", "ort.wasm.min.mjs", "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs"):
        assert (out / f).exists(), f
    assert "wrote" in capsys.readouterr().out
    main(["export-web", str(out), "--models", str(tiny_checkpoints["lstm"])])  # over the earlier export
    assert sorted(f.name for f in (out / "models").iterdir()) == ["0-lstm.onnx"]  # no model of the earlier set left
