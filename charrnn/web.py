"""The static edition of the demo: each model as an ONNX step function, run in the visitor's browser.

    step(idx, state...) -> (logits, state..., layer0, ...)     idx (B, T) int64, logits (B, T, V) float32,
                                                                each state (L, B, H), each layer's output (B, T, H)

the model contract (charrnn.model) as a graph that ONNX Runtime Web runs on its WebAssembly backend: one call
per written character, one call for a whole text to score. The state is the model's own (the LSTM's h and c as
two inputs), zeros at the start of a text.

How the graph is made, and why:
- torch.onnx.export with dynamo=False and dynamic axes gives native GRU / LSTM / RNN nodes whose time length
  is free; torch 2.13's default exporter fixes it to the example's length.
- The model is exported in eval mode, and the mode is checked inside the export: the exporter restores the
  module's training mode, and a model in training mode would export its dropout.
- Weights that the checkpoint stores as float16 are stored so in the file (half the bytes), each behind a Cast
  to float32: the page computes in float32, with the very weights of the PyTorch model.
- The paper RNN runs as the tanh RNN its writing form derives once from U and b (cells.PaperRNN.tanh_weights),
  with s = (1 + h)/2 carried in and out as the state, so that its state is the paper's s and starts at 0.
- The layers run one by one, each a node whose whole output sequence is an output of the graph (layer0, ...):
  the hidden units at every step, which the page's Inside view shades a text by, from the same graph that writes
  (a second graph for them would carry every weight twice). An LSTM's cell state is given after the last step
  only, as ONNX's LSTM node gives it.

`export_site` writes the page (ui/web), the runtime's files copied from its pinned npm package, and per model
its .onnx and a JSON of its vocabulary, the normalisation tables, its record's figures and the input limits.
"""
from __future__ import annotations

import copy
import io
import json
import shutil
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .cells import CELLS, PaperRNN, _one_layer_modules
from .data import SAMPLE_PROMPT, START, TYPOGRAPHIC
from .fast import _tanh_layers
from .model import CharRNN
from .record import recorded_nats
from .units import bits

OPSET = 17
SITE_JSON = "models.json"  # what the page reads first: its models, limits and charts
RUNTIME_FILES = ("ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs", "ort.wasm.min.mjs")


class WebExportError(ValueError):
    """A model or a site that cannot be exported; the message says what to do."""


def paper_tanh_rnn(model: CharRNN) -> nn.RNN:
    """A PaperRNN as a stacked tanh RNN with weights derived once: h(t) = tanh(W_ih x + W_hh h + b), h = 2s - 1,
    layer 0 reading the one-hot (or embedded) input, layer l the h of the layer below (PaperRNN.tanh_weights). Its
    state is h, the tanh form the Inside view reads the units in; Step carries the paper's s in and out."""
    layers, _ = _tanh_layers(model.rnn)
    rnn = nn.RNN(layers[0][0].shape[1], model.config.hidden_size, len(layers), batch_first=True)
    for l, (W_ih, W_hh, bias) in enumerate(layers):
        getattr(rnn, f"weight_ih_l{l}").data = W_ih.clone()
        getattr(rnn, f"weight_hh_l{l}").data = W_hh.clone()
        getattr(rnn, f"bias_ih_l{l}").data = bias.clone()
        getattr(rnn, f"bias_hh_l{l}").data.zero_()
    return rnn


