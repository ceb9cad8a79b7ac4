"""The "How it learned" view: a model's recorded losses by epoch, its samples during training, and every
model side by side."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from charrnn import report
from charrnn.data import SAMPLE_PROMPT
from charrnn.testtime import METHODS
from charrnn.units import bits

from .validate import Catalog, as_number


class Learned:
    """The view's actions over the catalogue of models; `history` is the public endpoint /history."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    def history(self, model):
        """The recorded train and test loss of model `model` (a name) by epoch (bits/char), and its summary table."""
        record = self.catalog[model].record
        curve = pd.DataFrame(report.loss_curve(record), columns=report.CURVE_COLUMNS)
        return curve, pd.DataFrame(report.summary_rows(record), columns=["quantity", "value"])

    def training_sample(self, model, index):
        """What the model wrote at its `index`-th recorded evaluation (1 = the first), with when that was."""
        history = self.catalog[model].record.get("history") or []
        if not history:
            return "This checkpoint recorded no samples during training.", ""
        h = history[as_number("index", index, 1, len(history), integer=True) - 1]
        caption = (f"Epoch {h['epoch']:g}: {h['chars']:,} characters seen, test loss {bits(h['test_loss']):.3f} "
                   f"bits/char. Sample at temperature 0.8, after the prompt {SAMPLE_PROMPT.strip()!r}:")
        return caption, SAMPLE_PROMPT + h["sample"]

    def num_evals(self, model) -> int:
        return len(self.catalog[model].record.get("history") or [])

    def epochs(self, model):
        """The epoch slider for `model`, set on its last evaluation, and that evaluation's sample."""
        n = self.num_evals(model)  # a slider needs two positions: with fewer evaluations it is hidden
        return gr.Slider(maximum=max(n, 2), value=max(n, 1), visible=n > 1), *self.training_sample(model, max(n, 1))

    def all_models(self):
        """Loss curves of every model in one frame, and their summaries side by side."""
        curves, columns = [], {}
        for name in self.catalog.names():
            record = self.catalog[name].record
            curves += [{**p, "model · split": f"{name} · {p['split']}"} for p in report.loss_curve(record)]
            columns[name] = dict(report.summary_rows(record))
        quantities = list(dict.fromkeys(q for col in columns.values() for q in col))
        table = pd.DataFrame([[q, *(col.get(q, "") for col in columns.values())] for q in quantities],
                             columns=["quantity", *columns])
        return pd.DataFrame(curves, columns=[*report.CURVE_COLUMNS, "model · split"]), table


def build_learned(catalog: Catalog, model: gr.Dropdown) -> Learned:
    """Lay out the view inside the current tab and wire it to the model dropdown."""
    view = Learned(catalog)
    first = model.value
    plot_kw = dict(x="epoch", y="bits/char", x_title="epoch", y_title="loss (bits/char)", height=320)
    curve, table = view.history(first)
    with gr.Row():
        loss_plot = gr.LinePlot(curve, color="split", title="This model", elem_id="loss-plot", **plot_kw)
        summary = gr.Dataframe(table, label="Losses and over-fitting", interactive=False, wrap=True,
                               column_widths=["40%", "60%"], max_height=800, elem_id="summary")
    n = view.num_evals(first)
    caption, sample = view.training_sample(first, max(n, 1))
    epoch = gr.Slider(1, max(n, 2), max(n, 1), step=1, visible=n > 1, label="Evaluation during training",
                      info="what the model wrote at that point of training", elem_id="epoch")
    sample_caption = gr.Markdown(caption)
    sample_box = gr.Textbox(sample, lines=8, label="Sample", interactive=False, elem_id="sample")
    gr.Markdown("### All models")
    all_curves, all_table = view.all_models()
    gr.LinePlot(all_curves, color="model · split", title="All models", elem_id="all-plot", **plot_kw)
    widths = ["22%"] + [f"{78 / len(catalog.names()):.0f}%"] * len(catalog.names())
    gr.Dataframe(all_table, label="Side by side", interactive=False, wrap=True, column_widths=widths,
                 max_height=800, elem_id="all-summary")
    gr.Markdown(" ".join(f"*Test loss, {m.label}*: {m.prose}." for m in METHODS.values())
                + " The other losses are those of the stored weights as they are.", elem_id="dynamic-note")
    model.change(view.history, model, [loss_plot, summary], api_name="history", preprocess=False)
    model.change(view.epochs, model, [epoch, sample_caption, sample_box], api_visibility="private", preprocess=False)
    epoch.change(view.training_sample, [model, epoch], [sample_caption, sample_box], api_visibility="private",
                 preprocess=False)
    return view
