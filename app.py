"""The Gradio demo: write like Molière, see how each model learned, score a text.

    python app.py [--model PATH_OR_HUB_ID ...]

serves on 127.0.0.1:7860 (GRADIO_SERVER_NAME and GRADIO_SERVER_PORT override it; a Hugging Face Space
runs it unchanged). Extra models come from --model (repeatable) and CHARRNN_MODELS (comma-separated).

Layout and wiring only: every computation is in charrnn. Requests are untrusted (the API bypasses the
sliders), so each action checks its inputs against the limits below, the same ones the sliders use,
and raises gr.Error saying what is allowed.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import gradio as gr
import pandas as pd

import charrnn
from charrnn import report
from charrnn.cache import CachedModel
from charrnn.scoring import LN2
from charrnn.sample import configure_cpu_for_sampling
from charrnn.training import SAMPLE_PROMPT

HERE = Path(__file__).resolve().parent
SHIPPED = {"Paper RNN (Mikolov 2010)": HERE / "checkpoints" / "paper-rnn", "GRU": HERE / "checkpoints" / "gru",
           "GRU, hidden 704": HERE / "checkpoints" / "gru-large", "LSTM": HERE / "checkpoints" / "lstm",
           # The course notebook's recipe (hidden 128, 50,000 characters, one SGD step a character): the "before".
           "Course notebook recipe": HERE / "checkpoints" / "seed"}

# The limits of every request, enforced on the server and shown by the sliders.
MAX_LENGTH = 2000  # characters per generation: ~1 s of CPU for the LSTM
MAX_TEMPERATURE = 2.0  # above 2 the text is noise
MAX_SEED_CHARS = 2000  # the seed is read in one pass; longer adds cost and no style
MAX_SCORE_CHARS = 5000
MAX_RANDOM_SEED = 2**31 - 1  # -1 or empty = a new random seed for each request
CONCURRENCY = 2  # model calls at once: one per vCPU of a free Space, each on one torch thread
QUEUE_SIZE = 64  # waiting requests beyond this are refused with "queue full" rather than piling up
TIME_LIMIT_S = 60  # no request holds a worker longer than this
STREAM_EVERY_S = 0.05  # the text reaches the browser in batches this far apart (the first character at once)

DEFAULT_SEED = SAMPLE_PROMPT  # a speaker's name as the corpus writes it: the model answers in their voice
EXAMPLES = [  # seed, length, temperature, top_k, top_p, random_seed
    ["HARPAGON.\n\n", 400, 0.8, 0, 1.0, 1],
    ["SGANARELLE.\n\nAh! monsieur, ", 400, 0.7, 0, 0.95, 7],
    ["DORINE.\n\nMadame, votre fils ", 300, 0.5, 10, 1.0, 3],
    ["CÉLIMÈNE.\n\nVous êtes ", 300, 1.0, 0, 1.0, 42],
    ["TARTUFFE.\n\n", 300, 0.0, 0, 1.0, -1],
]
# Per-character loss classes of the scoring panel, in bits: colour from expected to surprising.
LOSS_CLASSES = [(1.0, "≤ 1 bit"), (3.0, "1–3 bits"), (6.0, "3–6 bits"), (math.inf, "> 6 bits")]
LOSS_COLORS = dict(zip((c for _, c in LOSS_CLASSES), ("#74c69d", "#ffe066", "#ff9f5a", "#ff4d4d")))
SHOWN_AS = {" ": "␣ (space)", "\n": "↵ (new line)"}
NEWLINE = "↵\n"
# The scored characters side by side as in the text: Gradio's spaces between tokens are whitespace
# text nodes, which a flex container does not render.
CSS = """#colored .token-container, #colored .token { display: inline-flex; border-radius: 0; padding: 0; margin: 0; }
#colored .token .text { font-family: var(--font-mono); white-space: pre; }"""


def _number(name: str, value, lo: float, hi: float, integer: bool = False, above_lo: bool = False):
    """`value` as an int or float within [lo, hi] (or (lo, hi]), else a gr.Error that states the range."""
    lo, hi = (int(b) if float(b).is_integer() else b for b in (lo, hi))  # 2147483647, not 2.14748e+09
    allowed = (f"{name} must be {'an integer' if integer else 'a number'} "
               + (f"greater than {lo} and at most {hi}" if above_lo else f"from {lo} to {hi}"))
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < lo or value > hi or (above_lo and value == lo) or (integer and value != int(value)):
        raise gr.Error(f"{allowed}; got {value!r:.40}")
    return int(value) if integer else float(value)


