"""The Inside view: a text shaded by one hidden unit, what one prediction leans on, and how far back every
model looks."""
from __future__ import annotations

import html
import math
import re

import gradio as gr

from charrnn import inside

from . import charts, gpu
from .validate import MODEL_EVENT, Catalog, as_number, as_text, dropped_note, shown

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
HOW = "python -m charrnn inside --checkpoint checkpoints/NAME --data ../shared/data/moliere.txt --record"
# A unit typed as text: ASCII digits only ("²" and other Unicode digits are no number int() should read), and few
# enough that no model has more units.
UNIT_NUMBER = re.compile(r"[0-9]{1,9}")
# A click on a shaded character asks what its prediction leans on: its number goes into the position box,
# then the button is pressed (after a moment, so that the box's new value has reached the page's state).
CLICK_JS = """
element.addEventListener('click', (ev) => {
  const cell = ev.target.closest('[data-c]');
  if (!cell) return;
  const box = document.querySelector('#position input');
  box.value = Number(cell.dataset.c) + 1;
  box.dispatchEvent(new Event('input', {bubbles: true}));
  setTimeout(() => document.querySelector('#leans-button').click(), 100);
});
"""


POSITIVE, NEGATIVE = (239, 68, 60), (128, 90, 213)  # the colours of a positive and a negative value (RGB)
SHADE_LEGEND = "Red: activation near +1, purple: near −1, pale: near 0."
UNNAMED = "a unit the record names for no feature"


def shade(value: float | None) -> str:
    """A background for a value in [-1, 1]: red for positive, purple for negative, as strong as |value|."""
    if value is None:
        return ""
    r, g, b = POSITIVE if value >= 0 else NEGATIVE
    return f"background: rgba({r}, {g}, {b}, {abs(value):.3f})"


def shaded(text: str, values: list[float | None], target: int | None = None) -> str:
    """`text` as HTML, each character shaded by its value (None: not shaded), the character number `target`
    outlined; each character is an element of its own, numbered, to be clicked on."""
    cells = []
    for i, (c, v) in enumerate(zip(text, values)):
        cls = " class='target'" if i == target else ""
        shown = "↵\n" if c == "\n" else c  # a line break gets a mark, so that it has a shade too
        cells.append(f"<span data-c='{i}'{cls} style='{shade(v)}'>{html.escape(shown)}</span>")
    return f"<div class='shaded'>{''.join(cells)}</div>"