class Step(nn.Module):
    """The exported function: idx (B, T), state tensors (L, B, H) -> logits (B, T, V), new state tensors, and each
    layer's output at every step (B, T, H), `layer0` ... (see layer_names).

    The recurrence runs one layer at a time (cells._one_layer_modules, as the Inside view reads units), so that
    each layer is a node of its own whose whole output sequence is an output of the graph: the hidden units at
    every step, for shading a text in the page. A caller that asks for logits and state only gets them as fast as
    from one multi-layer node (ONNX Runtime copies out only the outputs asked for; the layers' sequences are
    computed either way, each feeding the next). An LSTM's cell state is not among them: ONNX's LSTM node gives
    it after the last step only."""

    def __init__(self, model: CharRNN):
        super().__init__()
        model = copy.deepcopy(model).cpu().float().eval()
        self.config, self.embed, self.head = model.config, model.embed, model.head
        self.paper = isinstance(model.rnn, PaperRNN)
        if self.paper:
            rnn = paper_tanh_rnn(model)
        elif isinstance(model.rnn, (nn.RNN, nn.GRU, nn.LSTM)):
            rnn = model.rnn
        else:
            raise WebExportError(f"the {model.config.cell!r} cell ({type(model.rnn).__name__}) has no native ONNX "
                                 "recurrence: the static edition offers the paper, rnn, gru and lstm cells, "
                                 "without weight_drop or locked dropout")
        self.lstm = isinstance(rnn, nn.LSTM)
        self.layers = nn.ModuleList(_one_layer_modules(rnn))

    def forward(self, idx: torch.Tensor, *state: torch.Tensor):
        assert not self.training, "exported in training mode: dropout would be in the graph"
        if self.embed is not None:
            x = self.embed(idx)  # (B, T, E)
        else:
            x = F.one_hot(idx, self.config.vocab_size).float()  # (B, T, V)
        if self.paper:
            state = (2 * state[0] - 1,)  # the paper's s (L, B, H) in its tanh form h
        one = len(self.layers) == 1  # the state is the layer's own: no Slice or Concat nodes around a small step
        outs, finals = [], []
        for l, layer in enumerate(self.layers):
            carried = state if one else tuple(s[l : l + 1] for s in state)  # (1, B, H) each
            x, new = layer(x, carried if self.lstm else carried[0])  # x: (B, T, H), this layer's output
            outs.append(x)
            finals.append(new if self.lstm else (new,))
        new_state = list(finals[0]) if one else [torch.cat(parts, 0) for parts in zip(*finals)]  # (L, B, H) each
        if self.paper:  # the head reads s, and s is what is carried
            x, new_state = (1 + x) / 2, [(1 + new_state[0]) / 2]
        return (self.head(x), *new_state, *outs)


def layer_names(model: CharRNN) -> list[str]:
    """The graph's outputs holding each layer's output at every step, (B, T, H): the units of the Inside view's
    groups (layer, "state") or (layer, "hidden") in [-1, 1] (charrnn.inside.probe)."""
    return [f"layer{l}" for l in range(model.config.num_layers)]


def state_names(model: CharRNN) -> list[str]:
    return ["h", "c"] if CELLS[model.config.cell] is CELLS["lstm"] else ["h"]


def onnx_bytes(model: CharRNN) -> bytes:
    """`model` as an ONNX step function (see the module's docstring), its float16-stored weights as float16."""
    try:
        import onnx  # noqa: F401  (torch's exporter and _float16_storage need it)
    except ImportError:
        raise WebExportError("the onnx package is not installed: pip install -r requirements-dev.txt") from None
    step = Step(model).eval()
    names = state_names(model)
    L, H = model.config.num_layers, model.config.hidden_size
    example = (torch.zeros(1, 3, dtype=torch.long), *(torch.zeros(L, 1, H) for _ in names))
    axes = {"idx": {0: "batch", 1: "time"}, "logits": {0: "batch", 1: "time"},
            **{n: {1: "batch"} for n in names}, **{f"{n}_out": {1: "batch"} for n in names},
            **{n: {0: "batch", 1: "time"} for n in layer_names(model)}}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The exporter warns that an RNN with batch_first and a given state may be exported in the wrong layout
        # for other batch sizes; the export is checked against the model (tests/test_web.py).
        warnings.simplefilter("ignore")
        torch.onnx.export(step, example, buf, input_names=["idx", *names],
                          output_names=["logits", *(f"{n}_out" for n in names), *layer_names(model)],
                          dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False)
    return _float16_storage(buf.getvalue(), model.record.get("dtype") == "float16")


def _float16_storage(data: bytes, stored_float16: bool) -> bytes:
    """The graph with each float32 weight that float16 holds exactly stored as float16 behind a Cast to float32
    (only for a checkpoint stored in float16: a derived or float32 weight is left as it is)."""
    import onnx
    from onnx import helper, numpy_helper

    graph_model = onnx.load_from_string(data)
    if not stored_float16:
        return data
    g = graph_model.graph
    casts, kept = [], []
    for init in g.initializer:
        w = numpy_helper.to_array(init)
        if w.dtype == np.float32 and w.size > 1 and np.array_equal(w.astype(np.float16).astype(np.float32), w):
            half = numpy_helper.from_array(w.astype(np.float16), init.name + "_f16")
            kept.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT,
                                          name=f"cast_{init.name}"))
        else:
            kept.append(init)
    del g.initializer[:]
    g.initializer.extend(kept)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    return graph_model.SerializeToString()


