"""The Gradio demo: write like Molière, see how each model learned, score a text.

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
from ui.learned import build_learned
from ui.score import CSS, build_score
from ui.validate import CONCURRENCY, QUEUE_SIZE, Catalog
from ui.write import build_write

HERE = Path(__file__).resolve().parent
SHIPPED = {"Paper RNN (Mikolov 2010)": HERE / "checkpoints" / "paper-rnn", "GRU": HERE / "checkpoints" / "gru",
           "GRU, hidden 704": HERE / "checkpoints" / "gru-large", "LSTM": HERE / "checkpoints" / "lstm",
           # The course notebook's recipe (hidden 128, 50,000 characters, one SGD step a character): the "before".
           "Course notebook recipe": HERE / "checkpoints" / "seed"}

INTRO = """# charrnn · write like Molière
Character-level language models trained on Molière's dialogues: the simple recurrent network of
Mikolov et al. (2010), exactly as the paper defines it, GRUs of two sizes and an LSTM. They read and write
one character at a time and know no words: every word, name and line break below is learned from 1.5 M
characters.
How good they are is measured, not claimed: see *How it learned*."""


def build_app(models: dict[str, charrnn.CharRNN]) -> gr.Blocks:
    """The demo over `models` (readable name -> loaded model), with its queue set for a 2-vCPU machine."""
    catalog = Catalog(models)
    with gr.Blocks(title="charrnn · write like Molière", analytics_enabled=False) as demo:
        gr.Markdown(INTRO)
        model = gr.Dropdown(catalog.names(), value=catalog.names()[0], label="Model",
                            info="the shipped models and any given with --model", elem_id="model")
        with gr.Tabs():
            with gr.Tab("Write", id="write"):
                build_write(catalog, model)
            with gr.Tab("How it learned", id="learned"):
                build_learned(catalog, model)
            with gr.Tab("How Molière is your text?", id="score"):
                build_score(catalog, model)
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
