"""Inside the model: the gradient against finite differences, the feature labellers on hand-written lines, a
unit planted by hand found with AUC 1, the probe against the model's own states, the command's record."""
from __future__ import annotations

import itertools
import json
import shlex

import pytest
import torch
import torch.nn.functional as F

import charrnn
from charrnn.cli import main
from charrnn import cells
from charrnn.inside import features, horizon, measure, probe
from charrnn.mixture import Mixture

from .helpers import TINY_TEXT, tiny_model

# A made-up scene in the corpus's layout, written for these tests.
SCENE = ("HARPAGON, à part.\n\n"
         "Que dit-il? Ah! je suis perdu (hélas) et\n"
         "mon argent aussi.\n\n"
         "VALÈRE.\n\n"
         "Je suis ici,\n"
         "Et vous, mon cher,\n"
         "venez donc.\n")


def picked(text: str, labels: list[bool]) -> str:
    """The characters of `text` a labeller marks, in order."""
    assert len(labels) == len(text)
    return "".join(c for c, marked in zip(text, labels) if marked)


# --- the memory horizon: the gradient ------------------------------------------------------------------

def reference_dependence(model, ids: list[int], start: int, t: int, j: int, eps: float = 1e-5) -> float:
    """|| d log p(ids[t]) / d input(j) || by central differences, reading ids[start:t] from the zero state, with
    the inputs built here (one-hot vectors or embedding rows), each of input j's coordinates nudged in turn."""
    idx = torch.tensor(ids[start:t])
    if model.embed is not None:
        x = model.embed.weight.detach()[idx].clone()  # (T, E)
    else:
        x = F.one_hot(idx, model.config.vocab_size).double()  # (T, V)

    def logp(x):
        out, _ = model.rnn(x[None], None)
        return F.log_softmax(model.head(out[0, -1]), dim=-1)[ids[t]].item()

    grad = []
    for d in range(x.shape[1]):
        up, down = x.clone(), x.clone()
        up[j - start, d] += eps
        down[j - start, d] -= eps
        grad.append((logp(up) - logp(down)) / (2 * eps))
    return torch.tensor(grad).norm().item()


@pytest.mark.parametrize("cell,kw", [("paper", {}), ("lstm", {"embed_size": 6, "num_layers": 2}),
                                     ("gru", {"embed_size": 6, "num_layers": 2}), ("paper", {"num_layers": 2}),
                                     ("mingru", {"embed_size": 6, "num_layers": 2})])
def test_dependence_is_the_gradient_norm_finite_differences_give(cell, kw):
    model = tiny_model(cell, hidden_size=8, **kw).double().eval()
    ids = model.encode(TINY_TEXT[:40])
    K, warmup = 6, 5
    positions = [8, 30, 37]  # 8: only 2 characters to warm up on; the others a full warm-up
    dep = horizon.dependence(model, torch.tensor(ids), positions, K, warmup, batch=2)
    assert dep.shape == (3, K) and dep.dtype == torch.float64
    for row, t in enumerate(positions):
        start = max(0, t - K - warmup)
        for k in range(1, K + 1):
            expected = reference_dependence(model, ids, start, t, t - k)
            assert dep[row, k - 1].item() == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_leans_on_reads_the_text_from_its_start():
    model = tiny_model("lstm", hidden_size=8, embed_size=6).double().eval()
    text = TINY_TEXT[:25]
    dep = horizon.leans_on(model, text, 20)
    assert dep.shape == (20,)
    ids = model.encode(text)
    for j in (0, 7, 19):
        assert dep[j].item() == pytest.approx(reference_dependence(model, ids, 0, 20, j), rel=1e-6, abs=1e-9)
    near = horizon.leans_on(model, text, 20, max_distance=6)  # the 14 characters before read without a gradient
    assert near[:14].isnan().all() and torch.allclose(near[14:], dep[14:], rtol=1e-9)
    with pytest.raises(ValueError, match="from 1 to 24"):
        horizon.leans_on(model, text, 25)


