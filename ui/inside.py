"""The Inside view: a text coloured by one hidden unit, every model's memory horizon, and what one prediction
leans on."""
from __future__ import annotations

import math

import gradio as gr
import pandas as pd

from charrnn import inside

from .validate import MODEL_EVENT, Catalog, as_number, as_text, dropped_note

MAX_INSIDE_CHARS = 2000  # characters read per request: a 2-layer model's units over them take ~1-3 s
# What one prediction leans on is measured this far back (a backward pass through 512 steps: ~2 s for the 2-layer
# models); the recorded dependence of every shipped model at 256 characters is below 0.2 % of that at 1.
LEANS_ON_BACK = 512
# An invented passage in the corpus's layout: speaker lines (one with a stage direction), a parenthesis,
# questions, prose, then verse.
EXAMPLE = ("ORGON, à part.\n\n"
           "Que vois-je? Mon valet s'est caché dans la salle (le traître!) pour\n"
           "m'entendre parler de ma cassette et de mon or.\n\n"
           "DORINE.\n\n"
           "Monsieur, que voulez-vous? Le souper est servi,\n"
           "Et madame vous prie de venir aujourd'hui\n"
           "Lui dire, s'il vous plaît, ce que l'on doit attendre.\n\n"
           "ORGON.\n\n")
LEANS_ON_DEFAULT = len(EXAMPLE) - len("GON.\n\n")  # the "R" after "O": the name is guessed from its first letter
# The coloured characters side by side as in the text. Gradio lays a text coloured by numbers out as a row of
# tokens that wraps, and ignores a line break inside a token: a line break is shown as "↵" (coloured) then a
# token with no value (BREAK), which this CSS stretches across the row so that the next character starts a line.
BREAK = ("\n", None)
CSS = """#unit-colored .token-container, #unit-colored .token, #leans-colored .token-container, #leans-colored .token {
  display: inline-flex; border-radius: 0; padding: 0; margin: 0; }
#unit-colored .token .text, #leans-colored .token .text { font-family: var(--font-mono); white-space: pre; }
#unit-colored .token-container:has(> .token:not(.highlighted)),
#leans-colored .token-container:has(> .token:not(.highlighted)) { flex-basis: 100%; height: 0; overflow: hidden; }"""
HOW = ("python -m charrnn inside --checkpoint checkpoints/NAME --data ../shared/data/moliere.txt --record")


def colored(text: str, values: list[float]) -> list[tuple[str, float | None]]:
    """The tokens that show each character of `text` coloured by its value in [-1, 1]: the character itself, or for
    a line break "↵" and BREAK."""
    out = []
    for c, v in zip(text, values):
        out += [("↵", v), BREAK] if c == "\n" else [(c, v)]
    return out


def char_index(text: str, token: int) -> int:
    """The index in `text` of the character shown by token number `token` of colored(text, ...)."""
    shown = [i for i, c in enumerate(text) for _ in range(2 if c == "\n" else 1)]  # a line break is two tokens
    return shown[min(token, len(shown) - 1)]


