"""Every kind of model the app may be given, through every view: each cell of the registry, plain and with each
regularisation it offers, and a mixture of models, which the Inside view does not apply to and says so. Then the
records the app refuses to serve: a malformed inside section."""
from __future__ import annotations

import copy
import json
import math
import shutil

import gradio as gr
import pytest
import torch

import app
import charrnn
from charrnn import cells, inside
from charrnn.checkpoint import CheckpointError
from charrnn.mixture import Mixture
from tests.helpers import TINY_TEXT, tiny_model
from ui.compare import Compare
from ui.inside import HOW, Inside
from ui.learned import Learned
from ui.score import Score
from ui.validate import Catalog
from ui.write import Write

MIXTURE = "Mixture (GRU + paper RNN)"
TEXT = "ARGAN.\n\nMon ami, où est le valet?"


def every_cell_and_regularisation() -> dict[str, tuple[str, dict]]:
    """name -> (cell, settings): every cell of the registry, plain and with each regularisation it offers."""
    out = {}
    for cell, entry in cells.CELLS.items():
        kw = {"num_layers": 2} if cell == "paper" else {"num_layers": 2, "embed_size": 6}
        out[cell] = (cell, kw)
        if entry.regularised is not None:
            out[f"{cell}, weight_drop"] = (cell, {**kw, "weight_drop": 0.3})
            out[f"{cell}, locked dropout"] = (cell, {**kw, "dropout": 0.3, "dropout_mask": "sequence"})
    return out


@pytest.fixture(scope="module")
def models() -> dict:
    """The mixture first (the page's first model: its views render when the page is built), then each cell, one
    training step taken (so that each model's weights have moved from their initialisation)."""
    built = {}
    for name, (cell, kw) in every_cell_and_regularisation().items():
        model = tiny_model(cell, hidden_size=8, **kw)
        ids = torch.tensor([model.encode(TINY_TEXT[:65])])
        charrnn.training.train_step(model, torch.optim.SGD(model.parameters(), lr=0.1), ids[:, :-1], ids[:, 1:])
        built[name] = model.eval()
    return {MIXTURE: Mixture([built["gru"], built["paper"]], [0.7, 0.3]).eval(), **built}


def test_the_page_builds_with_a_mixture_first_and_every_cell(models):
    # the mixture, paper, then rnn, gru, lstm, ln-lstm with their regularisations, then mingru and the transformer,
    # which have none
    assert len(models) == 1 + 1 + 3 * 4 + 2
    app.build_app(models)  # each view's first render is of the first model, the mixture


def test_a_regularisation_a_cell_does_not_offer_is_refused_naming_the_cells_that_do():
    for cell in (c for c, entry in cells.CELLS.items() if entry.regularised is None):
        for kw in ({"weight_drop": 0.3}, {"dropout_mask": "sequence"}):
            with pytest.raises(ValueError, match=f"offered for the rnn, gru, lstm, ln-lstm cells, not {cell!r}"):
                tiny_model(cell, **kw)


def test_every_model_writes_and_compares(models):
    write, catalog = Write(Catalog(models)), Catalog(models)
    for name, m in models.items():
        written = list(write.generate(name, "ARGAN.\n\n", 20, 0.8, 0, 1.0, 3))[-1]
        assert written == "".join(charrnn.generate(m, "ARGAN.\n\n", 20, 0.8, 0, 1.0, 3)), name
    last = list(Compare(catalog).compare("ARGAN.\n\n", 12, 0.8, 5))[-1]
    assert list(last) == list(models) and all(len(t) == 12 for t in last.values())


def test_every_model_scores(models):
    score = Score(Catalog(models))
    for name, m in models.items():
        chars, note, expected = score.score(name, TEXT)
        losses = charrnn.char_losses(m, TEXT) / math.log(2)
        assert [c["bits"] for c in chars[1:]] == pytest.approx(losses.tolist(), abs=1e-3), name
        assert "bits/char** over the" in note and "nan" not in note and len(expected) == 3


def test_every_model_has_its_learning_view(models):
    learned = Learned(Catalog(models))
    for name in models:
        assert learned.history(name)[0] == []  # no evaluation recorded
        figures, _, caption, _ = learned.chosen(name)
        assert f"**{name}** recorded no losses" in figures
    assert learned.chosen(MIXTURE)[2].startswith("A mixture is not trained (its members were)")
    assert learned.loss_curves() and learned.test_bars() is not None


def test_every_cell_shades_its_units_and_what_a_prediction_leans_on(models):
    view = Inside(Catalog(models))
    for name, m in models.items():
        if name == MIXTURE:
            continue
        clean = m.vocab.normalize(TEXT)[0]
        chars, note = view.leans_on(name, TEXT, 12)
        dep = inside.leans_on(m, clean, 11)
        assert [c["dependence"] for c in chars[:11]] == pytest.approx((dep / dep.max()).tolist(), abs=1e-4), name
        assert view.leans_page(name, TEXT, 12)[0].count("class='target'") == 1
        assert view.horizon(name) == ([], f"{name} has no inside record: `{HOW}` writes one.")
        if cells.CELLS[m.config.cell].units is None:  # the transformer: no state per step; the view says so
            why = f"its cell, {m.config.cell!r}, offers no reading of its hidden units"
            with pytest.raises(gr.Error, match=f"the Inside view does not apply to {name}: {why}"):
                view.units(name, TEXT, 0)
            assert view.units_page(name, TEXT, "0") == ("", f"The Inside view does not apply to {name}: {why} (cells.CELLS).")
            continue
        last = inside.num_units(m) - 1
        chars, note = view.units(name, TEXT, last)
        assert [c["activation"] for c in chars] == pytest.approx(
            inside.unit_activations(m, clean, last).tolist(), abs=1e-4), name
        assert f"**Unit {last}** ({inside.unit_name(m, last)})" in note
        assert view.units_page(name, TEXT, "0")[0].count("<span data-c=") == len(clean)


