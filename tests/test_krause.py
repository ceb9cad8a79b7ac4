"""Dynamic evaluation as Krause et al. (2018): RMS-normalised steps with a decay toward the trained weights."""
import json
import math
import random

import pytest
import torch
import torch.nn.functional as F

import charrnn
from charrnn import testtime
from charrnn.cli import main
from charrnn.model import detach_state
from charrnn.scoring import char_losses
from charrnn.testtime import krause
from charrnn.testtime.krause import RMSDecay, gradient_rms, krause_char_losses
from tests.helpers import TINY_TEXT, assert_shown, tiny_model


def _rms_like(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(p.shape, generator=g) * 0.5 + 1e-3 for p in model.parameters()]


def test_the_update_is_krause_s_equation_weight_by_weight():
    """Two steps (the second from weights that have left theta_0), against the equation in plain floats."""
    model = tiny_model("gru", hidden_size=3, embed_size=2)
    params = list(model.parameters())
    rms = _rms_like(model)
    rms[0].view(-1)[0] = 40.0  # a weight whose decay lam * rms / mean(rms) exceeds 1: clipped at 1
    lr, lam, eps = 0.05, 0.3, 1e-4
    opt = RMSDecay(params, rms, lr, lam, eps)
    theta0 = [p.detach().flatten().tolist() for p in params]
    flat_rms = [r.flatten().tolist() for r in rms]
    mean = sum(sum(r) for r in flat_rms) / sum(len(r) for r in flat_rms)
    ids = torch.tensor([model.encode(TINY_TEXT[:21])])
    for _ in range(2):
        before = [p.detach().flatten().tolist() for p in params]
        logits, _ = model(ids[:, :-1])
        opt.zero_grad()
        F.cross_entropy(logits[0], ids[0, 1:]).backward()
        grads = [p.grad.flatten().tolist() for p in params]
        opt.step()
        for p, th, g, r, th0 in zip(params, before, grads, flat_rms, theta0):
            want = [t - lr * gi / (ri + eps) + min(1.0, lam * ri / mean) * (t0 - t)
                    for t, gi, ri, t0 in zip(th, g, r, th0)]
            assert p.detach().flatten().tolist() == pytest.approx(want, rel=1e-5, abs=1e-6)
    assert params[0].view(-1)[0].item() != pytest.approx(theta0[0][0])  # it did move


def test_gradient_rms_is_the_rms_of_each_segment_s_gradient_read_in_one_stream():
    model = tiny_model("lstm", hidden_size=4, embed_size=3).eval()
    text, T = TINY_TEXT[:103], 25
    ids = torch.tensor([model.encode(text)])
    sums, state, n = [torch.zeros_like(p) for p in model.parameters()], None, 0
    for t in range(0, len(text) - 1, T):  # a literal reading: score a segment, its gradient, carry the state
        x, y = ids[:, t : min(t + T, len(text) - 1)], ids[:, t + 1 : min(t + T, len(text) - 1) + 1]
        logits, state = model(x, state)
        grads = torch.autograd.grad(F.cross_entropy(logits[0], y[0]), list(model.parameters()))
        sums = [s + g * g for s, g in zip(sums, grads)]
        state, n = detach_state(state), n + 1
    want = [(s / n).sqrt() for s in sums]
    got = gradient_rms(model, text, T)
    assert n == 5 and all(torch.allclose(g, w, atol=1e-7) for g, w in zip(got, want))


