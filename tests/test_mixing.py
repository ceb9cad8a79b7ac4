"""Context mixing per binary decision: the tree, the logistic mixer, the APM, the match model, and the reading."""
import json
import math
import random

import numpy as np
import pytest
import torch

import charrnn
from charrnn import testtime
from charrnn.cli import main
from charrnn.testtime import mixing
from charrnn.testtime.logistic import APM, Mixer, Tree, squash, stretch
from charrnn.testtime.textmodels import Contexts, Match


def test_the_tree_s_decisions_give_back_the_distribution_they_came_from():
    rng = np.random.default_rng(0)
    tree = Tree(rng.integers(0, 1000, 11))
    assert tree.J == 10 and sorted(len(p) for p in tree.path)[0] >= 1
    dist = rng.dirichlet(np.ones(11))
    assert np.exp(tree.log_dist(tree.decisions(dist))) == pytest.approx(dist, rel=1e-9)
    any_decisions = rng.uniform(0.01, 0.99, tree.J)  # whatever each node says, the leaves sum to one
    assert np.exp(tree.log_dist(any_decisions)).sum() == pytest.approx(1.0, abs=1e-12)
    common = Tree(np.array([1000, 10, 10, 10]))
    assert len(common.path[0]) == 1 and len(common.path[1]) > 1  # the common character is decided first


def test_the_mixer_takes_its_logistic_step_by_hand():
    init = np.array([0.5, 0.0])
    mixer = Mixer(init, [2, 3], 1, lr=0.1, lr2=0.2)
    x = np.array([[2.0, 1.0]])
    p = mixer.predict(x, np.array([[1], [2]]), np.array([0]))
    p1 = squash(0.5 * 2.0)  # both first-layer mixers start at init
    assert p[0] == pytest.approx(squash(0.5 * stretch(p1) * 2))
    mixer.update(np.array([1.0]))
    assert mixer.w1[1] == pytest.approx(init + 0.1 * (1 - p1) * x[0])  # set 1 of the first mixer
    assert mixer.w1[2 + 2] == pytest.approx(init + 0.1 * (1 - p1) * x[0])  # set 2 of the second
    assert mixer.w1[0] == pytest.approx(init) and mixer.w1[2] == pytest.approx(init)  # unused sets stay
    assert mixer.w2[0] == pytest.approx([0.5, 0.5, 0.0] + 0.2 * (1 - p[0]) * np.array([stretch(p1), stretch(p1), 1]))


def test_the_apm_maps_a_new_context_near_itself_and_learns_its_own():
    apm = APM(2, rate=0.05)
    p = np.array([0.1, 0.5, 0.9])
    assert apm.predict(p, np.array([0, 0, 0])) == pytest.approx(p, abs=0.01)
    for _ in range(200):  # in context 1, a prediction of 0.5 always turns out 1
        apm.predict(np.array([0.5]), np.array([1]))
        apm.update(np.array([1.0]))
    assert apm.predict(np.array([0.5]), np.array([1]))[0] > 0.95
    assert apm.predict(np.array([0.5]), np.array([0]))[0] == pytest.approx(0.5, abs=0.01)


def test_the_match_model_expects_what_followed_the_longest_earlier_occurrence():
    chars = "abcdefgh "
    text = "abcdefgh abcdefgh"
    ids = np.array([chars.index(c) for c in text])
    ctx = Contexts(ids, chars)
    match = Match(ctx.keys[5], ids, 0)
    for i in range(len(ids) - 1):
        match.expected(i)
        match.add(i)
    assert match.expected(len(ids) - 1) == (chars.index("h"), 7)  # "bcdefg" came before, then "h"; 7 long with "a"


def test_the_contexts_know_the_word_the_line_and_a_speaker_s_name():
    chars = "\n .ABNOTabelnost"
    text = "ANTON.\n\nBon.\n\nANNA."
    ids = np.array([chars.index(c) for c in text])
    ctx = Contexts(ids, chars)
    assert list(ctx.column[:8]) == [0, 1, 2, 3, 4, 5, 6, 0] and ctx.name[14] == 1  # after the blank line
    assert list(ctx.name[15:18]) == [2, 2, 2] and (ctx.name[9], ctx.name[10]) == (2, 0)  # "ANN"; "Bo" is no name
    # The word contexts: "ANTON" after "ANN" of "ANNA" is not the same word; the line so far repeats with "ANTON"
    assert ctx.keys[6, 3] != ctx.keys[6, 17] and ctx.keys[8, 2] == ctx.keys[8, 16]