class Inside:
    """The view's actions over the catalogue of models; `units` and `horizon` are the public endpoints /units and
    /horizon, `leans_on` the endpoint /leans_on."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    def _text(self, m, text) -> tuple[str, str]:
        """The visitor's text as the model reads it (unknown characters left out) and a note on what was left out."""
        text = as_text("text", text, MAX_INSIDE_CHARS)
        clean, n_dropped = m.vocab.normalize(text)
        return clean, f"\n\nNote: {dropped_note(m.vocab.dropped_chars(text), n_dropped)}." if n_dropped else ""

    def _unit(self, m, unit) -> tuple[int, str]:
        """The unit number `unit` names (a number, or a feature the model's record names: its best unit), and what
        the record says of it."""
        features = _features(m)
        if isinstance(unit, str) and unit.strip() in features:
            name = unit.strip()
            if not features[name]["units"]:
                raise gr.Error(f"{name} never holds on the text this model's units were chosen on: choose another")
            best = features[name]["units"][0]
            where = "high" if best["sign"] > 0 else "low"
            return best["unit"], (f"the unit that best tells *{features[name]['about']}*: its activation is {where} "
                                  f"there, with ROC AUC **{best['auc']}** on {m.record['inside']['units']['measured_on']}")
        if isinstance(unit, str) and unit.strip().isdigit():
            unit = int(unit.strip())
        known = f"a recorded feature ({', '.join(features)}) or " if features else ""
        if not isinstance(unit, (int, float)) or isinstance(unit, bool):
            raise gr.Error(f"unit must be {known}a unit number from 0 to {inside.num_units(m) - 1}; got {unit!r:.40}")
        index = as_number("unit", unit, 0, inside.num_units(m) - 1, integer=True)
        told = [f"*{f['about']}* (AUC {u['auc']}, {'high' if u['sign'] > 0 else 'low'} there)"
                for f in features.values() for u in f["units"] if u["unit"] == index]
        return index, ("one of the best units for " + "; ".join(told) if told else
                       "a unit the record names for no feature")

    def units(self, model, text, unit):
        """The activation in [-1, 1] of one hidden unit after each character of `text` (the characters the model
        knows), and a note on the unit. `unit`: a unit number, or a feature the model's record names (its best
        unit for that feature)."""
        m = self.catalog[model]
        clean, dropped = self._text(m, text)
        if not clean:
            raise gr.Error("text must hold at least one character the model knows")
        index, about = self._unit(m, unit)
        acts = inside.unit_activations(m, clean, index).tolist()
        note = (f"**Unit {index}** ({inside.unit_name(m, index)}), {about}. Red: activation near +1, purple: near "
                "−1, pale: near 0." + dropped)
        return colored(clean, [round(a, 4) for a in acts]), note

    def horizon(self, model):
        """The recorded memory horizon of `model`: the dependence of a prediction on the character k back,
        relative to k = 1 (and its log10), for k = 1..K, and a note; an empty curve for a model with no record."""
        h = (self.catalog[model].record.get("inside") or {}).get("horizon")
        if not h:
            return (pd.DataFrame(columns=["k", "relative", "log10 relative"]),
                    f"{model} has no inside record: `{HOW}` writes one.")
        curve = pd.DataFrame({"k": range(1, len(h["relative"]) + 1), "relative": h["relative"],
                              "log10 relative": [_log10(r) for r in h["relative"]]})
        at = {name: f"k = {k}" if k else f"no k up to {h['max_distance']}" for name, k in h["below"].items()}
        return curve, (f"For {model}, the dependence falls below 10 % of its value at k = 1 at {at['10%']}, below 1 % "
                       f"at {at['1%']} (averaged over {h['positions']} positions of {h['text']}).")

    def all_horizons(self):
        """Every recorded horizon in one frame (k, log10 relative, model), and a table of each model's figures."""
        curves, rows = [], []
        for name in self.catalog.names():
            record = self.catalog[name].record.get("inside")
            if not record:
                continue
            h, u = record["horizon"], record["units"]
            curves += [{"k": k, "log10 relative": _log10(r), "model": name} for k, r in enumerate(h["relative"], 1)]
            rows.append([name, *(k or f"> {h['max_distance']}" for k in h["below"].values()),
                         f"{u['features_above_bar']} of {len(u['features'])}"])
        return (pd.DataFrame(curves, columns=["k", "log10 relative", "model"]),
                pd.DataFrame(rows, columns=["model", "below 10 % at k", "below 1 % at k", "features with a unit of "
                                                                                        "AUC ≥ 0.95"]))

    def leans_on(self, model, text, position):
        """How much the prediction of character number `position` (from 2; 1 is the first character, only read)
        of `text` depends on each character before it: those coloured from pale to red by their dependence
        relative to the largest (values 0 to 1; 0 for those more than LEANS_ON_BACK back, not measured), the
        predicted one purple (-1), those after it pale (0); and a note."""
        m = self.catalog[model]
        clean, dropped = self._text(m, text)
        if len(clean) < 2:
            raise gr.Error("text must hold at least two characters the model knows: the first is only read, the "
                           "later ones are predicted from those before them")
        t = as_number("position", position, 2, len(clean), integer=True) - 1
        dep = inside.leans_on(m, clean, t, LEANS_ON_BACK).nan_to_num(0.0)  # too far back: not measured, shown pale
        # Values: the dependence relative to the largest before t; -1 (purple) for t; 0 after (nothing depends on them).
        rel = (dep / dep.max()).tolist() if dep.max() > 0 else [0.0] * t
        # Half of all the dependence lies within the last `half` characters.
        share = (dep.flip(0).cumsum(0) / dep.sum()).tolist() if dep.sum() > 0 else [1.0] * t
        half = next(k for k, s in enumerate(share, 1) if s >= 0.5)
        top = int(dep.argmax())
        far = f" Characters more than {LEANS_ON_BACK} back are not measured." if t > LEANS_ON_BACK else ""
        note = (f"The prediction of **{clean[t]!r}** (character {t + 1}) leans most on {clean[top]!r}, {t - top} "
                f"character(s) back; half of its dependence lies on the last {half} character(s).{far}" + dropped)
        return colored(clean, [round(r, 4) for r in rel] + [-1.0] + [0.0] * (len(clean) - t - 1)), note

    def unit_options(self, model, unit=None) -> tuple[list[tuple[str, str]], str]:
        """The choices of the unit box for `model` (its recorded features) and its value: `unit` if it is a
        number, else the first feature (or unit 0 for a model with no record)."""
        features = _features(self.catalog[model])
        choices = [(f"{f['about']} ({name})", name) for name, f in features.items()]
        keep = isinstance(unit, str) and unit.strip().isdigit()
        return choices, unit if keep else next(iter(features), "0")

    def unit_box(self, model, unit):
        choices, value = self.unit_options(model, unit)
        return gr.Dropdown(choices=choices, value=value)

    def select_position(self, model, text, event: gr.SelectData):
        """A click on a character of the coloured text: that character's number, and what its prediction leans on."""
        clean, _ = self._text(self.catalog[model], text)
        position = max(char_index(clean, event.index) + 1, 2)
        return position, *self.leans_on(model, text, position)


