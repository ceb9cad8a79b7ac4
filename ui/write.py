"""The Write view: a prompt, the sampling settings, and the text the model writes, streamed."""
from __future__ import annotations

import time

import gradio as gr

import charrnn
from charrnn.data import SAMPLE_PROMPT

from .validate import MODEL_EVENT, TIME_LIMIT_S, Catalog, as_number, as_text, dropped_note

MAX_LENGTH = 2000  # characters per generation: ~1 s of CPU for the LSTM
MAX_TEMPERATURE = 2.0  # above 2 the text is noise
MAX_PROMPT_CHARS = 2000  # the prompt is read in one pass; longer adds cost and no style
MAX_RANDOM_SEED = 2**31 - 1  # -1 or empty = a new random seed for each request
STREAM_EVERY_S = 0.05  # the text reaches the browser in batches this far apart (the first character at once)
EXAMPLES = [  # prompt, length, temperature, top_k, top_p, random_seed
    [SAMPLE_PROMPT, 400, 0.8, 0, 1.0, 1],
    ["SGANARELLE.\n\nAh! monsieur, ", 400, 0.7, 0, 0.95, 7],
    ["DORINE.\n\nMadame, votre fils ", 300, 0.5, 10, 1.0, 3],
    ["CÉLIMÈNE.\n\nVous êtes ", 300, 1.0, 0, 1.0, 42],
    ["TARTUFFE.\n\n", 300, 0.0, 0, 1.0, -1],
]


class Write:
    """The view's actions over the catalogue of models; `generate` is the public endpoint /generate."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    def generate(self, model, prompt, length, temperature, top_k, top_p, random_seed):
        """Stream the `length` characters that model `model` (a name) writes after `prompt` (the growing text,
        not including the prompt)."""
        m = self.catalog[model]
        prompt = as_text("prompt", prompt, MAX_PROMPT_CHARS)
        length = as_number("length", length, 1, MAX_LENGTH, integer=True)
        temperature = as_number("temperature", temperature, 0, MAX_TEMPERATURE)
        top_k = as_number("top_k", top_k, 0, len(m.vocab), integer=True)
        top_p = as_number("top_p", top_p, 0, 1, above_lo=True)
        if random_seed is None or random_seed == -1:
            random_seed = None
        else:
            random_seed = as_number("random_seed (or -1 for a new random seed)", random_seed, 0, MAX_RANDOM_SEED,
                                 integer=True)
        clean, n_dropped = m.vocab.normalize(prompt)
        if n_dropped:
            gr.Warning(dropped_note(m.vocab.dropped_chars(prompt), n_dropped))
        chars, last = [], 0.0
        for ch in charrnn.generate(m, clean, length, temperature, top_k, top_p, random_seed):
            chars.append(ch)
            now = time.perf_counter()
            if len(chars) == 1 or now - last >= STREAM_EVERY_S or len(chars) == length:
                last = now
                yield "".join(chars)

    def top_k_slider(self, model, top_k):
        """The top-k slider for `model`: up to its vocabulary size, the current value kept if it fits."""
        vocab_size = len(self.catalog[model].vocab)
        fits = isinstance(top_k, (int, float)) and 0 <= top_k <= vocab_size
        return gr.Slider(maximum=vocab_size, value=top_k if fits else 0)


def build_write(catalog: Catalog, model: gr.Dropdown) -> Write:
    """Lay out the view inside the current tab and wire it to the model dropdown."""
    view = Write(catalog)
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(SAMPLE_PROMPT, lines=5, max_length=MAX_PROMPT_CHARS, label="Prompt",
                                info="the model continues it; a speaker's name in capitals and a full stop "
                                     "starts a line of dialogue", elem_id="prompt")
            with gr.Row():
                generate_btn = gr.Button("Generate", variant="primary", elem_id="generate")
                stop_btn = gr.Button("Stop", variant="stop", elem_id="stop")
        with gr.Column(scale=2):
            length = gr.Slider(1, MAX_LENGTH, 500, step=1, label="Length (characters)", elem_id="length")
            temperature = gr.Slider(0, MAX_TEMPERATURE, 0.8, step=0.05, label="Temperature",
                                    info="0 = always the most likely character")
            top_k = gr.Slider(0, len(catalog[model.value].vocab), 0, step=1, label="Top-k",
                              info="sample among the k most likely characters; 0 = all")
            top_p = gr.Slider(0.01, 1, 1, step=0.01, label="Top-p", info="nucleus sampling mass; 1 = off")
            random_seed = gr.Number(-1, precision=0, minimum=-1, maximum=MAX_RANDOM_SEED, label="Random seed",
                                    elem_id="random-seed",
                                    info="the same seed writes the same text; -1 = a new one each time")
    output = gr.Textbox(lines=14, max_lines=40, label="The model writes", elem_id="output")
    gr.Examples(EXAMPLES, [prompt, length, temperature, top_k, top_p, random_seed], label="Prompts to try")
    event = generate_btn.click(view.generate, [model, prompt, length, temperature, top_k, top_p, random_seed],
                               output, api_name="generate", show_progress="minimal", time_limit=TIME_LIMIT_S,
                               **MODEL_EVENT)
    stop_btn.click(None, cancels=[event])
    model.change(view.top_k_slider, [model, top_k], top_k, api_visibility="private", preprocess=False)
    return view
