"""The "How Molière is your text?" view: each character of a visitor's text coloured by its loss."""
from __future__ import annotations

import math

import gradio as gr

from charrnn import report
from charrnn.testtime.cache import CachedModel
from charrnn.units import bits

from .validate import MODEL_EVENT, Catalog, as_text, dropped_note

MAX_SCORE_CHARS = 5000
# Per-character loss classes, in bits: colour from expected to surprising.
LOSS_CLASSES = [(1.0, "≤ 1 bit"), (3.0, "1–3 bits"), (6.0, "3–6 bits"), (math.inf, "> 6 bits")]
LOSS_COLORS = dict(zip((c for _, c in LOSS_CLASSES), ("#74c69d", "#ffe066", "#ff9f5a", "#ff4d4d")))
SHOWN_AS = {" ": "␣ (space)", "\n": "↵ (new line)"}
NEWLINE = "↵\n"
# The scored characters side by side as in the text: Gradio's spaces between tokens are whitespace
# text nodes, which a flex container does not render.
CSS = """#colored .token-container, #colored .token { display: inline-flex; border-radius: 0; padding: 0; margin: 0; }
#colored .token .text { font-family: var(--font-mono); white-space: pre; }"""


class Score:
    """The view's action over the catalogue of models; `score` is the public endpoint /score."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    def score(self, model, text, cache=False):
        """Each character coloured by its loss, the average bits/char, and the likely next characters; with
        `cache`, as the model reads with its recorded continuous cache (a name once read is expected again)."""
        m = self.catalog[model]
        text = as_text("text", text, MAX_SCORE_CHARS)
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
        s = report.summary(m.record)
        test_bpc = bits(s["readings"]["continuous cache"]) if cache else s.get("test_bpc")
        if test_bpc is not None:
            word = "less" if r["bpc"] < test_bpc else "more"
            note += (f" Molière's own test text costs this model {test_bpc:.2f} bits/char"
                     + (" with its cache" if cache else "") + f": yours surprises it {word}.")
        if r["n_dropped"]:
            note += f"\n\nNote: {dropped_note(r['dropped'], r['n_dropped'])}."
        next_label = {SHOWN_AS.get(c, c): p for c, p in r["next"]}
        return highlighted, note, next_label


def build_score(catalog: Catalog, model: gr.Dropdown) -> Score:
    """Lay out the view inside the current tab and wire it to the model dropdown."""
    view = Score(catalog)
    textbox = gr.Textbox("SGANARELLE.\n\nMonsieur, je vous dis que cela n'est pas possible.", lines=5,
                          max_length=MAX_SCORE_CHARS, label="Your text", elem_id="score-text")
    with gr.Row():
        cache = gr.Checkbox(False, label="Read with the continuous cache", elem_id="score-cache",
                            info="the model remembers what followed its states earlier in your text, so that a "
                                 "name it has read once costs less the next time")
        button = gr.Button("Score", variant="primary", elem_id="score-button")
    colored = gr.HighlightedText(label="Each character coloured by its loss (the first is only read)",
                                 color_map=LOSS_COLORS, show_legend=True, show_inline_category=False, elem_id="colored")
    with gr.Row():
        note = gr.Markdown(elem_id="score-note")
        next_label = gr.Label(num_top_classes=5, label="Most likely next characters")
    button.click(view.score, [model, textbox, cache], [colored, note, next_label], api_name="score", **MODEL_EVENT)
    return view