def _features(m) -> dict:
    """The features a model's inside record names, with their best units; {} for a model with no record."""
    return (m.record.get("inside") or {}).get("units", {}).get("features", {})


def _log10(r: float) -> float | None:
    return math.log10(r) if r > 0 else None  # the dependence underflowed to 0: no point on a log scale


def build_inside(catalog: Catalog, model: gr.Dropdown) -> Inside:
    """Lay out the view inside the current tab and wire it to the model dropdown."""
    view = Inside(catalog)
    first = model.value
    gr.Markdown("### Units that mean something\nSome hidden units of a trained network track one thing a reader of "
                "a play sees: a speaker's name, a line of verse, a parenthesis. Pick a feature to see the unit that "
                "tells it best, or type a unit's number.")
    text = gr.Textbox(EXAMPLE, lines=8, max_length=MAX_INSIDE_CHARS, label="Text", elem_id="inside-text")
    with gr.Row():
        choices, value = view.unit_options(first)
        unit = gr.Dropdown(choices, value=value, allow_custom_value=True, label="Feature or unit number", elem_id="unit",
                           info="a feature the model's record names, or a unit number")
        show = gr.Button("Colour by this unit", variant="primary", elem_id="unit-button")
    unit_colored = gr.HighlightedText(label="Each character coloured by the unit's activation after reading it",
                                      show_legend=False, show_inline_category=False, elem_id="unit-colored")
    unit_note = gr.Markdown(elem_id="unit-note")

    gr.Markdown("### How far back each model looks\nThe dependence of a prediction on the character k steps back: "
                "the norm of the gradient of log p(next character) with respect to the input k steps back, averaged "
                "over positions of text the model did not train on, relative to its value at k = 1.")
    curves, table = view.all_horizons()
    with gr.Row():
        gr.LinePlot(curves, x="k", y="log10 relative", color="model", title="Every model (log10: −2 is 1 %)",
                    x_title="k (characters back)", y_title="log10 (dependence ÷ dependence at k = 1)", height=340,
                    elem_id="horizon-plot")
        this_curve, this_note = view.horizon(first)
        this_plot = gr.LinePlot(this_curve, x="k", y="relative", title="This model", x_title="k (characters back)",
                                y_title="dependence ÷ dependence at k = 1", height=340, elem_id="horizon-this")
    horizon_note = gr.Markdown(this_note, elem_id="horizon-note")
    gr.Dataframe(table, label="Memory horizon and units, per model", interactive=False, elem_id="horizon-table")

    gr.Markdown("### What one prediction leans on\nThe same gradient for one character of the text above: each "
                "character before it coloured by how much its prediction depends on it. Click a character, or give "
                "its number.")
    with gr.Row():
        position = gr.Number(LEANS_ON_DEFAULT, precision=0, minimum=2, maximum=MAX_INSIDE_CHARS,
                             label="Predicted character (its number in the text)", elem_id="position")
        lean_button = gr.Button("Show what it leans on", elem_id="leans-button")
    leans_colored = gr.HighlightedText(label="Red: what the prediction of the purple character depends on",
                                       show_legend=False, show_inline_category=False, elem_id="leans-colored")
    leans_note = gr.Markdown(elem_id="leans-note")

    show.click(view.units, [model, text, unit], [unit_colored, unit_note], api_name="units", **MODEL_EVENT)
    model.change(view.horizon, model, [this_plot, horizon_note], api_name="horizon", preprocess=False)
    model.change(view.unit_box, [model, unit], unit, api_visibility="private", preprocess=False)
    lean_button.click(view.leans_on, [model, text, position], [leans_colored, leans_note], api_name="leans_on",
                      **MODEL_EVENT)
    leans_colored.select(view.select_position, [model, text], [position, leans_colored, leans_note],
                         api_visibility="private", concurrency_id=MODEL_EVENT["concurrency_id"],
                         concurrency_limit=MODEL_EVENT["concurrency_limit"])
    return view
