"""The "How it learned" view: how well each model predicts Molière, in pictures, then the chosen model's key
figures and what it wrote at each point of its training. One unit everywhere: bits per character."""
from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pandas as pd

from charrnn import report
from charrnn.data import SAMPLE_PROMPT
from charrnn.mixture import Mixture
from charrnn.record import SPLIT_NAMES, readings
from charrnn.testtime import METHODS
from charrnn.units import bits

from . import charts, render
from .validate import Catalog, as_number

# The training-cost sweep (python -m charrnn bench train --sequence-lengths ... --record), where it was recorded.
TRAIN_COST = Path(__file__).resolve().parent.parent / "checkpoints" / "train-cost.json"

# Adaptive compressors on the same test split, given the training text as context (compress train + test and
# train alone, take the difference), measured by this project (README, "Results"): the marks a model that
# reads adaptively has to beat.
# Measured by the project on the same test split given the training text (paq8px v216 is not installable here).
COMPRESSORS = [("xz -9e", 2.12), ("zpaq -m5", 1.59), ("paq8px -8", 1.386)]
WEIGHTS_ALONE = "weights alone"


class Learned:
    """The view's actions over the catalogue of models; `history` is the public endpoint /history."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    def history(self, model: str) -> tuple[list[dict], list[list[str]]]:
        """Model `model`'s recorded losses by evaluation (bits/char: one point per epoch and split) and its
        summary (rows of [quantity, value])."""
        record = self.catalog[model].record
        return report.loss_curve(record), report.summary_rows(record)

    def test_bars(self) -> str:
        """Test bits/char of every model: the weights alone and each test-time reading, beside the compressors."""
        groups = []
        for name in self.catalog.names():
            record = self.catalog[name].record
            final = record.get("final") or {}
            group = {WEIGHTS_ALONE: bits(final["test"]["nats"])} if "test" in final else {}
            group.update({r["label"]: bits(r["test"]["nats"]) for r in readings(record).values()})
            if group:
                groups.append((name, group))
        series = [WEIGHTS_ALONE, *(m.label for m in METHODS.values())]
        return charts.bars(groups, series, COMPRESSORS)

    def loss_curves(self) -> str:
        """One panel per model: its train, validation and test loss at each evaluation."""
        panels = []
        for name in self.catalog.names():
            points = report.loss_curve(self.catalog[name].record)
            splits = {SPLIT_NAMES[s]: [(p["epoch"], p["bits/char"]) for p in points if p["split"] == s]
                      for s in SPLIT_NAMES}
            panels.append((name, {s: line for s, line in splits.items() if line}))
        return charts.curves(panels)

    def train_cost(self, path: Path = TRAIN_COST) -> tuple[str, str]:
        """The recorded training-cost sweep as small multiples (one per batch size: characters/s against the sequence
        length, one line per model) and a caption saying where and how it was measured; ("", "") if none is."""
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            rows = record["rows"]
        except (OSError, ValueError, KeyError, TypeError):
            return "", ""
        panels = {}
        for r in rows:
            panels.setdefault(f"batch of {r['batch_size']}", {}).setdefault(r["model"], []).append(
                (r["seq_len"], r["chars_s"]))
        load = record.get("load_average", ["?", "?"])
        caption = (f"Measured by `python -m charrnn bench train --sequence-lengths` on {record.get('date', '?')}: "
                   f"torch {record.get('torch', '?')}, {record.get('threads', '?')} CPU thread(s), load average "
                   f"{load[0]} to {load[-1]}; a matrix multiply ran at {record.get('matmul_gflops', '?')} GFLOP/s "
                   "there. Each step is the trainer's own (forward, backward, AdamW) on ~2.5 million weights.")
        return charts.speeds(list(panels.items())), caption

    def key_figures(self, model) -> str:
        """The few figures of a model a visitor needs, in a sentence or two."""
        s = report.summary(self.catalog[model].record)
        if "test_nats" not in s:
            return f"**{model}** recorded no losses."
        held = f", validation text {bits(s['val_nats']):.2f}" if "val_nats" in s else ""
        adaptive = "".join(f"; read with {label}, {bits(nats):.2f}" for label, nats in s.get("readings", {}).items())
        status = "" if s["complete"] else f" Training is not finished (epoch {s.get('epoch', 0):g}): last evaluation."
        return (f"**{model}**: **{bits(s['test_nats']):.2f} bits/char** on Molière's test text{adaptive}; "
                f"training text {bits(s['train_nats']):.2f}{held}.{status}  \n"
                f"Generalisation gap: {s['gap']}.")

    def side_by_side(self) -> pd.DataFrame:
        """Every figure of every model, one column per model."""
        columns = {name: dict(report.summary_rows(self.catalog[name].record)) for name in self.catalog.names()}
        quantities = list(dict.fromkeys(q for col in columns.values() for q in col))
        return pd.DataFrame([[q, *(col.get(q, "") for col in columns.values())] for q in quantities],
                            columns=["quantity", *columns])

    def training_sample(self, model, index):
        """What the model wrote at its `index`-th recorded evaluation (1 = the first), with when that was."""
        m = self.catalog[model]
        history = m.record.get("history") or []
        if not history:
            about = ("A mixture is not trained (its members were): it has no samples from training; choose one of its "
                     "members to read what it wrote as it learned." if isinstance(m, Mixture) else
                     "This checkpoint recorded no samples during training.")
            return about, render.play("", "")
        h = history[as_number("index", index, 1, len(history), integer=True) - 1]
        caption = (f"Epoch {h['epoch']:g}: {h['chars']:,} characters seen, test loss {bits(h['test_loss']):.2f} "
                   f"bits/char. What it wrote then, at temperature 0.8:")
        return caption, render.play(SAMPLE_PROMPT, h["sample"])

    def training_samples(self, model) -> list[tuple[str, str]]:
        """training_sample at every recorded evaluation of `model`, first to last (the static edition's slider); for
        a model with none, the one that says so."""
        return [self.training_sample(model, i) for i in range(1, max(self.num_evals(model), 1) + 1)]

    def num_evals(self, model) -> int:
        return len(self.catalog[model].record.get("history") or [])

    def chosen(self, model):
        """Everything of the view that follows the model dropdown: key figures, the evaluation slider set on the
        last evaluation, and what the model wrote then."""
        n = self.num_evals(model)  # a slider needs two positions: with fewer evaluations it is hidden
        return (self.key_figures(model), gr.Slider(maximum=max(n, 2), value=max(n, 1), visible=n > 1),
                *self.training_sample(model, max(n, 1)))


def build_learned(catalog: Catalog, model: gr.Dropdown) -> Learned:
    """Lay out the view inside the current tab and wire it to the model dropdown."""
    view = Learned(catalog)
    gr.Markdown("### How well each model predicts Molière\nBits per character on the test text, the last tenth of "
                "the corpus (plays the models never read): the fewer, the better the model knows what comes next. "
                "The dashed lines are file compressors that adapt to the text as they read it.")
    gr.HTML(view.test_bars(), elem_id="test-bars")
    gr.Markdown("### How each model learned\nLoss at each evaluation during training. The test plays differ from "
                "the training plays, so the test line sits above the others even without over-fitting; the "
                "validation line (the same plays, held out) shows over-fitting where it rises again.")
    gr.HTML(view.loss_curves(), elem_id="loss-curves")
    cost, cost_caption = view.train_cost()
    if cost:
        gr.Markdown("### Why RNNs gave way: the cost of training\nCharacters per second of training against the "
                    "length of the sequences trained on. The GRU reads a sequence one character after another; the "
                    "minGRU and the transformer compute every position at once, so they gain where many positions "
                    "wait: with few sequences in a batch, on hardware that runs many products together.")
        gr.HTML(cost, elem_id="train-cost")
        gr.Markdown(cost_caption)
    gr.Markdown("### The chosen model")
    figures, n = gr.Markdown(view.key_figures(model.value), elem_id="key-figures"), view.num_evals(model.value)
    epoch = gr.Slider(1, max(n, 2), max(n, 1), step=1, visible=n > 1, label="Evaluation during training",
                      info="what the model wrote at that point of its training", elem_id="epoch")
    caption, sample = view.training_sample(model.value, max(n, 1))
    sample_caption = gr.Markdown(caption)
    sample_box = gr.HTML(sample, elem_id="sample", elem_classes="text-out")
    with gr.Accordion("Every figure of every model", open=False):
        gr.Dataframe(view.side_by_side(), interactive=False, wrap=False, max_height=800, elem_id="all-summary")
        gr.Markdown(" ".join(f"*Test bits/char, {m.label}*: {m.prose}." for m in METHODS.values())
                    + " The other figures are those of the stored weights as they are.", elem_id="readings-note")
    model.change(view.chosen, model, [figures, epoch, sample_caption, sample_box], api_visibility="private",
                 preprocess=False)
    epoch.change(view.training_sample, [model, epoch], [sample_caption, sample_box], api_visibility="private",
                 preprocess=False)
    catalog.publish(view.history, "history")
    return view