def test_a_network_without_recurrence_looks_back_one_character():
    model = tiny_model("paper", hidden_size=8)
    with torch.no_grad():
        model.rnn.U[0][:, model.config.vocab_size :] = 0  # U_s = 0: s(t) depends on w(t) alone
    h = horizon.memory_horizon(model, TINY_TEXT[:200], positions=10, max_distance=12, warmup=8)
    assert h["relative"][0] == 1.0 and h["relative"][1:] == [0.0] * 11
    assert h["below"] == {"10%": 2, "1%": 2} and h["input"] == "one-hot" and h["positions"] == 10


def test_memory_horizon_refuses_a_text_too_short():
    with pytest.raises(ValueError, match="more than 20 characters"):
        horizon.memory_horizon(tiny_model(), TINY_TEXT[:15], positions=4, max_distance=12, warmup=8)


# --- the features --------------------------------------------------------------------------------------

def test_speaker_lines_and_stage_directions():
    assert picked(SCENE, features.speaker_line(SCENE)) == "HARPAGON, à part.VALÈRE."
    assert picked(SCENE, features.stage_direction(SCENE)) == ", à part."
    assert [features.is_speaker_line(s) for s in ("MAITRE JACQUES.", "L'ÉPINE, seul.", "Je suis ici.", "A.",
                                                  "ACTE 2.", "HARPAGON")] == [True, True, False, False, False, False]


def test_parentheses_line_starts_and_columns():
    assert picked(SCENE, features.in_parentheses(SCENE)) == "(hélas)"
    assert picked("a (b\n\nc) d", features.in_parentheses("a (b\n\nc) d")) == "(b\n"  # a blank line closes it
    assert picked(SCENE, features.line_start(SCENE)) == "HQmVJEv"
    line = "x" * 45 + "\n" + "y" * 5
    assert picked(line, features.late_in_line(line)) == "x" * 5 + "\n"


def test_questions_words_and_verse():
    assert picked(SCENE, features.after_question(SCENE)) == " Ah!"
    assert picked("Je l'ai vu.", features.inside_word("Je l'ai vu.")) == "eiu"
    assert picked(SCENE, features.verse(SCENE)) == "Et vous, mon cher,"  # not the first line, nor lower case
    assert set(features.label_all(SCENE)) == set(features.FEATURES)


# --- the units -----------------------------------------------------------------------------------------

def test_roc_auc_counts_the_pairs_a_unit_orders_right():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 5, (40, 3), generator=gen).float()  # many ties
    labels = torch.rand(2, 40, generator=gen) < 0.3
    auc = probe.roc_auc(scores, labels)
    for f, u in itertools.product(range(2), range(3)):
        pos, neg = scores[labels[f], u], scores[~labels[f], u]
        wins = sum((p > n) + 0.5 * (p == n) for p in pos.tolist() for n in neg.tolist())
        assert auc[f, u].item() == pytest.approx(wins / (len(pos) * len(neg)), abs=1e-12)
    assert probe.roc_auc(scores, torch.zeros(1, 40, dtype=torch.bool)).isnan().all()


def every_cell_and_regularisation():
    """(cell, settings) for every cell of the registry, plain and with each regularisation it offers (built as in
    test_regularisation)."""
    for cell, entry in cells.CELLS.items():
        if entry.units is None:  # the transformer: tests/test_transformer.py says what its Inside view offers
            continue
        kw = {"num_layers": 2} if cell == "paper" else {"num_layers": 2, "embed_size": 6}
        yield pytest.param(cell, kw, id=cell)
        if entry.regularised is not None:
            yield pytest.param(cell, {**kw, "weight_drop": 0.3}, id=f"{cell}-weight_drop")
            yield pytest.param(cell, {**kw, "dropout": 0.3, "dropout_mask": "sequence"}, id=f"{cell}-locked")