@pytest.fixture
def ready_lstm(cached_lstm, tiny_text):
    """The tiny LSTM ready for the mixing (its weights alone and its cache), with its texts."""
    model = charrnn.load(cached_lstm)
    train_text, test_text = charrnn.data.split(tiny_text)
    trained_on = testtime.trained_on(train_text, model.record["training"])
    s = mixing.Settings(lr=0.005, lr2=0.005, limit=250.0, adapt="static")
    return mixing._prepare(model, trained_on, s), s, test_text


def test_the_mixing_gives_a_distribution_at_every_character_and_its_loss_is_the_path_s(ready_lstm):
    p, s, text = ready_lstm
    text = text[:400]
    full = mixing.read(p, text, s, full=True)  # (N, V): every node's decision
    assert np.exp(full).sum(1) == pytest.approx(np.ones(len(text) - 1), abs=1e-9)
    ids = p.model.encode(text)[1:]
    assert mixing.read(p, text, s) == pytest.approx(-full[np.arange(len(ids)), ids], abs=1e-9)


def test_the_mixing_reads_each_character_from_the_text_before_it_only(ready_lstm):
    p, s, text = ready_lstm
    text = text[:300]
    changed = text[:200] + ("a" if text[200] != "a" else "b") + text[201:]
    a, b = mixing.read(p, text, s), mixing.read(p, changed, s)
    assert np.array_equal(a[:199], b[:199]) and a[199] != b[199]  # loss 199 is text[200]'s


def test_the_text_models_learn_a_passage_read_before_where_the_network_cannot(ready_lstm):
    """A passage of random letters, read three times: the network alone pays for it every time, the mixing (counts,
    match) learns it the first time, and the mixer learns to trust them: the third reading costs a fraction."""
    p, s, _ = ready_lstm
    rng = random.Random(0)
    letters = [c for c in p.model.vocab.chars if c.isalpha()]
    passage = "".join(rng.choice(letters) for _ in range(150))
    text = ("\n" + passage) * 3
    losses = mixing.read(p, text, s)
    alone = charrnn.char_losses(p.model, text).numpy()
    third = slice(2 * (len(passage) + 1), None)
    assert alone[third].mean() > 5.0 and losses[third].mean() < 1.0


def test_the_cli_tunes_on_the_validation_slice_and_the_recorded_reading_replays(cached_lstm, tiny_text, tmp_path,
                                                                              monkeypatch):
    import shutil

    path = shutil.copytree(cached_lstm, tmp_path / "lstm")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(tiny_text, encoding="utf-8")
    with pytest.raises(SystemExit, match="lr must be a number in"):
        main(["mixing", "--checkpoint", str(path), "--data", str(corpus), "--adapt", "static", "--lr", "2",
              "--lr2", "0.01", "--limit", "60"])
    train_text, test_text = charrnn.data.split(tiny_text)
    record = json.loads((path / "config.json").read_text())
    val = testtime.tuning_text(train_text, record["training"])[0]
    seen = []
    real = mixing.read
    monkeypatch.setattr(mixing, "read", lambda p, text, s, full=False: seen.append(text) or real(p, text, s, full))
    main(["mixing", "--checkpoint", str(path), "--data", str(corpus), "--adapt", "static", "--record"])
    assert set(seen[:-1]) == {val} and seen[-1] == test_text  # tuned on the validation slice; the test split once, last
    r = json.loads((path / "config.json").read_text())["final"]["mixing"]
    tuning = {tuple(map(float, k.split(","))): v for k, v in r["tuning"].items()}
    assert len(tuning) == len(seen) - 1 and mixing.METHOD.chosen(r) == min(tuning, key=tuning.get)
    assert "validation slice" in r["tuned_on"]
    model = charrnn.load(path)
    settings = mixing.METHOD.settings_of(r)
    prepared = mixing.METHOD.ready(model, testtime.trained_on(train_text, model.record["training"]), settings)
    replayed = mixing.METHOD.char_losses(prepared, test_text, settings)
    assert charrnn.scoring.average(replayed)["nats"] == pytest.approx(r["test"]["nats"], abs=1e-6)
    assert r["test"]["nats"] < model.record["final"]["cache"]["test"]["nats"]  # better than the cache alone
