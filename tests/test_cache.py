"""The continuous cache: a fixed model mixed with what followed its most similar recent states."""
import json
import math
import random

import pytest
import torch

import charrnn
import charrnn.testtime.cache
from charrnn.cli import main
from charrnn.testtime.cache import CachedModel, tune
from charrnn.scoring import char_losses, costly_lines, evaluate
from tests.helpers import TINY_TEXT, assert_shown, tiny_model


def literal_cache_losses(model, text: str, theta: float, lam: float, window: int) -> torch.Tensor:
    """Grave et al.'s equations, one step at a time, on the model's top-layer outputs h(t):
    p_cache(c) = sum_{i in [t - window, t), x(i+1) = c} exp(theta h(t).h(i)) / sum_{i in the same range} exp(...),
    p = (1 - lam) p_model + lam p_cache; at the first step, where nothing has been read, p = p_model."""
    ids = model.encode(text)
    with torch.no_grad():
        h, _ = model.features(torch.tensor([ids[:-1]]))
        p_model = torch.softmax(model.head(h[0]).double(), -1)  # (N - 1, V)
    h = h[0].double()
    losses = []
    for t in range(len(ids) - 1):
        p = p_model[t]
        past = range(max(0, t - window), t)
        if past:
            w = torch.stack([torch.exp(theta * (h[t] @ h[i])) for i in past])
            p_cache = torch.zeros_like(p)
            for wi, i in zip(w / w.sum(), past):
                p_cache[ids[i + 1]] += wi
            p = (1 - lam) * p + lam * p_cache
        losses.append(-torch.log(p[ids[t + 1]]))
    return torch.stack(losses)


@pytest.mark.parametrize("cell, kw, query_chunk", [("gru", {"embed_size": 8, "num_layers": 2}, 1024),
                                                   ("gru", {"embed_size": 8}, 16),  # windows span chunks
                                                   ("paper", {}, 1024), ("lstm", {"embed_size": 8}, 1024)])
def test_the_cache_computes_its_equations_in_one_call_or_many(cell, kw, query_chunk, monkeypatch):
    monkeypatch.setattr(charrnn.testtime.cache, "QUERY_CHUNK", query_chunk)
    model = tiny_model(cell, **kw)
    text = TINY_TEXT[:400]
    expected = literal_cache_losses(model, text, theta=0.7, lam=0.3, window=45)
    cached = CachedModel(model, theta=0.7, lam=0.3, window=45)
    assert torch.allclose(char_losses(cached, text, chunk=len(text)).double(), expected, atol=1e-5)  # in one call
    # In pieces, the state carries the cache (and the last output, whose follower opens the next piece).
    assert evaluate(cached, text, chunk=7)["nats"] == pytest.approx(expected.mean().item(), abs=1e-5)
    assert evaluate(cached, text, chunk=1)["nats"] == pytest.approx(expected.mean().item(), abs=1e-5)


def test_evaluate_reads_a_cached_model_in_one_stream_whatever_streams_it_is_given():
    model = tiny_model("lstm", embed_size=8)
    cached = CachedModel(model, theta=0.7, lam=0.3, window=2000)
    one_pass = char_losses(cached, TINY_TEXT).mean().item()
    assert evaluate(cached, TINY_TEXT, streams=4, burn_in=16)["nats"] == pytest.approx(one_pass, abs=1e-5)


def test_lam_zero_is_the_model_alone():
    model = tiny_model("gru", embed_size=8)
    assert torch.allclose(char_losses(CachedModel(model, 0.5, 0.0), TINY_TEXT), char_losses(model, TINY_TEXT), atol=1e-6)


def test_it_picks_up_a_name_the_model_has_never_seen():
    # An untrained model pays the same for a made-up name every time; with the cache, once it has read the
    # name, it pays less than half. (costly_lines counts from the second occurrence: the text opens with the first.)
    rng = random.Random(0)
    words = "la le est que vous mais bien donc".split()
    text = "".join(f"ZOPHIRAQUE.\n\n{' '.join(rng.choice(words) for _ in range(8))}.\n\n" for _ in range(12))
    model = tiny_model("gru", text=text, embed_size=8, hidden_size=32)
    plain = {e["line"]: e for e in costly_lines(text, char_losses(model, text), 50)}["ZOPHIRAQUE."]
    cached = {e["line"]: e for e in costly_lines(text, char_losses(CachedModel(model, 30.0, 0.5), text), 50)}
    assert plain["count"] == 11 and plain["last"] == pytest.approx(plain["first"], rel=0.01)  # it does not learn it
    assert cached["ZOPHIRAQUE."]["last"] < 0.5 * plain["last"]


