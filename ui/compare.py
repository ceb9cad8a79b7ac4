"""The Compare view: one prompt, every model writing at once with the same settings and random seed, side by
side in the order of the story (the course notebook's model, the paper's, then the gated ones)."""
from __future__ import annotations

import os
from typing import Iterator

import gradio as gr

import charrnn
from charrnn.data import SAMPLE_PROMPT
from charrnn.record import recorded_nats
from charrnn.units import bits

from . import render
from .limits import MAX_COMPARE_LENGTH, MAX_PROMPT_CHARS, MAX_RANDOM_SEED, MAX_TEMPERATURE
from .validate import MODEL_EVENT, Catalog, StopFlags, as_text, dropped_note, paced, request_deadline, \
    run_buttons, within_time_limit
from .write import TEMPERATURE_HINT, sampling_args


class Compare:
    """The view's action over the catalogue of models; `compare` is the public endpoint /compare."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.stops = StopFlags()

    def heading(self, name: str) -> str:
        """A column's heading: the model, and how well it predicts Molière's test text."""
        nats = recorded_nats(self.catalog[name].record)
        best = " · best" if name == self.catalog.best else ""
        return f"**{name}**{best}" + (f"  \ntest {bits(nats):.2f} bits/char" if nats is not None else "")

    def _checked(self, prompt, length, temperature, random_seed):
        """The prompt as each model reads it (one warning for the characters any of them drops) and the settings."""
        names = self.catalog.names()
        prompt = as_text("prompt", prompt, MAX_PROMPT_CHARS)
        vocab_size = min(len(self.catalog[n].vocab) for n in names)
        length, temperature, _, _, seed = sampling_args(vocab_size, length, temperature, 0, 1.0, random_seed,
                                                        MAX_COMPARE_LENGTH)
        clean = {n: self.catalog[n].vocab.normalize(prompt) for n in names}
        dropped = sorted(set().union(*(self.catalog[n].vocab.dropped_chars(prompt) for n in names)))
        if dropped:
            gr.Warning(dropped_note(dropped, max(k for _, k in clean.values())) + " (by some of the models)")
        seed = seed if seed is not None else int.from_bytes(os.urandom(4), "little") >> 1
        return {n: c for n, (c, _) in clean.items()}, (length, temperature, seed)

    def _stream(self, prompts: dict[str, str], length: int, temperature: float, seed: int) -> Iterator[dict[str, str]]:
        deadline = request_deadline()  # one for all the columns: the request's
        writers = {n: charrnn.generate(self.catalog.writer(n), p, length, temperature, seed=seed, deadline=deadline)
                   for n, p in prompts.items()}
        chars = {n: [] for n in prompts}

        def step():  # one character of each model in turn, so that all columns grow together
            for n, writer in writers.items():
                chars[n].append(next(writer))

        return paced((step() for _ in range(length)), lambda: {n: "".join(c) for n, c in chars.items()})

    def compare(self, prompt: str, length: int = 300, temperature: float = 0.8,
                random_seed: int | None = -1) -> Iterator[dict[str, str]]:
        """Stream what every model writes after `prompt` with the same settings and random seed: {model name:
        the growing text, without the prompt}, in the order of the story. random_seed -1: one new seed, the
        same for every model."""
        prompts, settings = self._checked(prompt, length, temperature, random_seed)
        with within_time_limit():
            yield from self._stream(prompts, *settings)

    def page(self, prompt, length, temperature, random_seed, request: gr.Request = None):
        """The columns as the page shows them: each model's prompt and text set as a play; Stop ends them."""
        prompts, settings = self._checked(prompt, length, temperature, random_seed)
        with self.stops.running(request) as stop, within_time_limit():
            for texts in self._stream(prompts, *settings):
                yield tuple(render.play(prompts[n], t) for n, t in texts.items())
                if stop.is_set():
                    break


def build_compare(catalog: Catalog) -> Compare:
    """Lay out the view inside the current tab: its own prompt and settings, one column per model."""
    view = Compare(catalog)
    gr.Markdown("The same prompt, the same settings and the same random seed for every model, from the course "
                "notebook's model to the best one: read how the text improves from column to column.")
    with gr.Row():
        prompt = gr.Textbox(SAMPLE_PROMPT, lines=2, max_length=MAX_PROMPT_CHARS, label="Prompt", scale=3,
                            elem_id="compare-prompt")
        with gr.Column(scale=1, min_width=160):
            button = gr.Button("Compare", variant="primary", elem_id="compare-button")
            stop = gr.Button("Stop", variant="stop", interactive=False, elem_id="compare-stop")
    with gr.Row(elem_id="compare-output"):
        columns = []
        for name in catalog.names():
            with gr.Column(min_width=260):
                gr.Markdown(view.heading(name))
                columns.append(gr.HTML(render.play("", ""), elem_classes="text-out"))
    with gr.Row():
        length = gr.Slider(1, MAX_COMPARE_LENGTH, 300, step=1, label="Length (characters)")
        temperature = gr.Slider(0, MAX_TEMPERATURE, 0.8, step=0.05, label="Temperature", info=TEMPERATURE_HINT)
        random_seed = gr.Number(1, precision=0, minimum=-1, maximum=MAX_RANDOM_SEED, label="Random seed",
                                info="-1 = a new one each time, the same for every model")
    run_buttons([button.click], button, stop,
                dict(fn=view.page, inputs=[prompt, length, temperature, random_seed], outputs=columns,
                     show_progress="hidden", **MODEL_EVENT), view.stops)
    catalog.publish(view.compare, "compare")
    return view