class Inside:
    """The view's actions over the catalogue of models; `units`, `horizon` and `leans_on` are the public endpoints
    of the same names."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        # A unit over the text, and a backward pass for what a prediction leans on: on a ZeroGPU Space they borrow
        # the GPU, for as long as the text asks.
        self._units = gpu.heavy(self._units, lambda model, text, unit: gpu.characters(text))
        self._leans = gpu.heavy(self._leans, lambda model, text, position: gpu.characters(text))

    def _model(self, model, units: bool):
        """The model named `model`, refused with a gr.Error saying why if the view (its `units` or the others) does
        not apply to it."""
        m = self.catalog[model]
        if why := inside.not_readable(m, units):
            raise gr.Error(f"the Inside view does not apply to {model}: {why}")
        return m

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
            if best["unit"] >= inside.num_units(m):
                raise gr.Error(f"the record names unit {best['unit']} for {name}, and this model's units go from 0 to "
                               f"{inside.num_units(m) - 1}: its inside record is not this model's; choose a unit number")
            where = "high" if best["sign"] > 0 else "low"
            measured_on = m.record["inside"]["units"]["measured_on"]
            return best["unit"], (f"the unit that best tells *{features[name]['about']}*: its activation is {where} "
                                  f"there, with ROC AUC **{best['auc']}** on {measured_on}")
        if isinstance(unit, str) and UNIT_NUMBER.fullmatch(unit.strip()):
            unit = int(unit.strip())
        known = f"a recorded feature ({', '.join(features)}) or " if features else ""
        if not isinstance(unit, (int, float)) or isinstance(unit, bool):
            raise gr.Error(f"unit must be {known}a unit number from 0 to {inside.num_units(m) - 1}; got {shown(unit)}")
        index = as_number("unit", unit, 0, inside.num_units(m) - 1, integer=True)
        told = [f"*{f['about']}* (AUC {u['auc']}, {'high' if u['sign'] > 0 else 'low'} there)"
                for f in features.values() for u in f["units"] if u["unit"] == index]
        return index, "one of the best units for " + "; ".join(told) if told else UNNAMED

    @staticmethod
    def _note(m, index: int, about: str) -> str:
        return f"**Unit {index}** ({inside.unit_name(m, index)}), {about}."

    def _units(self, model, text, unit) -> tuple[str, list[float], str]:
        m = self._model(model, units=True)
        clean, dropped = self._text(m, text)
        if not clean:
            raise gr.Error("text must hold at least one character the model knows")
        index, about = self._unit(m, unit)
        acts = [round(a, 4) for a in inside.unit_activations(m, clean, index).tolist()]
        return clean, acts, self._note(m, index, about) + dropped

    def units(self, model: str, text: str, unit: int | str) -> tuple[list[dict], str]:
        """The activation in [-1, 1] of one hidden unit of model `model` after each character of `text` (the
        characters the model knows), and a note on the unit in Markdown. `unit`: a unit number, or a feature the
        model's record names (its best unit for that feature)."""
        clean, acts, note = self._units(model, text, unit)
        return [{"char": c, "activation": a} for c, a in zip(clean, acts)], note

    def units_page(self, model, text, unit):
        if why := inside.not_readable(self.catalog[model]):  # the page says so in the view, as no error
            return "", f"The Inside view does not apply to {model}: {why}."
        clean, acts, note = self._units(model, text, unit)
        return shaded(clean, acts), f"{note} {SHADE_LEGEND}"

    def _leans(self, model, text, position) -> tuple[str, int, list[float | None], str]:
        m = self._model(model, units=False)
        clean, dropped = self._text(m, text)
        if len(clean) < 2:
            raise gr.Error("text must hold at least two characters the model knows: the first is only read, the "
                           "later ones are predicted from those before them")
        t = as_number("position", position, 2, len(clean), integer=True) - 1
        dep = inside.leans_on(m, clean, t, LEANS_ON_BACK)  # (t,), NaN where not measured
        measured = dep.nan_to_num(0.0)
        scale = measured.max().item() or 1.0  # all zero: nothing to scale
        rel = [None if math.isnan(d) else round(d / scale, 4) for d in dep.tolist()]
        top = int(measured.argmax())
        share = (measured.flip(0).cumsum(0) / measured.sum()).tolist() if measured.sum() > 0 else [1.0] * t
        half = next(k for k, s in enumerate(share, 1) if s >= 0.5)  # half of the dependence is this close
        far = f" Characters more than {LEANS_ON_BACK} back are not measured." if t > LEANS_ON_BACK else ""
        note = (f"The prediction of **{clean[t]!r}** (character {t + 1}) leans most on {clean[top]!r}, {t - top} "
                f"character(s) back; half of its dependence lies on the last {half} character(s).{far}" + dropped)
        return clean, t, rel, note

    def leans_on(self, model: str, text: str, position: int) -> tuple[list[dict], str]:
        """How much the prediction of character number `position` of `text` (from 2: the first is only read)
        depends on each character before it, relative to the largest (None for the predicted character, those
        after it and those more than LEANS_ON_BACK back, not measured), and a note in Markdown."""
        clean, t, rel, note = self._leans(model, text, position)
        values = rel + [None] * (len(clean) - t)
        return [{"char": c, "dependence": v} for c, v in zip(clean, values)], note

    def leans_page(self, model, text, position):
        if why := inside.not_readable(self.catalog[model], units=False):
            return "", f"The Inside view does not apply to {model}: {why}."
        clean, t, rel, note = self._leans(model, text, position)
        return shaded(clean, rel + [None] * (len(clean) - t), target=t), note

    def horizon(self, model: str) -> tuple[list[dict], str]:
        """The recorded memory horizon of model `model`: the dependence of a prediction on the character k back,
        relative to k = 1, for k = 1..K (an empty list for a model with no record), and a note in Markdown."""
        m = self.catalog[model]
        if why := inside.not_readable(m, units=False):
            return [], f"The Inside view does not apply to {model}: {why}."
        h = (m.record.get("inside") or {}).get("horizon")
        if not h:
            return [], f"{model} has no inside record: `{HOW}` writes one."
        at = {name: f"k = {k}" if k else f"no k up to {h['max_distance']}" for name, k in h["below"].items()}
        return ([{"k": k, "relative": r} for k, r in enumerate(h["relative"], 1)],
                f"For {model}, the dependence falls below 10 % of its value at k = 1 at {at['10%']}, below 1 % at "
                f"{at['1%']} (averaged over {h['positions']} positions of {h['text']}).")

    def all_horizons(self) -> tuple[str, str]:
        """Every recorded horizon in one chart, and each model's figures in a Markdown table."""
        series, rows = [], []
        for name in self.catalog.names():
            record = self.catalog[name].record.get("inside")
            if record:
                h, u = record["horizon"], record.get("units")
                series.append((name, h["relative"]))
                below = [str(k) if k else f"> {h['max_distance']}" for k in h["below"].values()]
                units = f"{u['features_above_bar']} of {len(u['features'])}" if u else "no units to read"
                rows.append(f"| {name} | {' | '.join(below)} | {units} |")
        if not rows:
            return "", f"No model here has an inside record: `{HOW}` writes one."
        table = ["| model | below 10 % at k | below 1 % at k | features with a unit of AUC ≥ 0.95 |",
                 "|---|---|---|---|", *rows]
        return charts.decay(series, title="dependence ÷ its value at k = 1"), "\n".join(table)

    def recorded_units(self, model: str) -> dict | None:
        """What the static edition needs to shade a text as this view does, for model `model` (None if the view's
        units do not apply to it): its unit groups in numbering order ([layer, kind] per hidden_size units), the
        features its record names (label, name, best unit, note and the record's other units with their AUC, as
        the unit box offers them), and the note
        (Markdown) of each unit the record names, and of any other unit (UNNAMED)."""
        m = self.catalog[model]
        if inside.not_readable(m):
            return None
        features = []
        for label, name in self.unit_options(model)[0]:
            index, about = self._unit(m, name)
            others = [[u["unit"], u["name"], u["auc"]] for u in _features(m)[name]["units"][1:]]  # the next best
            features.append({"label": label, "name": name, "unit": index, "note": self._note(m, index, about),
                             "others": others})
        named = sorted({u["unit"] for f in _features(m).values() for u in f["units"]})
        return {"groups": [list(g) for g in inside.probe.unit_groups(m)], "hidden_size": m.config.hidden_size,
                "features": features, "notes": {i: self._note(m, *self._unit(m, i)) for i in named},
                "unnamed": UNNAMED}

    def unit_options(self, model, unit=None) -> tuple[list[tuple[str, str]], str]:
        """The choices of the unit box for `model` (its recorded features) and its value: `unit` if it is a
        number, else the first feature (or unit 0 for a model with no record)."""
        # A feature that never held on the text the units were chosen on has no unit: it is not offered
        choices = [(f"{f['about']} ({name})", name) for name, f in _features(self.catalog[model]).items() if f["units"]]
        keep = isinstance(unit, str) and bool(UNIT_NUMBER.fullmatch(unit.strip()))
        return choices, unit if keep else (choices[0][1] if choices else "0")

    def unit_box(self, model, unit):
        choices, value = self.unit_options(model, unit)
        return gr.Dropdown(choices=choices, value=value)