def normalisation() -> dict:
    """What the page needs to normalise user text as Vocab.normalize does: NFC is the browser's
    String.prototype.normalize("NFC"); the typographic variants in their order (order matters: "\\r\\n" first)."""
    assert unicodedata.normalize("NFC", "e\u0301") == "\u00e9"
    return {"form": "NFC", "typographic": [[k, v] for k, v in TYPOGRAPHIC.items()]}


def model_info(name: str, model: CharRNN, file: str) -> dict:
    """The JSON the page reads beside a model's ONNX file: how to run it and what its record says."""
    record = model.record
    test, val = recorded_nats(record, "test"), recorded_nats(record, "val")
    return {"name": name, "file": file, "vocab": model.config.vocab, "cell": model.config.cell,
            "card_name": CELLS[model.config.cell].card_name, "num_layers": model.config.num_layers,
            "hidden_size": model.config.hidden_size, "state": state_names(model), "layers": layer_names(model),
            "num_params": model.num_params(),
            "dtype": record.get("dtype", "float32"),
            "test_bpc": None if test is None else bits(test), "val_bpc": None if val is None else bits(val)}


def site_json(site: dict) -> bytes:
    """The page's models.json."""
    return json.dumps(site, ensure_ascii=False, indent=1).encode("utf-8")


def runtime_dir(root: Path) -> Path:
    return root / "node_modules" / "onnxruntime-web" / "dist"


def export_site(models: dict[str, CharRNN], out: str | Path, page: str | Path, limits: dict,
                app_url: str | None = None, loss_classes: list | None = None,
                charts: dict[str, str] | None = None, views: dict[str, dict] | None = None,
                inside: dict | None = None) -> list[Path]:
    """Write the static site into directory `out`: the page's files from `page` (ui/web), the runtime's files from
    its npm package there, and per model NAME.onnx; models.json lists them in the given order with the input limits,
    the normalisation tables, the start character, `app_url` (the full app, linked from the page; None = no
    link) and `loss_classes` ([upper bound in bits or None for no bound, label, colour] per class of a scored
    character, as the app colours them), `charts` (the Learning view's SVG, drawn by the app's code, by name),
    `views` (by model name, what the app's views show of it: added to the model's entry) and `inside` (what the
    Inside view needs for every model).
    The page's stylesheets are the app's (the style.css beside `page`, copied as app.css) and its own. Returns the files written."""
    out, page = Path(out), Path(page)
    if out.exists() and any(out.iterdir()) and not (out / SITE_JSON).exists():
        raise WebExportError(f"{out} exists and holds no exported site: choose a new or empty directory")
    runtime = runtime_dir(page)
    missing = [f for f in RUNTIME_FILES if not (runtime / f).exists()]
    if missing:
        raise WebExportError(f"onnxruntime-web is not installed in {page} ({', '.join(missing)} missing): "
                             f"run `npm ci` in {page}")
    if (out / SITE_JSON).exists():  # an earlier export: its models go, so that none of another set is left
        shutil.rmtree(out / "models", ignore_errors=True)
    (out / "models").mkdir(parents=True, exist_ok=True)
    written = []
    for f in sorted(page.iterdir()):
        if f.is_file() and f.suffix in (".html", ".js", ".css"):
            written.append(Path(shutil.copy2(f, out / f.name)))
    if (page.parent / "style.css").exists():  # the app's stylesheet (ui/style.css): the charts' rules, among others
        written.append(Path(shutil.copy2(page.parent / "style.css", out / "app.css")))
    for f in RUNTIME_FILES:
        written.append(Path(shutil.copy2(runtime / f, out / f)))
    infos = []
    for i, (name, model) in enumerate(models.items()):
        if not isinstance(model, CharRNN):
            raise WebExportError(f"{name!r} is not a single network (a mixture?): the static edition runs CharRNNs")
        file = f"models/{i}-{model.config.cell}.onnx"
        (out / file).write_bytes(onnx_bytes(model))
        written.append(out / file)
        info = model_info(name, model, file)
        info["bytes"] = (out / file).stat().st_size
        info.update((views or {}).get(name, {}))
        infos.append(info)
    site = {"models": infos, "limits": limits, "normalize": normalisation(), "start": START,
            "sample_prompt": SAMPLE_PROMPT, "app_url": app_url,
            "loss_classes": loss_classes or [], "charts": charts or {}, "inside": inside or {}}
    (out / SITE_JSON).write_bytes(site_json(site))
    written.append(out / SITE_JSON)
    return written
