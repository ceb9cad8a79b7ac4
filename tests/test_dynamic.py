"""The paper's dynamic model: evaluation that keeps training on the text it scores, one pass, causal."""
import copy
import json
import math
import random

import pytest
import torch
import torch.nn.functional as F

import charrnn
from charrnn.cli import main
from charrnn.model import detach_state
from charrnn.testtime.dynamic import dynamic_char_losses, evaluate_dynamic, tune
from charrnn.testtime import tuning_text
from charrnn.scoring import char_losses, costly_lines
from tests.helpers import TINY_TEXT, assert_shown, tiny_model


def test_learning_rate_zero_is_the_static_one_pass_loss():
    model = tiny_model("gru", embed_size=8)
    static = char_losses(model, TINY_TEXT).mean().item()
    assert evaluate_dynamic(model, TINY_TEXT, lr=0.0, seq_len=37)["nats"] == pytest.approx(static, abs=1e-5)
    each = dynamic_char_losses(model, TINY_TEXT, lr=0.0, seq_len=37)
    assert torch.allclose(each, char_losses(model, TINY_TEXT), atol=1e-5)  # character by character


@pytest.mark.parametrize("cell, kw", [("paper", {}), ("lstm", {"embed_size": 8, "dropout": 0.5})])
def test_each_update_is_one_plain_sgd_step_on_the_segment_s_mean_loss(cell, kw):
    """The reference, by hand: score a segment from the carried state, then p <- p - lr * d(mean loss)/dp for every
    weight (no momentum, no clipping, no dropout), and read on; the last segment is shorter."""
    model = tiny_model(cell, **kw)
    text, lr, seq_len = TINY_TEXT[:131], 0.5, 30  # segments of 30, 30, 30, 30 and 10 characters
    ref = copy.deepcopy(model).eval()
    ids = torch.tensor([model.encode(text)])  # (1, N)
    n = ids.shape[1] - 1
    expected, state = [], None
    for t in range(0, n, seq_len):
        x, y = ids[:, t : min(t + seq_len, n)], ids[:, t + 1 : min(t + seq_len, n) + 1]  # (1, T)
        logits, state = ref(x, state)
        losses = F.cross_entropy(logits[0], y[0], reduction="none")  # (T,), scored before the step
        grads = torch.autograd.grad(losses.mean(), list(ref.parameters()))
        with torch.no_grad():
            for p, g in zip(ref.parameters(), grads):
                p -= lr * g
        expected.append(losses.detach())
        state = detach_state(state)
    expected = torch.cat(expected)
    got = dynamic_char_losses(model.train(), text, lr, seq_len)
    assert torch.allclose(got, expected, atol=1e-5)
    # The steps matter: the segments after the first are read by a model that has moved.
    static = char_losses(model, text)
    assert torch.allclose(got[:seq_len], static[:seq_len], atol=1e-5)
    assert (got[seq_len:] - static[seq_len:]).abs().max() > 0.1


def test_it_adapts_to_a_repetitive_text_and_leaves_the_model_unchanged():
    model = tiny_model("gru", embed_size=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    static = evaluate_dynamic(model, TINY_TEXT, lr=0.0)["nats"]
    dynamic = evaluate_dynamic(model, TINY_TEXT, lr=0.5)["nats"]
    assert dynamic < static - 0.5  # the untrained model learns the repeated dialogue while reading it
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # a copy adapted


def test_each_character_is_scored_before_the_model_learns_from_it():
    # Uniformly random characters cannot be predicted from the ones before them: a causal reader cannot
    # beat log(V) by more than the sample's chance fluctuation. A reader that stepped on a segment before
    # scoring it would memorise it at this learning rate (one character per segment) and score far below.
    model = tiny_model("paper", hidden_size=32)
    V = len(model.vocab.chars)
    rng = random.Random(0)
    text = "".join(rng.choice(model.vocab.chars) for _ in range(3000))
    assert evaluate_dynamic(model, text, lr=1.0, seq_len=1)["nats"] > math.log(V) - 0.05


def test_tune_picks_the_rate_with_the_lowest_loss_and_reports_every_rate():
    model = tiny_model("lstm", embed_size=8)
    best, losses = tune(model, TINY_TEXT[:400], rates=(0.01, 0.3))
    assert set(losses) == {0.0, 0.01, 0.3} and losses[best] == min(losses.values())


def test_the_rate_is_tuned_on_the_run_s_own_validation_slice_or_else_the_end_of_the_training_split():
    train_text = "".join(chr(0x41 + i % 26) for i in range(120_000))
    text, words = tuning_text(train_text, {"val_chars": 1_000, "max_chars": 60_000})
    assert text == train_text[59_000:60_000] and words.startswith("the validation slice (1,000 characters")
    text, words = tuning_text(train_text, {"val_chars": 0, "max_chars": 0})
    assert text == train_text[-50_000:] and words.endswith("the model trained on this text)")
    text, words = tuning_text(train_text, {"max_chars": 50_000})  # the seed recipe: the split's start only
    assert text == train_text[-50_000:] and words.endswith("first 50,000 characters only, never on this text)")


@pytest.mark.parametrize("lr, seq_len, message", [(-0.1, 50, "learning rate"), (float("nan"), 50, "learning rate"),
                                                  (0.1, 0, "seq_len")])
def test_bad_arguments_say_what_is_wrong(lr, seq_len, message):
    with pytest.raises(ValueError, match=message):
        evaluate_dynamic(tiny_model(), TINY_TEXT, lr, seq_len)


def test_cli_records_a_reproducible_result_in_the_checkpoint(lstm_copy, corpus_file, tiny_text, capsys):
    ckpt, corpus = lstm_copy, corpus_file
    static_before = json.loads((ckpt / "config.json").read_text())["final"]
    main(["dynamic", "--checkpoint", str(ckpt), "--data", str(corpus), "--record", "--lines", "2"])  # lr tuned on the validation slice
    printed = capsys.readouterr().out
    assert "choosing lr on the validation slice (500 characters" in printed

    config = json.loads((ckpt / "config.json").read_text())
    d = config["final"]["dynamic"]
    assert d["lr"] in (0.005, 0.01, 0.02, 0.04, 0.08) and d["seq_len"] == 50 and "validation slice" in d["tuned_on"]
    assert {k: v for k, v in config["final"].items() if k != "dynamic"} == static_before  # static figures kept
    model = charrnn.load(ckpt)  # still loads, and the record reproduces
    _, test = charrnn.data.split(tiny_text)
    assert evaluate_dynamic(model, test, d["lr"], d["seq_len"])["nats"] == pytest.approx(d["test"]["nats"], abs=1e-4)
    top = costly_lines(test, dynamic_char_losses(model, test, d["lr"], d["seq_len"]), 2)
    assert "the 2 costliest lines" in printed and all(f"{e['count']:>4} x" in printed and repr(e["line"][:50]) in printed
                                                      for e in top)
    assert_shown(ckpt, "dynamic evaluation", d["test"]["nats"])


def test_cli_refuses_to_record_into_an_unfinished_checkpoint(tiny_checkpoints, corpus_file):
    with pytest.raises(SystemExit, match="no final losses"):
        main(["dynamic", "--checkpoint", str(tiny_checkpoints["unfinished"]), "--data", str(corpus_file), "--lr", "0.01", "--record"])
