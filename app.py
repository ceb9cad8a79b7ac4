"""The Gradio demo: write like Molière, compare the models, see how each learned, score a text, look inside.

    python app.py [--model PATH_OR_HUB_ID ...]

serves on 127.0.0.1:7860 (GRADIO_SERVER_NAME and GRADIO_SERVER_PORT override it; a Hugging Face Space
runs it unchanged). Extra models come from --model (repeatable) and CHARRNN_MODELS (comma-separated).
This file composes the page from the views in ui/ and launches it; every computation is in charrnn.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import gradio as gr

import charrnn
from charrnn.sample import configure_cpu_for_sampling
from ui import gpu
from ui.compare import build_compare
from ui.inside import build_inside
from ui.learned import build_learned
from ui.score import build_score
from ui.validate import CONCURRENCY, QUEUE_SIZE, SESSIONS, Catalog
from ui.write import build_write

HERE = Path(__file__).resolve().parent
CSS = (HERE / "ui" / "style.css").read_text(encoding="utf-8")
LAUNCH = dict(css=CSS, state_session_capacity=SESSIONS)  # how the page is served, here and by the tests
# The shipped models in the order of the story: the course notebook's recipe (the "before"), the paper's
# model trained properly, then the gated cells.
SHIPPED = {"Course notebook (2010 RNN, 50k characters)": HERE / "checkpoints" / "seed",
           "Paper RNN, trained properly": HERE / "checkpoints" / "paper-rnn",
           "GRU": HERE / "checkpoints" / "gru",
           "LSTM": HERE / "checkpoints" / "lstm",
           "GRU, large": HERE / "checkpoints" / "gru-large"}
# What each is, under the model menu, where its cell's sentence (charrnn.cells) would not tell it apart.
ABOUT = {"Course notebook (2010 RNN, 50k characters)": "The course notebook's network: the 2010 design at 128 units, "
                                                       "trained one character at a time on the first 50,000 characters.",
         "Paper RNN, trained properly": "The same 2010 network, 768 units, trained in batches on the whole corpus.",
         "GRU, large": "The GRU with a bigger memory, 704 units a layer."}

INTRO = """# charrnn · write like Molière
Networks that write one character at a time, trained on Molière's plays: from a course notebook's 2010
network to the gated cells (GRU, LSTM) that replaced it. They know no words: they learned every one."""


def build_app(models: dict[str, charrnn.CharRNN]) -> gr.Blocks:
    """The demo over `models` (readable name -> loaded model), with its queue set for a 2-vCPU machine; on a
    ZeroGPU Space the heavy analyses borrow its GPU (ui/gpu.py)."""
    catalog = Catalog(models, gpu.device(), ABOUT)
    with gr.Blocks(title="charrnn · write like Molière", analytics_enabled=False) as demo:
        gr.Markdown(INTRO)
        model = gr.Dropdown(catalog.choices(), value=catalog.best, label="Model", elem_id="model")
        about = gr.Markdown(catalog.about(catalog.best), elem_id="model-about")
        model.change(catalog.about, model, about, api_visibility="private", preprocess=False)
        # Tabs wrap onto a second line rather than hide in an overflow menu: on a phone every view stays in sight.
        with gr.Tabs(overflow_behavior="wrap"):
            with gr.Tab("Write", id="write"):
                build_write(catalog, model)
            with gr.Tab("Compare", id="compare"):
                build_compare(catalog)
            with gr.Tab("Learning", id="learned"):
                build_learned(catalog, model)
            with gr.Tab("Your text", id="score"):
                build_score(catalog, model)
            with gr.Tab("Inside", id="inside"):
                build_inside(catalog, model)
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
    build_app(models).launch(**LAUNCH)


if __name__ == "__main__":
    main()