@pytest.mark.parametrize("cell,kw", every_cell_and_regularisation())
def test_probe_activations_are_the_model_s_own_states(cell, kw):
    model = tiny_model(cell, hidden_size=8, **kw).eval()
    text = TINY_TEXT[:30]
    groups = list(probe.activations(model, text))
    assert [(layer, kind) for layer, kind, _ in groups] == probe.unit_groups(model)
    with torch.no_grad():
        top, state = model.features(torch.tensor([model.encode(text)]))
    if cell == "paper":  # state: (L, 1, H) in [0, 1]
        last = [2 * state[layer, 0] - 1 for layer in range(2)]
        assert torch.allclose(groups[1][2], 2 * top[0] - 1, atol=1e-6)
    elif cell in ("rnn", "gru"):
        last = [state[layer, 0] for layer in range(2)]
        assert torch.allclose(groups[1][2], top[0], atol=1e-6)
    elif cell == "mingru":  # state (L, 1, H), positive: shown as tanh(h)
        last = [state[layer, 0].tanh() for layer in range(2)]
        assert torch.allclose(groups[1][2], top[0].tanh(), atol=1e-6)
    else:  # (h, c), each (L, 1, H); groups: layer 1 h, c, layer 2 h, c
        h, c = state
        if cell == "ln-lstm":  # its cell as the output gate reads it
            c = torch.stack([model.rnn.ln_c[layer](c[layer]) for layer in range(2)])
        last = [h[0, 0], c[0, 0].tanh(), h[1, 0], c[1, 0].tanh()]
        assert torch.allclose(groups[2][2], top[0], atol=1e-6)
    for (_, _, acts), expected in zip(groups, last, strict=True):
        assert acts.shape == (30, 8) and torch.allclose(acts[-1], expected, atol=1e-6)
    assert probe.num_units(model) == len(groups) * 8
    assert probe.unit_name(model, 8 * len(groups) - 1) == f"layer 2 {groups[-1][1]} 7"


def test_the_inside_measures_refuse_a_mixture_saying_why():
    mixture = Mixture([tiny_model("gru", embed_size=4), tiny_model("paper")])
    for measure in (lambda: probe.num_units(mixture), lambda: probe.unit_activations(mixture, TINY_TEXT[:20], 0),
                    lambda: horizon.leans_on(mixture, TINY_TEXT[:20], 10)):
        with pytest.raises(ValueError, match="do not apply to this model: it is a mixture of 2 models, and these measures read one network"):
            measure()


def planted_model():
    """A 2-layer paper RNN built by hand: layer 1's unit 2 is on for a letter, its unit 5 for a letter after a
    letter (inside_word); layer 2's unit 1 copies unit 5, its unit 6 copies it with the opposite sign."""
    model = tiny_model("paper", text=TINY_TEXT + SCENE, hidden_size=8, num_layers=2)
    V = model.config.vocab_size
    letter = torch.tensor([c.isalpha() for c in model.vocab.chars], dtype=torch.float)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        U1, U2 = model.rnn.U  # (H, V + H), (H, H + H): columns [input; s(t-1)]
        U1[2, :V] = 20 * letter - 10
        U1[5, :V] = 10 * letter
        U1[5, V + 2] = 10  # s_2(t-1): the character before was a letter
        model.rnn.b[0][5] = -15
        U2[1, 5], model.rnn.b[1][1] = 20, -10
        U2[6, 5], model.rnn.b[1][6] = -20, 10
    return model.eval()


def test_a_planted_unit_is_found_with_auc_1():
    model = planted_model()
    text = SCENE * 3
    aucs = probe.feature_aucs(model, text, features.label_all(text), skip=2)
    f = list(features.FEATURES).index("inside_word")
    assert aucs[f, 5].item() == 1.0 and aucs[f, 8 + 1].item() == 1.0 and aucs[f, 8 + 6].item() == 0.0
    assert (aucs[f, [0, 1, 3, 4, 6, 7]] < 1).all()  # the units left at zero tell nothing