def _features(m) -> dict:
    """The features a model's inside record names, with their best units; {} for a model with no record."""
    return (m.record.get("inside") or {}).get("units", {}).get("features", {})


def _shaded_text(prefix: str, page, *args) -> tuple[gr.Markdown, gr.HTML]:
    """A note and a shaded text (elements `prefix`-note and `prefix`-shaded) showing, before any request, what
    page(*args) gives: the example as the first model reads it, if it can (a model that knows fewer characters
    may read it shorter than the default position)."""
    try:
        shown, note = page(*args)
    except gr.Error:
        shown, note = "", ""
    return gr.Markdown(note, elem_id=f"{prefix}-note"), gr.HTML(shown, elem_id=f"{prefix}-shaded", js_on_load=CLICK_JS)


def build_inside(catalog: Catalog, model: gr.Dropdown) -> Inside:
    """Lay out the view inside the current tab and wire it to the model dropdown."""
    view = Inside(catalog)
    first = model.value
    gr.Markdown("Some hidden units of a trained network track what a reader of a play sees: a speaker's name, "
                "a parenthesis, how far into the line it is. Pick a feature to shade the text by the unit that "
                "tells it best, or type a unit's number; click a character to see what its prediction leans on.")
    text = gr.Textbox(EXAMPLE, lines=6, max_lines=12, max_length=MAX_INSIDE_CHARS, label="Text", elem_id="inside-text")
    with gr.Row():
        choices, value = view.unit_options(first)
        unit = gr.Dropdown(choices, value=value, allow_custom_value=True, label="Feature or unit number",
                           elem_id="unit", info="a feature the model's record names, or a unit number")
        show = gr.Button("Shade by this unit", variant="primary", elem_id="unit-button")
    with gpu.cpu_only():  # at start: no visitor asked, none should pay
        unit_note, unit_shaded = _shaded_text("unit", view.units_page, first, EXAMPLE, value)
    gr.Markdown("### What one prediction leans on\nEach character before the outlined one shaded by how much its "
                "prediction depends on it: the norm of the gradient of log p(that character) with respect to each "
                "input, relative to the largest.")
    with gr.Row():
        position = gr.Number(LEANS_ON_DEFAULT, precision=0, minimum=2, maximum=MAX_INSIDE_CHARS,
                             label="Predicted character (its number in the text)", elem_id="position")
        lean = gr.Button("Show what it leans on", elem_id="leans-button")
    with gpu.cpu_only():
        leans_note, leans_shaded = _shaded_text("leans", view.leans_page, first, EXAMPLE, LEANS_ON_DEFAULT)
    gr.Markdown("### How far back each model looks\nThe same dependence, averaged over many positions of text the "
                "model did not train on, for the character 1 to 256 steps back (recorded by `python -m charrnn "
                "inside`).")
    chart, table = view.all_horizons()
    gr.HTML(chart, elem_id="horizon-chart")
    gr.Markdown(table, elem_id="horizon-table")

    shade_units = dict(fn=view.units_page, inputs=[model, text, unit], outputs=[unit_shaded, unit_note], **MODEL_EVENT)
    shade_leans = dict(fn=view.leans_page, inputs=[model, text, position], outputs=[leans_shaded, leans_note],
                       **MODEL_EVENT)
    show.click(**shade_units)
    lean.click(**shade_leans)
    # Another model: its features to choose from, then the text shaded by its units and its gradients.
    model.change(view.unit_box, [model, unit], unit, queue=False, api_visibility="private", preprocess=False).then(
        **shade_units).then(**shade_leans)
    for fn in (view.units, view.horizon, view.leans_on):
        catalog.publish(fn, fn.__name__)
    return view
