"""The combination: the network, its cache and character counts, mixed by weights that learn as they read."""
import json
import math
import random

import pytest
import torch

import charrnn
from charrnn import testtime
from charrnn.cli import main
from charrnn.data import Vocab
from charrnn.testtime import combined
from charrnn.testtime.combined import Counts, count_probs, mix_losses


def test_the_counts_interpolate_witten_bell_by_hand():
    vocab = Vocab("abc")
    ids = vocab.encode("abab" + "a")  # after "abab", what of a final "a"?
    counts = Counts(2, 3)
    for i in range(4):
        counts.add(ids, i)
    p, longest = counts.prob(ids, 4)
    # order 0: a 2, b 2 of 4, add-one: (2 + 1) / (4 + 3); order 1, context "b": a once of 1, T = 1;
    # order 2, context "ab": a once of 1, T = 1
    p0 = 3 / 7
    p1 = (1 + 1 * p0) / (1 + 1)
    p2 = (1 + 1 * p1) / (1 + 1)
    assert p == pytest.approx(p2) and longest == 2


def test_the_counts_give_a_distribution_at_every_step():
    rng = random.Random(0)
    vocab = Vocab("abcd")
    text = "".join(rng.choice("aab cd"[:5]) for _ in range(300)).replace(" ", "d")
    counts = Counts(3, 4)
    ids = vocab.encode(text)
    for i in range(len(ids)):
        counts.add(ids, i)
    for cut in (10, 100, 299):
        total = sum(counts.prob(ids[:cut] + [c], cut)[0] for c in range(4))
        assert total == pytest.approx(1.0, abs=1e-12)


def test_count_probs_learn_the_text_as_it_is_read_and_no_further():
    vocab = Vocab("xyz")
    probs, longest = count_probs("", "xyzxyzxyzxyzxyz", vocab, order=2)
    assert probs[-1] > 0.8 and longest[-1] == 2  # a repeated pattern becomes near certain
    # Causal: a character is counted only once it has been predicted, so random text stays unpredictable
    rng = random.Random(0)
    noise = "".join(rng.choice("xyz") for _ in range(400))
    assert -count_probs("", noise, vocab, order=3)[0].log().mean().item() > math.log(3) - 0.02


def test_the_word_contexts_are_the_word_so_far_and_the_word_before():
    vocab = Vocab(" .abcdeilmnorstu")
    ids = vocab.encode("le monde. tout")
    counts = combined.WordCounts(vocab)
    ctx = lambda i: [tuple(vocab.decode([c]) if isinstance(c, int) else c for c in x) for x in counts.contexts(ids, i)]
    assert ctx(5) == [("w", "m", "o"), ("l", "e", "w", "m", "o")]  # predicting "n" of "monde", after "le"
    assert ctx(10) == [("w",), ("m", "o", "n", "d", "e", "w")]  # between words: after "monde. "
    assert ctx(1) == [("w", "l"), ("w", "l")]  # the first word has none before it


def test_word_counts_learn_a_repeated_phrase_however_long_its_words():
    """A word seen once is spelled out from its first letters on: the character counts of order 2 cannot tell
    "constitutionnellement" from "constitutionnalité" after "co", the word counts know the word after "tres"."""
    vocab = Vocab(" abcdeilmnorstu")
    text = "tres constitutionnellement " * 3 + "bien constitutionnalite " * 3 + "tres constitutionnellement"
    words, _ = count_probs("", text, vocab, counts=combined.WordCounts(vocab))
    chars, _ = count_probs("", text, vocab, order=2)
    last = slice(-len("ellement"), None)  # the ending, where "tres" decides
    assert words[last].log().sum() > chars[last].log().sum() and words[-1] > 0.9
    rng = random.Random(0)
    noise = "".join(rng.choice("ab ") for _ in range(400))
    assert -count_probs("", noise, Vocab("ab "), counts=combined.WordCounts(Vocab("ab ")))[0].log().mean() > math.log(3) - 0.05


def test_the_mixer_is_the_mean_at_rate_zero_and_takes_its_gradient_step_by_hand():
    q = torch.tensor([[0.5, 0.1], [0.2, 0.6], [0.3, 0.3]], dtype=torch.float64)
    select = torch.tensor([0, 0, 1])
    assert mix_losses(q, select, 0.0).tolist() == pytest.approx([-math.log(0.3), -math.log(0.4), -math.log(0.3)])
    lr = 0.5
    losses = mix_losses(q, select, lr)
    # step 1 with w = (1/2, 1/2): p = 0.3, d/da_i = w_i - w_i q_i / p
    a = [0 - lr * (0.5 - 0.5 * 0.5 / 0.3), 0 - lr * (0.5 - 0.5 * 0.1 / 0.3)]
    w = [math.exp(x) / sum(math.exp(y) for y in a) for x in a]
    assert losses[1].item() == pytest.approx(-math.log(w[0] * 0.2 + w[1] * 0.6))
    assert losses[2].item() == pytest.approx(-math.log(0.3))  # another context: its own, untouched weights


