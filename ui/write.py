"""The Write view: a prompt, Generate, and the play the model writes, right under the button."""
from __future__ import annotations

import time
from typing import Iterator

import gradio as gr

import charrnn
from charrnn.data import SAMPLE_PROMPT
from charrnn.deadline import DeadlineExceeded

from . import render
from . import validate
from .limits import MAX_LENGTH, MAX_PROMPT_CHARS, MAX_RANDOM_SEED, MAX_TEMPERATURE
from .validate import MODEL_EVENT, Catalog, StopFlags, as_number, as_text, dropped_note, paced, \
    request_deadline, run_buttons, within_time_limit

EXAMPLES = [  # prompt, length, temperature, top_k, top_p, random_seed
    [SAMPLE_PROMPT, 400, 0.8, 0, 1.0, 1],
    ["SGANARELLE.\n\nAh! monsieur, ", 400, 0.7, 0, 0.95, 7],
    ["DORINE.\n\nMadame, votre fils ", 300, 0.5, 10, 1.0, 3],
    ["CÉLIMÈNE.\n\nVous êtes ", 300, 1.0, 0, 1.0, 42],
    ["TARTUFFE.\n\n", 300, 0.0, 0, 1.0, -1],
]


def example_label(prompt: str, length: int, temperature: float, *rest) -> str:
    """An example as one short line, the prompt and its temperature: a label that wraps on a phone, where a table
    of every setting ran off the screen (Gradio cuts a label after 60 characters)."""
    return f"{' '.join(prompt.split())} · temperature {temperature:g}"


TEMPERATURE_HINT = ("How daring the choice of each character is. At 0 the model always takes its most likely "
                    "character, and soon repeats itself: the most likely line leads back to itself. Around 0.8 it "
                    "writes like Molière; above 1, stranger and stranger.")


def sampling_args(vocab_size: int, length, temperature, top_k, top_p, random_seed, max_length: int = MAX_LENGTH):
    """The sampling settings of a request, checked against the limits the sliders show."""
    length = as_number("length", length, 1, max_length, integer=True)
    temperature = as_number("temperature", temperature, 0, MAX_TEMPERATURE)
    top_k = as_number("top_k", top_k, 0, vocab_size, integer=True)
    top_p = as_number("top_p", top_p, 0, 1, above_lo=True)
    if random_seed is None or random_seed == -1:
        random_seed = None
    else:
        random_seed = as_number("random_seed (or -1 for a new random seed)", random_seed, 0, MAX_RANDOM_SEED,
                                integer=True)
    return length, temperature, top_k, top_p, random_seed


def known_prompt(model, prompt) -> str:
    """The prompt as the model reads it: checked, normalised, the characters it does not know dropped
    (with a warning that names them)."""
    prompt = as_text("prompt", prompt, MAX_PROMPT_CHARS)
    clean, n_dropped = model.vocab.normalize(prompt)
    if n_dropped:
        gr.Warning(dropped_note(model.vocab.dropped_chars(prompt), n_dropped))
    return clean