def test_lr_zero_is_the_static_reading_and_the_model_is_left_unchanged():
    model = tiny_model("gru", embed_size=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rms = gradient_rms(model, TINY_TEXT[:500])
    static = char_losses(model, TINY_TEXT)
    assert torch.allclose(krause_char_losses(model, TINY_TEXT, rms, 0.0, 0.5), static, atol=1e-5)
    adapted = krause_char_losses(model, TINY_TEXT, rms, 0.02, 0.0).mean().item()
    assert adapted < static.mean().item() - 0.5  # the untrained model learns the repeated dialogue as it reads
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_a_strong_decay_keeps_the_model_where_it_was_trained():
    """lam large enough that every weight is pulled all the way back each step: the reading barely adapts."""
    model = tiny_model("gru", embed_size=8)
    rms = [torch.ones_like(p) for p in model.parameters()]  # plain SGD steps; lam * rms / mean = lam everywhere
    static = char_losses(model, TINY_TEXT).mean().item()
    free = krause_char_losses(model, TINY_TEXT, rms, 0.5, 0.0).mean().item()
    held = krause_char_losses(model, TINY_TEXT, rms, 0.5, 1.0).mean().item()
    assert free < static - 0.5 and abs(held - static) < (static - free) / 4


def test_each_character_is_scored_before_the_model_learns_from_it():
    model = tiny_model("paper", hidden_size=32)
    rng = random.Random(0)
    text = "".join(rng.choice(model.vocab.chars) for _ in range(3000))
    rms = gradient_rms(model, text[:500], seq_len=1)
    losses = krause_char_losses(model, text, rms, 0.05, 0.0, seq_len=1)
    assert losses.mean().item() > math.log(len(model.vocab.chars)) - 0.05


@pytest.mark.parametrize("lr, lam, eps, message", [(-1.0, 0.0, 1e-4, "lr"), (0.1, float("nan"), 1e-4, "lam"),
                                                   (0.1, 0.0, 0.0, "eps")])
def test_bad_settings_say_what_is_wrong(lr, lam, eps, message):
    model = tiny_model()
    with pytest.raises(ValueError, match=message):
        krause_char_losses(model, TINY_TEXT, _rms_like(model), lr, lam, eps=eps)


def test_statistics_of_another_model_are_refused():
    with pytest.raises(ValueError, match="do not match the model's weights"):
        krause_char_losses(tiny_model("gru"), TINY_TEXT, _rms_like(tiny_model("paper")), 0.1, 0.0)


def test_the_cli_measures_on_training_text_tunes_on_the_validation_slice_and_never_on_the_test_split(
        lstm_copy, corpus_file, tiny_text, capsys, monkeypatch):
    train_text, test_text = charrnn.data.split(tiny_text)
    record = json.loads((lstm_copy / "config.json").read_text())
    val = testtime.tuning_text(train_text, record["training"])[0]
    seen = []
    real = krause.adaptive_char_losses
    monkeypatch.setattr(krause, "adaptive_char_losses", lambda m, text, *a: seen.append(text) or real(m, text, *a))
    main(["krause", "--checkpoint", str(lstm_copy), "--data", str(corpus_file), "--grad-chars", "2000", "--record"])
    printed = capsys.readouterr().out
    assert "choosing lr and lam on the validation slice (500 characters" in printed
    grid = 1 + len(krause.ETAS) + len(krause.LAMBDAS) - 1  # static, each lr at lam 0, each other lam at the best lr
    trained_on = testtime.trained_on(train_text, record["training"])
    assert seen == [trained_on[-2000:]] + [val] * grid + [test_text]  # the test split read once, last

    config = json.loads((lstm_copy / "config.json").read_text())
    k = config["final"]["krause"]
    tuning = {tuple(map(float, key.split(","))): v for key, v in k["tuning"].items()}
    assert len(tuning) == grid and (k["lr"], k["lam"]) == min(tuning, key=tuning.get)
    best_lr = min(krause.ETAS, key=lambda lr: tuning[lr, 0.0])
    assert {(best_lr, lam) for lam in krause.LAMBDAS} <= set(tuning)  # lam searched at the best lr
    assert {key: v for key, v in config["final"].items() if key != "krause"} == record["final"]
    model = charrnn.load(lstm_copy)
    rms = gradient_rms(model, trained_on[-2000:])
    again = krause_char_losses(model, test_text, rms, k["lr"], k["lam"]).double().mean().item()
    assert again == pytest.approx(k["test"]["nats"], abs=1e-4)
    assert_shown(lstm_copy, "dynamic evaluation (Krause)", k["test"]["nats"])


def test_the_cli_wants_both_settings_or_neither(lstm_copy, corpus_file):
    with pytest.raises(SystemExit, match="give both lr and lam"):
        main(["krause", "--checkpoint", str(lstm_copy), "--data", str(corpus_file), "--lr", "0.001"])


def test_bench_testtime_prints_the_cost_of_each_recorded_reading_beside_its_loss(lstm_copy, corpus_file, capsys):
    main(["krause", "--checkpoint", str(lstm_copy), "--data", str(corpus_file), "--lr", "0.0001", "--lam", "0.002",
          "--grad-chars", "500", "--record"])
    main(["dynamic", "--checkpoint", str(lstm_copy), "--data", str(corpus_file), "--lr", "0.01", "--record"])
    capsys.readouterr()
    main(["bench", "testtime", "--checkpoint", str(lstm_copy), "--data", str(corpus_file), "--chars", "300"])
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line]
    final = charrnn.load(lstm_copy).record["final"]
    assert [r[0] for r in rows[:2]] + [rows[3][0]] == ["| reading", "| weights alone", "| dynamic evaluation"]
    assert rows[2][0].startswith("| dynamic evaluation (Krause) (and ") and rows[2][0].endswith(" s once, on training text)")
    assert rows[1][3] == f"{final['test']['nats']:.4f} |" and rows[2][3] == f"{final['krause']['test']['nats']:.4f} |"
    assert rows[3][3] == f"{final['dynamic']['test']['nats']:.4f} |" and float(rows[3][1].replace(",", "")) > 0