def test_the_inside_view_says_it_does_not_apply_to_a_mixture(models):
    view = Inside(Catalog(models))
    why = "it is a mixture of 2 models, and these measures read one network's hidden units and inputs"
    for endpoint, args in ((view.units, (TEXT, 0)), (view.leans_on, (TEXT, 5))):
        with pytest.raises(gr.Error) as e:
            endpoint(MIXTURE, *args)
        assert e.value.message.startswith(f"the Inside view does not apply to {MIXTURE}: {why}")
    for page, args in ((view.units_page, (TEXT, "0")), (view.leans_page, (TEXT, 5))):
        shaded, note = page(MIXTURE, *args)
        assert shaded == "" and note.startswith(f"The Inside view does not apply to {MIXTURE}: {why}")
    curve, note = view.horizon(MIXTURE)
    assert curve == [] and note.startswith(f"The Inside view does not apply to {MIXTURE}")
    assert view.unit_options(MIXTURE) == ([], "0")


def test_a_recorded_unit_the_model_does_not_have_is_refused_saying_so(inside_lstm):
    """An inside record copied from another model may name a unit past this one's: a gr.Error, not a ValueError."""
    record = copy.deepcopy(charrnn.load(inside_lstm).record["inside"])
    record["units"]["features"]["speaker_line"]["units"][0]["unit"] = 999
    small = tiny_model("lstm", hidden_size=4, embed_size=4)
    small.record = {"inside": record}
    with pytest.raises(gr.Error, match="the record names unit 999 for speaker_line, and this model's units go from 0 "
                                       "to 7: its inside record is not this model's; choose a unit number"):
        Inside(Catalog({"small": small})).units("small", TEXT, "speaker_line")


# --- a record the app refuses: a malformed inside section -------------------------------------------------

MALFORMED_INSIDE = {  # a change to a valid inside section -> what the refusal names
    "a list": (lambda i: [i], "an inside section that is a list"),
    "a horizon that is text": (lambda i: {**i, "horizon": "far"}, "an inside horizon without"),
    "relative values that are text": (lambda i: {**i, "horizon": {**i["horizon"], "relative": ["1"]}}, "an inside horizon"),
    "no distances below": (lambda i: {**i, "horizon": {**i["horizon"], "below": 7}}, "an inside horizon"),
    "units that are a list": (lambda i: {**i, "units": []}, "an inside units section without"),
    "features that are a list": (lambda i: {**i, "units": {**i["units"], "features": []}}, "an inside units section"),
    "a unit number that is text": (
        lambda i: {**i, "units": {**i["units"], "features": {"verse": {"about": "verse", "units": [
            {"unit": "7", "name": "layer 1 state 7", "sign": 1, "auc": 0.9}]}}}}, "an inside feature 'verse'"),
    "an AUC that is NaN": (
        lambda i: {**i, "units": {**i["units"], "features": {"verse": {"about": "verse", "units": [
            {"unit": 7, "name": "layer 1 state 7", "sign": 1, "auc": float("nan")}]}}}}, "an inside feature 'verse'"),
}


@pytest.mark.parametrize("case", MALFORMED_INSIDE)
def test_a_malformed_inside_section_is_refused_where_the_record_is_read(inside_lstm, tmp_path, case):
    change, message = MALFORMED_INSIDE[case]
    bad = shutil.copytree(inside_lstm, tmp_path / "bad")
    record = json.loads((bad / "config.json").read_text())
    record["inside"] = change(record["inside"])
    (bad / "config.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match=f"has {message}.*measure it again"):
        charrnn.load(bad)


def test_the_shipped_inside_records_are_well_formed():
    for name in ("seed", "paper-rnn", "gru", "lstm", "gru-large"):
        record = charrnn.checkpoint.read_record(app.HERE / "checkpoints" / name)
        assert charrnn.record.inside_problem(record["inside"]) is None, name


def test_the_line_under_the_model_menu_says_what_each_model_is(models):
    """A sentence per cell (cells.CELLS), the app's own for the shipped models its cell would not tell apart, the
    mixture's, and the size; the page shows the best model's first and follows the menu."""
    catalog = Catalog(models, about={"gru": "A sentence of the app's own."})
    assert catalog.about("gru") == f"**gru**: A sentence of the app's own. {models['gru'].num_params():,} weights."
    for name, m in models.items():
        said = Catalog(models).about(name)
        expected = "networks' predictions averaged" if name == MIXTURE else cells.CELLS[m.config.cell].about
        assert said.startswith(f"**{name}**: ") and expected in said and f"{m.num_params():,} weights" in said, name
    demo = app.build_app(models)
    shown = [c for c in demo.config["components"] if c.get("props", {}).get("elem_id") == "model-about"]
    assert len(shown) == 1 and shown[0]["props"]["value"] == Catalog(models, about=app.ABOUT).about(MIXTURE)
    menu = next(c["id"] for c in demo.config["components"] if c.get("props", {}).get("elem_id") == "model")
    assert any([list(t) for t in d["targets"]] == [[menu, "change"]] and list(d["outputs"]) == [shown[0]["id"]]
               for d in demo.config["dependencies"])