def _text(name: str, value, max_chars: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise gr.Error(f"{name} must be text; got {type(value).__name__}")
    if len(value) > max_chars:
        raise gr.Error(f"{name} is {len(value):,} characters long; at most {max_chars:,} are allowed")
    return value


def _dropped_note(dropped: list[str], n: int) -> str:
    shown = ", ".join(repr(c) for c in dropped[:10]) + (", …" if len(dropped) > 10 else "")
    return f"{n} character(s) the model has never seen were left out: {shown}"


class Actions:
    """What the app does, over a fixed set of loaded models. One method per action, each a public endpoint."""

    def __init__(self, models: dict[str, charrnn.CharRNN]):
        if not models:
            raise ValueError("the app needs at least one model")
        self.models = models

    def _model(self, name) -> charrnn.CharRNN:
        if not isinstance(name, str) or name not in self.models:
            raise gr.Error(f"unknown model {name!r:.60}: choose one of {', '.join(map(repr, self.models))}")
        return self.models[name]

    def generate(self, model, seed, length, temperature, top_k, top_p, random_seed):
        """Stream the `length` characters the model writes after `seed` (the growing text, not including the seed)."""
        m = self._model(model)
        seed = _text("seed", seed, MAX_SEED_CHARS)
        length = _number("length", length, 1, MAX_LENGTH, integer=True)
        temperature = _number("temperature", temperature, 0, MAX_TEMPERATURE)
        top_k = _number("top_k", top_k, 0, len(m.vocab), integer=True)
        top_p = _number("top_p", top_p, 0, 1, above_lo=True)
        if random_seed is None or random_seed == -1:
            random_seed = None
        else:
            random_seed = _number("random_seed (or -1 for a new random seed)", random_seed, 0, MAX_RANDOM_SEED,
                                  integer=True)
        clean, n_dropped = m.vocab.normalize(seed)
        if n_dropped:
            gr.Warning(_dropped_note(m.vocab.dropped_chars(seed), n_dropped))
        chars, last = [], 0.0
        for ch in charrnn.generate(m, clean, length, temperature, top_k, top_p, random_seed):
            chars.append(ch)
            now = time.perf_counter()
            if len(chars) == 1 or now - last >= STREAM_EVERY_S or len(chars) == length:
                last = now
                yield "".join(chars)

    def score(self, model, text, cache=False):
        """Each character coloured by its loss, the average bits/char, and the likely next characters; with
        `cache`, as the model reads with its recorded continuous cache (a name once read is expected again)."""
        m = self._model(model)
        text = _text("text", text, MAX_SCORE_CHARS)
        if cache not in (True, False, None):
            raise gr.Error(f"cache must be true or false, not {cache!r:.60}")
        if cache:
            try:
                m = CachedModel.from_record(m)
            except ValueError:
                raise gr.Error(f"{model} records no cache settings: score it without the cache") from None
        r = report.score(m, text)
        if r["bpc"] is None:
            raise gr.Error("text must hold at least two characters the model knows: the first is only read, "
                           "each later one is predicted from those before it")
        classes = [next(label for bound, label in LOSS_CLASSES if b <= bound) for b in r["bits"]]
        # A line break is shown as ↵ before it, so that its loss has a colour too.
        shown = [NEWLINE if c == "\n" else c for c in r["text"]]
        highlighted = [(shown[0], None)] + list(zip(shown[1:], classes))
        note = (f"**{r['bpc']:.2f} bits/char** over the {len(r['bits']):,} characters after the first "
                f"(perplexity {2 ** r['bpc']:.1f}).")
        s = report.summary(getattr(m, "meta", {}))
        test_bpc = s["cache_test_nats"] / LN2 if cache else s.get("test_bpc")
        if test_bpc is not None:
            word = "less" if r["bpc"] < test_bpc else "more"
            note += (f" Molière's own test text costs this model {test_bpc:.2f} bits/char"
                     + (" with its cache" if cache else "") + f": yours surprises it {word}.")
        if r["n_dropped"]:
            note += f"\n\nNote: {_dropped_note(r['dropped'], r['n_dropped'])}."
        next_label = {SHOWN_AS.get(c, c): p for c, p in r["next"]}
        return highlighted, note, next_label

    def history(self, model):
        """The recorded train and test loss of the model by epoch (bits/char), and its summary table."""
        meta = getattr(self._model(model), "meta", {})
        curve = pd.DataFrame(report.loss_curve(meta), columns=report.CURVE_COLUMNS)
        return curve, pd.DataFrame(report.summary_rows(meta), columns=["quantity", "value"])

    def training_sample(self, model, index):
        """What the model wrote at its `index`-th recorded evaluation (1 = the first), with when that was."""
        history = getattr(self._model(model), "meta", {}).get("history") or []
        if not history:
            return "This checkpoint recorded no samples during training.", ""
        h = history[_number("index", index, 1, len(history), integer=True) - 1]
        caption = (f"Epoch {h['epoch']:g}: {h['chars']:,} characters seen, test loss {h['test_loss'] / LN2:.3f} "
                   f"bits/char. Sample at temperature 0.8, after the seed {SAMPLE_PROMPT.strip()!r}:")
        return caption, SAMPLE_PROMPT + h["sample"]

    def num_evals(self, model) -> int:
        return len(getattr(self._model(model), "meta", {}).get("history") or [])

    def epochs(self, model):
        """The epoch slider for `model`, set on its last evaluation, and that evaluation's sample."""
        n = self.num_evals(model)  # a slider needs two positions: with fewer evaluations it is hidden
        return gr.Slider(maximum=max(n, 2), value=max(n, 1), visible=n > 1), *self.training_sample(model, max(n, 1))

    def top_k_slider(self, model, top_k):
        """The top-k slider for `model`: up to its vocabulary size, the current value kept if it fits."""
        vocab_size = len(self._model(model).vocab)
        fits = isinstance(top_k, (int, float)) and 0 <= top_k <= vocab_size
        return gr.Slider(maximum=vocab_size, value=top_k if fits else 0)

    def all_models(self):
        """Loss curves of every model in one frame, and their summaries side by side."""
        curves, columns = [], {}
        for name, m in self.models.items():
            meta = getattr(m, "meta", {})
            curves += [{**p, "model · split": f"{name} · {p['split']}"} for p in report.loss_curve(meta)]
            columns[name] = dict(report.summary_rows(meta))
        quantities = list(dict.fromkeys(q for col in columns.values() for q in col))
        table = pd.DataFrame([[q, *(col.get(q, "") for col in columns.values())] for q in quantities],
                             columns=["quantity", *columns])
        return pd.DataFrame(curves, columns=[*report.CURVE_COLUMNS, "model · split"]), table


INTRO = """# charrnn · write like Molière
Character-level language models trained on Molière's dialogues: the simple recurrent network of
Mikolov et al. (2010), exactly as the paper defines it, GRUs of two sizes and an LSTM. They read and write
one character at a time and know no words: every word, name and line break below is learned from 1.5 M
characters.
How good they are is measured, not claimed: see *How it learned*."""


def build_app(models: dict[str, charrnn.CharRNN]) -> gr.Blocks:
    """The demo over `models` (readable name -> loaded model), with its queue set for a 2-vCPU machine."""
    actions = Actions(models)
    names = list(models)
    first = names[0]
    plot_kw = dict(x="epoch", y="bits/char", x_title="epoch", y_title="loss (bits/char)", height=320)
    model_kw = dict(concurrency_id="model", concurrency_limit=CONCURRENCY, preprocess=False)
    with gr.Blocks(title="charrnn · write like Molière", analytics_enabled=False) as demo:
        gr.Markdown(INTRO)
        model = gr.Dropdown(names, value=first, label="Model", info="the shipped models and any given with --model",
                            elem_id="model")
        with gr.Tabs():
            with gr.Tab("Write", id="write"):
                with gr.Row():
                    with gr.Column(scale=3):
                        seed = gr.Textbox(DEFAULT_SEED, lines=5, max_length=MAX_SEED_CHARS, label="Seed text",
                                          info="the model continues it; a speaker's name in capitals and a full stop "
                                               "starts a line of dialogue", elem_id="seed")
                        with gr.Row():
                            generate_btn = gr.Button("Generate", variant="primary", elem_id="generate")
                            stop_btn = gr.Button("Stop", variant="stop", elem_id="stop")
                    with gr.Column(scale=2):
                        length = gr.Slider(1, MAX_LENGTH, 500, step=1, label="Length (characters)", elem_id="length")
                        temperature = gr.Slider(0, MAX_TEMPERATURE, 0.8, step=0.05, label="Temperature",
                                                info="0 = always the most likely character")
                        top_k = gr.Slider(0, len(models[first].vocab), 0, step=1, label="Top-k",
                                          info="sample among the k most likely characters; 0 = all")
                        top_p = gr.Slider(0.01, 1, 1, step=0.01, label="Top-p", info="nucleus sampling mass; 1 = off")
                        random_seed = gr.Number(-1, precision=0, minimum=-1, maximum=MAX_RANDOM_SEED,
                                                label="Random seed", elem_id="random-seed",
                                                info="the same seed writes the same text; -1 = a new one each time")
                output = gr.Textbox(lines=14, max_lines=40, label="The model writes", elem_id="output")
                gr.Examples(EXAMPLES, [seed, length, temperature, top_k, top_p, random_seed], label="Seeds to try")
            with gr.Tab("How it learned", id="learned"):
                curve, table = actions.history(first)
                with gr.Row():
                    loss_plot = gr.LinePlot(curve, color="split", title="This model", elem_id="loss-plot", **plot_kw)
                    summary = gr.Dataframe(table, label="Losses and over-fitting", interactive=False, wrap=True,
                                           column_widths=["40%", "60%"], max_height=800, elem_id="summary")
                n = actions.num_evals(first)
                caption, sample = actions.training_sample(first, max(n, 1))
                epoch = gr.Slider(1, max(n, 2), max(n, 1), step=1, visible=n > 1, label="Evaluation during training",
                                  info="what the model wrote at that point of training", elem_id="epoch")
                sample_caption = gr.Markdown(caption)
                sample_box = gr.Textbox(sample, lines=8, label="Sample", interactive=False, elem_id="sample")
                gr.Markdown("### All models")
                all_curves, all_table = actions.all_models()
                gr.LinePlot(all_curves, color="model · split", title="All models", elem_id="all-plot", **plot_kw)
                widths = ["22%"] + [f"{78 / len(models):.0f}%"] * len(models)
                gr.Dataframe(all_table, label="Side by side", interactive=False, wrap=True, column_widths=widths,
                             max_height=800, elem_id="all-summary")
                gr.Markdown("*Test loss, dynamic evaluation*: the test text read by the paper's dynamic model, "
                            "which keeps learning from every 50 characters once it has scored them, so that it picks "
                            "up the new plays' names and words as it reads. *Test loss, continuous cache*: the stored "
                            "weights, unchanged, with a memory of what followed the model's most similar states of the "
                            "last 20,000 characters, so that a name once read is expected again. The other losses "
                            "are those of the stored weights as they are.", elem_id="dynamic-note")
            with gr.Tab("How Molière is your text?", id="score"):
                text = gr.Textbox("SGANARELLE.\n\nMonsieur, je vous dis que cela n'est pas possible.", lines=5,
                                  max_length=MAX_SCORE_CHARS, label="Your text", elem_id="score-text")
                with gr.Row():
                    score_cache = gr.Checkbox(False, label="Read with the continuous cache", elem_id="score-cache",
                                              info="the model remembers what followed its states earlier in your "
                                                   "text, so that a name it has read once costs less the next time")
                    score_btn = gr.Button("Score", variant="primary", elem_id="score-button")
                colored = gr.HighlightedText(label="Each character coloured by its loss (the first is only read)",
                                             color_map=LOSS_COLORS, show_legend=True, show_inline_category=False,
                                             elem_id="colored")
                with gr.Row():
                    score_note = gr.Markdown(elem_id="score-note")
                    next_label = gr.Label(num_top_classes=5, label="Most likely next characters")

        gen_event = generate_btn.click(actions.generate, [model, seed, length, temperature, top_k, top_p, random_seed],
                                       output, api_name="generate", show_progress="minimal", time_limit=TIME_LIMIT_S,
                                       **model_kw)
        stop_btn.click(None, cancels=[gen_event])
        score_btn.click(actions.score, [model, text, score_cache], [colored, score_note, next_label], api_name="score",
                        **model_kw)
        model.change(actions.history, model, [loss_plot, summary], api_name="history", preprocess=False)
        model.change(actions.epochs, model, [epoch, sample_caption, sample_box], api_visibility="private",
                     preprocess=False)
        model.change(actions.top_k_slider, [model, top_k], top_k, api_visibility="private", preprocess=False)
        epoch.change(actions.training_sample, [model, epoch], [sample_caption, sample_box], api_visibility="private",
                      preprocess=False)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return demo


def load_models(extra: list[str]) -> dict[str, charrnn.CharRNN]:
    """The shipped checkpoints, then each extra path or Hub id; one that fails to load is reported and skipped."""
    models = {}
    for name, source in [*SHIPPED.items(), *((e, e) for e in extra)]:
        try:
            models[name] = charrnn.load(source)
        except Exception as e:  # a missing or bad checkpoint, no network for a Hub id: the others still serve
            print(f"app.py: skipping model {name!r} ({source}): {type(e).__name__}: {e}", file=sys.stderr)
    return models


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Serve the charrnn demo (127.0.0.1:7860; see GRADIO_SERVER_NAME/PORT).")
    p.add_argument("--model", action="append", default=[], metavar="PATH_OR_HUB_ID",
                   help="another checkpoint directory or Hub id USER/NAME to offer (repeatable); "
                        "CHARRNN_MODELS adds a comma-separated list")
    args = p.parse_args(argv)
    extra = [s.strip() for s in os.environ.get("CHARRNN_MODELS", "").split(",") if s.strip()] + args.model
    models = load_models(extra)
    if not models:
        sys.exit("app.py: no model could be loaded (see the messages above); train one with train.py or pass --model")
    # One torch thread per request: CONCURRENCY requests then share the cores without oversubscribing.
    configure_cpu_for_sampling(threads=1)
    print(f"app.py: serving {', '.join(models)}", file=sys.stderr)
    build_app(models).launch(css=CSS)


if __name__ == "__main__":
    main()
