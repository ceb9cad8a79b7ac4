"""The "How Molière is your text?" view: how surprised a model is by each character of a visitor's text."""
from __future__ import annotations

import gradio as gr

from charrnn import report
from charrnn.testtime.cache import CachedModel
from charrnn.units import bits

from . import gpu, render
from .limits import MAX_SCORE_CHARS
from .validate import MODEL_EVENT, Catalog, as_text, dropped_note, request_deadline, shown, within_time_limit

GUESSES = 3  # the characters the model expected, shown on hover or tap
SHOWN_AS = {" ": "␣ (space)", "\n": "↵ (new line)"}
EXAMPLES = [
    "SGANARELLE.\n\nMonsieur, je vous dis que cela n'est pas possible.",
    # Written for this demo in the manner of *Monsieur de Pourceaugnac*, whose speakers' names the models
    # never read in training: a model pays for a new name in full each time, unless it reads with its cache.
    "SBRIGANI.\n\nMonsieur, voici votre homme.\n\nÉRASTE.\n\nAh! Sbrigani, que je suis aise de te voir.\n\n"
    "SBRIGANI.\n\nEt moi, monsieur, de vous servir.\n\nÉRASTE.\n\nQue dit notre Limousin?\n\n"
    "SBRIGANI.\n\nIl arrive, monsieur, et il ne se doute de rien.\n\nÉRASTE.\n\nTant mieux.\n\n"
    "SBRIGANI.\n\nLaissez-moi faire.",
]


class Score:
    """The view's actions over the catalogue of models; `score` is the public endpoint /score."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        # Reading a long text is the heavy part: on a ZeroGPU Space it borrows the GPU, for as long as the text asks.
        self.score = gpu.heavy(self.score, lambda model, text, cache=False: gpu.characters(text))
        self.page = gpu.heavy(self.page, lambda model, text, cache: gpu.characters(text) * (1 + (cache is True)))

    def _read(self, model, text, cache, deadline: float) -> tuple[dict, dict, bool]:
        """The checked request read by the model (and the record whose test figure it compares with)."""
        m = self.catalog[model]
        text = as_text("text", text, MAX_SCORE_CHARS)
        if cache not in (True, False, None):
            raise gr.Error(f"cache must be true or false, not {shown(cache, 60)}")
        if cache:
            try:
                m = CachedModel.from_record(m)
            except ValueError:
                raise gr.Error(f"{model} records no cache settings: score it without the cache") from None
        with within_time_limit():
            r = report.score(m, text, GUESSES, deadline=deadline)
        if r["bpc"] is None:
            raise gr.Error("text must hold at least two characters the model knows: the first is only read, "
                           "each later one is predicted from those before it")
        return r, m.record, bool(cache)

    @staticmethod
    def summary(r: dict, record: dict, cache: bool) -> str:
        """The reading in a sentence, set against the model's own test text."""
        note = (f"**{r['bpc']:.2f} bits/char** over the {len(r['bits']):,} characters after the first "
                f"(perplexity {2 ** r['bpc']:.1f}).")
        s = report.summary(record)
        test_bpc = bits(s["readings"]["continuous cache"]) if cache else s.get("test_bpc")
        if test_bpc is not None:
            word = "less" if r["bpc"] < test_bpc else "more"
            note += (f" Molière's own test text costs this model {test_bpc:.2f} bits/char"
                     + (" with its cache" if cache else "") + f": yours surprises it {word}.")
        if r["n_dropped"]:
            note += f"\n\nNote: {dropped_note(r['dropped'], r['n_dropped'])}."
        return note

    def score(self, model: str, text: str, cache: bool = False) -> tuple[list[dict], str, list[dict]]:
        """How model `model` (a name) reads `text`: each character with its cost in bits (None for the first,
        which is only read), a summary in Markdown, and the most likely next characters with their
        probabilities. cache=True: as the model reads with its recorded continuous cache."""
        r, record, cache = self._read(model, text, cache, request_deadline())
        chars = [{"char": c, "bits": b} for c, b in zip(r["text"], [None, *r["bits"]])]
        return chars, self.summary(r, record, cache), [{"char": c, "p": p} for c, p in r["next"]]

    def page(self, model, text, cache):
        """What the page shows: the summary first (with the characters the model expects next), then the text
        coloured by cost; with the cache, the reading without it and with it side by side."""
        deadline = request_deadline()
        readings = [self._read(model, text, False, deadline)] + ([self._read(model, text, True, deadline)] if cache else [])
        panels = []
        for r, record, cached in readings:
            title = f"<h4>{'with' if cached else 'without'} the cache</h4>" if cache else ""
            panels.append(f"<div class='reading'>{title}{render.scored(r['text'], r['bits'], r['guesses'])}</div>")
        summary = "  \n".join(("Without the cache: " if cache and not c else "With the cache: " if c else "")
                              + self.summary(rr, rec, c) for rr, rec, c in readings)
        expected = ", ".join(f"{SHOWN_AS.get(c, c)} {p:.0%}" for c, p in readings[-1][0]["next"])
        return f"{summary}  \nAfter your text the model expects: {expected}.", \
            f"<div class='readings'>{''.join(panels)}</div>"


def clear():
    return "", ""


def build_score(catalog: Catalog, model: gr.Dropdown) -> Score:
    """Lay out the view inside the current tab and wire it to the model dropdown. A new request, a failed one
    or another model clears what was shown, so that nothing stale stays on screen."""
    view = Score(catalog)
    text = gr.Textbox(EXAMPLES[0], lines=4, max_lines=8, max_length=MAX_SCORE_CHARS, label="Your text",
                      elem_id="score-text")
    examples = gr.Examples([[e] for e in EXAMPLES], [text], label="Texts to try (click one to score it)",
                           elem_id="score-examples",
                           api_visibility="private", example_labels=["A line of Sganarelle", "Names that come again "
                                                                     "(in the manner of Monsieur de Pourceaugnac)"])
    with gr.Row():
        cache = gr.Checkbox(False, label="Read with the continuous cache, side by side", elem_id="score-cache",
                            info="the model remembers what followed its states earlier in your text, so that a "
                                 "name it has read once costs less the next time")
        button = gr.Button("Score", variant="primary", elem_id="score-button")
    note = gr.Markdown(elem_id="score-note")
    colored = gr.HTML(elem_id="colored", js_on_load=render.SCORED_JS)
    outputs = [note, colored]
    for trigger in (button.click, examples.load_input_event.then):
        trigger(clear, outputs=outputs, queue=False, api_visibility="private", show_progress="hidden").then(
            view.page, [model, text, cache], outputs, **MODEL_EVENT)
    model.change(clear, outputs=outputs, queue=False, api_visibility="private", show_progress="hidden")
    catalog.publish(view.score, "score")
    return view
