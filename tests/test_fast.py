"""The writing form (charrnn.fast): the float32 model's predictions from cheaper weights, its choice and record."""
import copy
import functools
import math
import json

import pytest
import torch
import torch.nn.functional as F

import charrnn
from charrnn.cli import main
from charrnn.data import read_text, split
from charrnn.fast import FORMS, for_writing
from charrnn.training import train_step
from .helpers import TINY_TEXT, tiny_model
from .test_shipped import ROOT, SHIPPED, _corpus

# Mean KL(float32 || form) per character, in nats. Measured on CASES: at most 3e-5 for bf16 (8 bits of
# mantissa), 3e-4 for int8 (weights and activations each in 256 steps); the paper RNN's output layer read
# as V h instead of V (1 + h)/2 gives 4e-2. (A wrong state is caught exactly, on the float32 form, below.)
KL_TOLERANCE = {"float32": 1e-10, "bf16": 1e-4, "int8": 1e-3}
CASES = [("paper", {}), ("paper", {"num_layers": 2, "embed_size": 8}), ("rnn", {"num_layers": 2}),
         ("gru", {"embed_size": 8, "num_layers": 2}), ("lstm", {"embed_size": 8, "num_layers": 2}), ("lstm", {}),
         ("mingru", {"embed_size": 8, "num_layers": 2})]


@functools.cache
def _trained(cell: str, num_layers: int = 1, embed_size: int = 0) -> charrnn.CharRNN:
    """A tiny model fitted a little to TINY_TEXT, so that its predictions are confident as a trained one's
    (shared by the tests: none changes it)."""
    model = tiny_model(cell, hidden_size=32, num_layers=num_layers, embed_size=embed_size)
    ids = torch.tensor([model.encode(TINY_TEXT[:200])])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        train_step(model, opt, ids[:, :-1], ids[:, 1:])
    return model.eval()


def _kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> float:
    """Mean KL(p || q) per position, in nats, of two (B, T, V) logits."""
    p, q = F.log_softmax(p_logits.double(), -1), F.log_softmax(q_logits.double(), -1)
    return (p.exp() * (p - q)).sum(-1).mean().item()


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("cell, kw", CASES)
def test_the_writing_form_predicts_as_the_float32_model_across_calls(cell, kw, form):
    """Read in two calls (the prompt, then one character at a time, the state handed over), the writing form's
    next-character distributions stay within the form's tolerance of the float32 model's."""
    model = _trained(cell, **kw)
    writer = for_writing(model, form)
    ids = torch.tensor([model.encode(TINY_TEXT[500:620])])  # (1, 120): text the model did not fit
    with torch.no_grad():
        ref, ref_state = model(ids[:, :100])
        out, state = writer(ids[:, :100])
        refs, outs = [ref], [out]
        for t in range(100, 120):  # one-character steps, as generate writes
            ref, ref_state = model(ids[:, t : t + 1], ref_state)
            out, state = writer(ids[:, t : t + 1], state)
            refs.append(ref)
            outs.append(out)
    ref, out = torch.cat(refs, 1), torch.cat(outs, 1)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert _kl(ref, out) < KL_TOLERANCE[form]
    if form == "float32":  # the same function of the same weights, rearranged
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_the_writing_forms_state_is_the_float32_models():
    """The paper RNN's writing form runs in tanh form but hands over the paper's state s in [0, 1], so a text
    begun by the float32 model continues in the writing form (and evaluate's reset to zeros means s(0) = 0)."""
    model = _trained("paper", num_layers=2)
    ids = torch.tensor([model.encode(TINY_TEXT[:60])])
    with torch.no_grad():
        _, state = model(ids[:, :50])
        ref, ref_state = model(ids[:, 50:], state)
        out, out_state = for_writing(model, "float32")(ids[:, 50:], state)
        _, zero_started = for_writing(model, "float32")(ids[:, :50], torch.zeros_like(state))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_state, ref_state, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(zero_started, state, atol=1e-6, rtol=1e-5)


def test_for_writing_leaves_the_model_as_it_was():
    model = _trained("paper")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for_writing(model, "int8")
    for_writing(model, "bf16")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert next(model.parameters()).dtype == torch.float32


@pytest.mark.parametrize("form", FORMS)
def test_generate_writes_with_the_writing_form_reproducibly(form):
    model = _trained("lstm", embed_size=8)
    writer = for_writing(model, form)
    text = "".join(charrnn.generate(writer, "ARGAN.\n\n", 80, temperature=0.8, seed=3))
    assert len(text) == 80 and set(text) <= set(model.vocab.chars)
    assert "".join(charrnn.generate(writer, "ARGAN.\n\n", 80, temperature=0.8, seed=3)) == text
    assert "".join(charrnn.generate(writer, "ARGAN.\n\n", 80, temperature=0.8, seed=4)) != text
    if form == "float32":  # the same distributions: the same characters drawn from the same seed
        assert "".join(charrnn.generate(model, "ARGAN.\n\n", 80, temperature=0.8, seed=3)) == text