def test_the_cache_remembers_window_characters_and_generates_reproducibly():
    model = tiny_model("gru", embed_size=8)
    cached = CachedModel(model, 0.5, 0.3, window=25)
    _, state = cached(torch.tensor([model.encode(TINY_TEXT[:100])]))
    model_state, keys, followers, last = state
    assert keys.shape == (1, 25, 16) and followers.tolist() == [model.encode(TINY_TEXT[75:100])]
    one = "".join(charrnn.generate(cached, "ARGAN.\n", 80, temperature=0.8, seed=3))
    assert len(one) == 80 and one == "".join(charrnn.generate(cached, "ARGAN.\n", 80, temperature=0.8, seed=3))


def test_tune_picks_the_pair_with_the_lowest_loss_and_its_figures_are_the_cached_model_s():
    model = tiny_model("lstm", embed_size=8)
    text = TINY_TEXT[:500]
    best, losses = tune(model, text, thetas=(0.1, 1.0), lambdas=(0.2, 0.5), window=60)
    assert set(losses) == {(0.0, 0.0), (0.1, 0.2), (0.1, 0.5), (1.0, 0.2), (1.0, 0.5)}
    assert losses[best] == min(losses.values())
    assert losses[0.0, 0.0] == pytest.approx(char_losses(model, text).mean().item(), abs=1e-5)
    assert losses[1.0, 0.5] == pytest.approx(char_losses(CachedModel(model, 1.0, 0.5, 60), text).mean().item(), abs=1e-5)


@pytest.mark.parametrize("theta, lam, window, message", [(-1.0, 0.2, 10, "theta"), (math.inf, 0.2, 10, "theta"),
                                                         (0.1, 1.0, 10, "lam"), (0.1, -0.1, 10, "lam"),
                                                         (0.1, 0.2, 0, "window")])
def test_bad_settings_say_what_is_wrong(theta, lam, window, message):
    with pytest.raises(ValueError, match=message):
        CachedModel(tiny_model(), theta, lam, window)


def test_cli_records_a_reproducible_result_in_the_checkpoint(lstm_copy, corpus_file, tiny_text, capsys):
    ckpt, corpus = lstm_copy, corpus_file
    before = json.loads((ckpt / "config.json").read_text())["final"]
    main(["cache", "--checkpoint", str(ckpt), "--data", str(corpus), "--record", "--lines", "2", "--window", "300"])
    printed = capsys.readouterr().out
    assert "choosing theta and lam on the validation slice (500 characters" in printed

    config = json.loads((ckpt / "config.json").read_text())
    c = config["final"]["cache"]
    tuning = {tuple(map(float, k.split(","))): v for k, v in c["tuning"].items()}
    assert (c["theta"], c["lam"]) == min(tuning, key=tuning.get) and c["window"] == 300
    assert {k: v for k, v in config["final"].items() if k != "cache"} == before  # the other figures kept
    model = charrnn.load(ckpt)  # still loads, and the record reproduces
    _, test = charrnn.data.split(tiny_text)
    losses = char_losses(CachedModel.from_record(model), test)
    assert losses.mean().item() == pytest.approx(c["test"]["nats"], abs=1e-4)
    assert "the 2 costliest lines" in printed
    assert all(repr(e["line"][:50]) in printed for e in costly_lines(test, losses, 2))
    assert_shown(ckpt, "continuous cache", c["test"]["nats"])


def test_a_checkpoint_without_a_cache_record_says_how_to_make_one(tiny_checkpoints):
    with pytest.raises(ValueError, match="python -m charrnn cache"):
        CachedModel.from_record(charrnn.load(tiny_checkpoints["lstm"]))


def test_cli_says_what_is_wrong(tiny_checkpoints, corpus_file):
    with pytest.raises(SystemExit, match="give both theta and lam"):
        main(["cache", "--checkpoint", str(tiny_checkpoints["lstm"]), "--data", str(corpus_file), "--theta", "0.1"])
    with pytest.raises(SystemExit, match="no final losses"):
        main(["cache", "--checkpoint", str(tiny_checkpoints["unfinished"]), "--data", str(corpus_file), "--theta", "0.1",
              "--lam", "0.2", "--record"])