def test_the_cli_tunes_the_mixer_on_the_validation_slice_and_reads_the_test_split_once(lstm_copy, corpus_file,
                                                                                       tiny_text, capsys, monkeypatch):
    with pytest.raises(SystemExit, match="recorded cache settings"):
        main(["combined", "--checkpoint", str(lstm_copy), "--data", str(corpus_file), "--adapt", "static"])
    main(["cache", "--checkpoint", str(lstm_copy), "--data", str(corpus_file), "--theta", "1", "--lam", "0.2",
          "--window", "300", "--record"])
    with pytest.raises(SystemExit, match="recorded krause settings"):
        main(["combined", "--checkpoint", str(lstm_copy), "--data", str(corpus_file)])
    main(["krause", "--checkpoint", str(lstm_copy), "--data", str(corpus_file), "--lr", "0.0001", "--lam", "0.002",
          "--grad-chars", "500", "--record"])
    train_text, test_text = charrnn.data.split(tiny_text)
    record = json.loads((lstm_copy / "config.json").read_text())
    val = testtime.tuning_text(train_text, record["training"])[0]
    seen = []
    real = combined.predictors
    monkeypatch.setattr(combined, "predictors", lambda p, text, s: seen.append(text) or real(p, text, s))
    capsys.readouterr()
    main(["combined", "--checkpoint", str(lstm_copy), "--data", str(corpus_file), "--record"])
    assert seen == [val, test_text]  # the mixer's rate chosen on the validation slice; the test split read once, last
    c = json.loads((lstm_copy / "config.json").read_text())["final"]["combined"]
    tuning = {tuple(map(float, k.split(","))): v for k, v in c["tuning"].items()}
    assert set(tuning) == {(lr, words) for lr in combined.MIXER_RATES for words in (0, 1)}
    assert (c["mixer_lr"], c["words"]) == min(tuning, key=tuning.get)
    model = charrnn.load(lstm_copy)
    trained_on = testtime.trained_on(train_text, record["training"])
    settings = combined.METHOD.settings_of(c)
    q, select = combined.predictors(combined._prepare(model, trained_on, settings), test_text, settings)
    assert q.shape[1] == 3 + c["words"]
    assert mix_losses(q, select, c["mixer_lr"]).mean().item() == pytest.approx(c["test"]["nats"], abs=1e-5)


def test_the_app_s_bars_draw_a_model_with_every_registered_reading():
    """Each method of the registry is a series of the Learning view's bars: one colour each, the legend wrapped."""
    import re

    from ui import charts
    from ui.learned import WEIGHTS_ALONE

    series = [WEIGHTS_ALONE, *(m.label for m in testtime.METHODS.values())]
    svg = charts.bars([("m", {name: 1.0 + k / 10 for k, name in enumerate(series)})], series, [("x", 2.0)])
    colours = re.findall(r"<rect x='\d+' y='\d+' width='10' height='10' fill='(#\w+)'/>", svg)
    assert len(colours) == len(set(colours)) == len(series)
    assert len(re.findall(r"<title>m, ", svg)) == len(series)


def test_over_a_mixture_each_member_is_a_predictor_read_with_its_best_recorded_update(tiny_checkpoints, corpus_file,
                                                                                      tiny_text, tmp_path, monkeypatch):
    """--adapt best: each member of a mixture reads with the recorded update (krause or dynamic) that did best on
    its tuning text, as a predictor of its own beside the mixture's cache and the counts."""
    import shutil

    root = tmp_path / "checkpoints"
    for name in ("a", "b"):
        shutil.copytree(tiny_checkpoints["lstm"], root / name)
    main(["krause", "--checkpoint", str(root / "a"), "--data", str(corpus_file), "--lr", "0.0001", "--lam", "0.002",
          "--grad-chars", "500", "--record"])
    main(["dynamic", "--checkpoint", str(root / "a"), "--data", str(corpus_file), "--lr", "1e-9", "--record"])
    main(["dynamic", "--checkpoint", str(root / "b"), "--data", str(corpus_file), "--lr", "0.01", "--record"])
    a = charrnn.load(root / "a").record["final"]
    expected = "krause" if min(a["krause"]["tuning"].values()) < min(a["dynamic"]["tuning"].values()) else "dynamic"
    assert combined.best_update(charrnn.load(root / "a")) == expected
    assert combined.best_update(charrnn.load(root / "b")) == "dynamic"
    assert combined.best_update(charrnn.load(tiny_checkpoints["lstm"])) == "static"  # records no update
    main(["mix", str(root / "a"), str(root / "b"), "--out", str(root / "mixture"), "--data", str(corpus_file)])
    main(["cache", "--checkpoint", str(root / "mixture"), "--data", str(corpus_file), "--theta", "1", "--lam", "0.2",
          "--window", "300", "--record"])
    read = []
    real = combined.Network.losses
    monkeypatch.setattr(combined.Network, "losses", lambda self, text: read.append(self.adapt) or real(self, text))
    main(["combined", "--checkpoint", str(root / "mixture"), "--data", str(corpus_file), "--adapt", "best",
          "--record"])
    assert read == [expected, "dynamic"] * 2  # the tuning text, then the test split
    c = charrnn.load(root / "mixture").record["final"]["combined"]
    assert c["adapt"] == "best" and "each member of a mixture" in c["about"]
    model = charrnn.load(root / "mixture")
    train_text, test_text = charrnn.data.split(tiny_text)
    settings = combined.METHOD.settings_of(c)
    prepared = combined._prepare(model, testtime.trained_on(train_text, model.record["training"]), settings)
    q, select = combined.predictors(prepared, test_text, settings)
    assert q.shape[1] == 2 + 2 + c["words"]  # the two members, the cache, the counts (and the word counts)
    assert mix_losses(q, select, c["mixer_lr"]).mean().item() == pytest.approx(c["test"]["nats"], abs=1e-5)