def test_an_unknown_form_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="float32, bf16, int8"):
        for_writing(tiny_model(), "int4")


def test_the_recorded_form_and_test_loss_reproduce(lstm_copy, corpus_file, tiny_text, capsys):
    """`python -m charrnn writing --form int8 --record` records the form and its test loss; the weights stay byte
    for byte, for_writing then builds the recorded form, and evaluating it gives the recorded loss."""
    weights = (lstm_copy / "model.safetensors").read_bytes()
    settings = torch.get_num_threads(), torch.backends.mkldnn.enabled
    main(["writing", "--checkpoint", str(lstm_copy), "--data", str(corpus_file), "--form", "int8", "--record"])
    # The steps are timed as the app writes (one thread, no oneDNN); the process's settings are left as they were.
    assert (torch.get_num_threads(), torch.backends.mkldnn.enabled) == settings
    out = capsys.readouterr().out
    entry = json.loads((lstm_copy / "config.json").read_text())["final"]["writing"]
    assert entry["form"] == "int8" and set(entry["step_us"]) == set(FORMS)
    assert (lstm_copy / "model.safetensors").read_bytes() == weights
    model = charrnn.load(lstm_copy)
    writer = for_writing(model)
    assert writer.form == "int8"
    _, test_text = split(tiny_text)
    r = charrnn.evaluate(writer, test_text)
    assert r == pytest.approx(entry["test"], abs=1e-9)
    assert f"{r['nats']:.4f} nats/char" in out
    # The same reading of the float32 model differs, by little: the record is the int8 form's own.
    assert 0 < abs(r["nats"] - charrnn.evaluate(model, test_text)["nats"]) < 0.01


def test_recording_needs_a_finished_local_checkpoint(tiny_checkpoints, corpus_file, capsys):
    with pytest.raises(SystemExit, match="no final losses"):
        main(["writing", "--checkpoint", str(tiny_checkpoints["unfinished"]), "--data", str(corpus_file), "--record"])


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_model_records_a_writing_form_close_to_its_float32_loss(name):
    final = charrnn.checkpoint.read_record(ROOT / "checkpoints" / name)["final"]
    assert final["writing"]["form"] in FORMS
    assert abs(final["writing"]["test"]["nats"] - final["test"]["nats"]) < 0.01
    assert final["writing"]["test"]["chars"] == final["test"]["chars"]


@pytest.mark.skipif(_corpus() is None, reason="the corpus is not beside the project (../shared/data/moliere.txt)")
@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_models_writing_loss_reproduces(name):
    model = charrnn.load(ROOT / "checkpoints" / name)
    _, test_text = split(read_text(_corpus()))
    recorded = model.record["final"]["writing"]["test"]["nats"]
    assert charrnn.evaluate(for_writing(model), test_text)["nats"] == pytest.approx(recorded, abs=1e-3)


def test_the_app_writes_in_the_recorded_form_and_scores_with_the_weights():
    """A model whose record names a writing form writes in that form in the Write and Compare views; one that
    names none writes as it is, and scoring reads the float32 weights either way."""
    from ui.compare import Compare
    from ui.score import Score
    from ui.validate import Catalog
    from ui.write import Write

    plain = _trained("lstm", num_layers=2, embed_size=8)
    recorded = copy.deepcopy(plain)
    losses = {split: {"nats": 2.0, "bpc": 2.0 / math.log(2), "chars": 100} for split in ("train", "val", "test")}
    recorded.record = {"final": {**losses, "writing": {"form": "int8"}}}  # made-up losses: the summary shows them
    catalog = Catalog({"plain": plain, "recorded": recorded})
    assert catalog.writer("plain") is plain and catalog.writer("recorded").form == "int8"

    prompt, args = TINY_TEXT[:40], (300, 1.0)
    float32 = "".join(charrnn.generate(plain, prompt, *args, seed=3))
    int8 = "".join(charrnn.generate(for_writing(plain, "int8"), prompt, *args, seed=3))
    assert float32 != int8, "the forms write the same text here: the test could not tell them apart"
    assert list(Write(catalog).generate("recorded", prompt, *args, 0, 1.0, 3))[-1] == int8
    assert list(Write(catalog).generate("plain", prompt, *args, 0, 1.0, 3))[-1] == float32
    assert list(Compare(catalog).compare(prompt, *args, 3))[-1] == {"plain": float32, "recorded": int8}
    text = TINY_TEXT[:300]
    assert Score(catalog).score("recorded", text)[0] == Score(catalog).score("plain", text)[0]  # int8's would differ