def test_best_units_records_the_planted_units_both_signs():
    model = planted_model()
    train_text = SCENE * 40
    units = measure.best_units(model, train_text, SCENE * 5, {"val_chars": len(SCENE) * 10}, log=lambda s: None)
    best = units["features"]["inside_word"]["units"]
    assert {(u["unit"], u["name"], u["sign"], u["auc"]) for u in best} == {
        (5, "layer 1 state 5", 1, 1.0), (9, "layer 2 state 1", 1, 1.0), (14, "layer 2 state 6", -1, 1.0)}
    assert all(u["auc_chosen"] == 1.0 for u in best)  # chosen on the first half of the unseen text, measured on the second
    assert units["units"] == 16 and units["features_above_bar"] >= 1
    assert units["features"]["verse"]["share"] == pytest.approx(
        sum(features.verse(train_text)[-len(SCENE) * 5 :]) / (len(SCENE) * 5), abs=5e-5)  # recorded to 4 places


def test_units_are_chosen_off_the_test_split():
    train, test = "a" * 60_000 + "b" * 30_000, "t" * 60_000
    val = measure.unit_texts(train, test, {"val_chars": 5_000})  # chosen on its first half, measured on its second
    assert val["chosen"][:2] == (train[-5_000 - 256 : -2_500], 256) and val["measured"][:2] == (train[-2_756:], 256)
    assert "first 2,500 characters of the validation slice" in val["chosen"][2] and "only measured" in val["measured"][2]
    seed = measure.unit_texts(train, test, {"max_chars": 20_000})  # trained on the start: the end is unseen
    assert seed["chosen"][:2] == (train[-50_256:-25_000], 256) and seed["measured"][:2] == (train[-25_256:], 256)
    whole = measure.unit_texts(train, test, {})  # trained on everything: chosen on its end, measured on the test
    assert whole["chosen"][:2] == (train[-50_256:], 256) and "t" not in whole["chosen"][0]
    assert whole["measured"][:2] == (train[-256:] + test[:50_000], 256) and "only measured" in whole["measured"][2]


# --- the command ----------------------------------------------------------------------------------------

ARGS = ["--positions", "8", "--max-distance", "16", "--warmup", "8"]


def test_inside_command_records_a_reproducible_result(lstm_copy, corpus_file, capsys):
    weights = (lstm_copy / "model.safetensors").read_bytes()
    before = json.loads((lstm_copy / "config.json").read_text())
    main(["inside", "--checkpoint", str(lstm_copy), "--data", str(corpus_file), *ARGS, "--record"])
    out = capsys.readouterr().out
    assert "recorded in" in out and "features have a unit with AUC >= 0.95" in out
    record = json.loads((lstm_copy / "config.json").read_text())
    inside = record.pop("inside")
    assert record == before  # nothing else changed
    assert (lstm_copy / "model.safetensors").read_bytes() == weights
    assert inside["horizon"]["text"].startswith("the validation slice (500 characters")
    assert len(inside["horizon"]["relative"]) == 16 and inside["horizon"]["relative"][0] == 1.0
    assert inside["units"]["units"] == 64 and set(inside["units"]["features"]) == set(features.FEATURES)
    assert "## Inside the model" in (lstm_copy / "README.md").read_text()
    # The recorded command, run again, records the same.
    again = shlex.split(inside["command"])
    assert again[:3] == ["python", "-m", "charrnn"]
    main(again[3:])
    assert json.loads((lstm_copy / "config.json").read_text())["inside"] == inside
    assert charrnn.load(lstm_copy).record["inside"] == inside


def test_inside_command_refuses_what_it_cannot_do(tiny_checkpoints, corpus_file, capsys):
    with pytest.raises(SystemExit, match="local checkpoint directory"):
        main(["inside", "--checkpoint", "nobody/nothing", "--data", str(corpus_file), "--record"])
    with pytest.raises(SystemExit, match="needs a text of more than"):  # the 500-character validation slice
        main(["inside", "--checkpoint", str(tiny_checkpoints["lstm"]), "--data", str(corpus_file),
              "--max-distance", "400", "--warmup", "200"])