class Write:
    """The view's actions over the catalogue of models; `generate` is the public endpoint /generate."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.stops = StopFlags()

    def _checked(self, model, prompt, length, temperature, top_k, top_p, random_seed):
        m = self.catalog.writer(model)
        settings = sampling_args(len(m.vocab), length, temperature, top_k, top_p, random_seed)
        return m, known_prompt(m, prompt), settings

    @staticmethod
    def _stream(m, prompt: str, settings) -> Iterator[str]:
        """The growing text, in batches (see paced), until the text is written or the request's time is up."""
        chars, deadline = [], request_deadline()
        return paced((chars.append(c) for c in charrnn.generate(m, prompt, *settings, deadline=deadline)),
                     lambda: "".join(chars))

    def generate(self, model: str, prompt: str, length: int = 500, temperature: float = 0.8, top_k: int = 0,
                 top_p: float = 1.0, random_seed: int | None = -1) -> Iterator[str]:
        """Stream the characters that model `model` (a name) writes after `prompt`: the growing text, without the
        prompt, in batches (the first character at once). random_seed -1: a new one each time."""
        m, clean, settings = self._checked(model, prompt, length, temperature, top_k, top_p, random_seed)
        with within_time_limit():
            yield from self._stream(m, clean, settings)

    def page(self, model, prompt, length, temperature, top_k, top_p, random_seed, request: gr.Request = None):
        """What the page shows while the model writes: the prompt and the text, set as a play, and progress;
        Stop ends it with what is written."""
        m, clean, settings = self._checked(model, prompt, length, temperature, top_k, top_p, random_seed)
        t0, text, done = time.perf_counter(), "", "characters"
        with self.stops.running(request) as stop:
            try:
                for text in self._stream(m, clean, settings):
                    yield render.play(clean, text, f"writing… {len(text):,} of {settings[0]:,} characters")
                    if stop.is_set():
                        done = "characters, stopped,"
                        break
            except DeadlineExceeded:
                done = f"characters, stopped at the time limit ({validate.TIME_LIMIT_S:g} s),"
        yield render.play(clean, text, f"{len(text):,} {done} in {time.perf_counter() - t0:.1f} s")

    def top_k_slider(self, model, top_k):
        """The top-k slider for `model`: up to its vocabulary size, the current value kept if it fits."""
        vocab_size = len(self.catalog[model].vocab)
        fits = isinstance(top_k, (int, float)) and 0 <= top_k <= vocab_size
        return gr.Slider(maximum=vocab_size, value=top_k if fits else 0)


def build_write(catalog: Catalog, model: gr.Dropdown) -> Write:
    """Lay out the view inside the current tab and wire it to the model dropdown. The text appears right
    under Generate, so that it is on screen when it starts, on a phone too; the settings come after it."""
    view = Write(catalog)
    prompt = gr.Textbox(SAMPLE_PROMPT, lines=2, max_length=MAX_PROMPT_CHARS, elem_id="prompt",
                        label="Prompt: the model continues it (a name in capitals and a full stop starts a speech)")
    with gr.Row(equal_height=True):
        generate_btn = gr.Button("Generate", variant="primary", elem_id="generate", scale=3, min_width=80)
        stop_btn = gr.Button("Stop", variant="stop", elem_id="stop", interactive=False, scale=1, min_width=60)
    output = gr.HTML(render.play("", "", "The play appears here."), elem_id="output", elem_classes="text-out")
    with gr.Row():
        length = gr.Slider(1, MAX_LENGTH, 500, step=1, label="Length (characters)", elem_id="length")
        temperature = gr.Slider(0, MAX_TEMPERATURE, 0.8, step=0.05, label="Temperature", info=TEMPERATURE_HINT,
                                elem_id="temperature")
    with gr.Accordion("Advanced: top-k, top-p, random seed", open=False):
        with gr.Row():
            top_k = gr.Slider(0, len(catalog[model.value].vocab), 0, step=1, label="Top-k",
                              info="sample among the k most likely characters; 0 = all")
            top_p = gr.Slider(0.01, 1, 1, step=0.01, label="Top-p",
                              info="sample among the most likely characters that make up this much of the "
                                   "probability; 1 = all")
            random_seed = gr.Number(-1, precision=0, minimum=-1, maximum=MAX_RANDOM_SEED, label="Random seed",
                                    elem_id="random-seed",
                                    info="the same seed writes the same text; -1 = a new one each time")
    inputs = [model, prompt, length, temperature, top_k, top_p, random_seed]
    examples = gr.Examples(EXAMPLES, inputs[1:], label="Prompts to try (click one to hear it)",
                           example_labels=[example_label(*e) for e in EXAMPLES], elem_id="write-examples",
                           api_visibility="private")
    run_buttons([generate_btn.click, examples.load_input_event.then], generate_btn, stop_btn,
                dict(fn=view.page, inputs=inputs, outputs=output, show_progress="hidden", **MODEL_EVENT), view.stops)
    catalog.publish(view.generate, "generate")
    model.change(view.top_k_slider, [model, top_k], top_k, api_visibility="private", preprocess=False)
    return view
