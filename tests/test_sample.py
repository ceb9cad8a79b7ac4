import math

import pytest
import torch

from charrnn import char_losses, evaluate, generate, next_chars
from charrnn.scoring import costly_lines
from charrnn.sample import next_char_probs

from .helpers import TINY_TEXT, tiny_model


def test_generation_length_determinism_and_prompt_warmup():
    model = tiny_model("lstm", embed_size=8)
    a = "".join(generate(model, "ARGAN.", 50, temperature=1.0, seed=3))
    b = "".join(generate(model, "ARGAN.", 50, temperature=1.0, seed=3))
    c = "".join(generate(model, "ARGAN.", 50, temperature=1.0, seed=4))
    assert len(a) == 50 and a == b and a != c
    assert set(a) <= set(model.vocab.chars)
    # The whole prompt warms the state: prompts with the same last character continue differently.
    greedy = ["".join(generate(model, p, 30, temperature=0)) for p in ("TOINETTE.", "ARGAN.")]
    assert greedy[0] != greedy[1]


def test_temperature_zero_is_greedy_and_top_k_1_agrees():
    model = tiny_model("paper")
    greedy = "".join(generate(model, "Il est", 40, temperature=0))
    # Greedy by hand: argmax of the logits, fed back one character at a time.
    ids = model.encode("Il est")
    with torch.no_grad():
        logits, state = model(torch.tensor([ids]))
        expected = ""
        for _ in range(40):
            nxt = int(logits[0, -1].argmax())
            expected += model.vocab.chars[nxt]
            logits, state = model(torch.tensor([[nxt]]), state)
    assert greedy == expected
    assert "".join(generate(model, "Il est", 40, temperature=1.5, top_k=1, seed=1)) == greedy
    assert "".join(generate(model, "Il est", 40, temperature=1.0, top_p=1e-6, seed=1)) == greedy


def test_top_k_and_top_p_cut_the_distribution():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    p = next_char_probs(logits, 1.0, top_k=2, top_p=1.0)
    assert torch.allclose(p, torch.tensor([0.625, 0.375, 0, 0]))
    p = next_char_probs(logits, 1.0, top_k=0, top_p=0.7)  # 0.5 < 0.7, 0.5 + 0.3 >= 0.7
    assert torch.allclose(p, torch.tensor([0.625, 0.375, 0, 0]))
    p = next_char_probs(logits, 0.5, top_k=0, top_p=1.0)  # T = 0.5 squares the odds
    q = torch.tensor([0.5, 0.3, 0.15, 0.05]) ** 2
    assert torch.allclose(p, q / q.sum())


def test_unknown_prompt_characters_are_dropped_not_fatal():
    model = tiny_model("paper")
    out = "".join(generate(model, "Il est 🎭 là’", 5, temperature=0))
    assert out == "".join(generate(model, "Il est  là'", 5, temperature=0))


@pytest.mark.parametrize("kwargs, message", [
    (dict(length=-1), "length"), (dict(temperature=-0.1), "temperature"), (dict(temperature=float("nan")), "temperature"),
    (dict(top_k=-2), "top_k"), (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p"),
])
def test_bad_sampling_arguments(kwargs, message):
    args = dict(length=5, temperature=1.0, top_k=0, top_p=1.0) | kwargs
    with pytest.raises(ValueError, match=message):
        next(generate(tiny_model("paper"), "Il", **args))


def test_evaluate_on_a_known_distribution():
    """With V = 0 every character has probability 1/|vocab|: the loss is exactly ln |vocab|."""
    model = tiny_model("paper")
    with torch.no_grad():
        model.head.weight.zero_()
    r = evaluate(model, TINY_TEXT)
    n = model.config.vocab_size
    assert r["chars"] == len(TINY_TEXT) - 1
    assert r["nats"] == pytest.approx(math.log(n), abs=1e-6)
    assert r["bpc"] == pytest.approx(math.log2(n), abs=1e-6)


def test_evaluate_in_streams_matches_one_pass():
    model = tiny_model("lstm", embed_size=8, hidden_size=32)
    text = TINY_TEXT * 3  # long enough for several streams with burn-in
    one_pass = char_losses(model, text)
    assert one_pass.shape == (len(text) - 1,)
    r = evaluate(model, text, streams=8, burn_in=64)
    assert r["nats"] == pytest.approx(one_pass.mean().item(), abs=1e-4)


def test_costly_lines_add_up_the_losses_of_each_line_and_its_line_break():
    model = tiny_model("paper")
    with torch.no_grad():
        model.head.weight.zero_()  # every character costs log V
    text = "\nARGAN.\nOui.\n\nARGAN.\nNon, non, non.\nARGAN.\n"
    top = costly_lines(text, char_losses(model, text))
    log_v = math.log(model.config.vocab_size)
    assert [(e["line"], e["count"]) for e in top] == [("ARGAN.", 3), ("Non, non, non.", 1), ("Oui.", 1)]
    assert top[0]["nats"] == pytest.approx(3 * 7 * log_v) and top[0]["first"] == pytest.approx(top[0]["last"])
    assert costly_lines(text, char_losses(model, text), top=1) == top[:1]
    with pytest.raises(ValueError, match="one per character after the first"):
        costly_lines(text, char_losses(model, text)[1:])
    # With a real model the lines share out every character's loss but the first one's, which is given.
    model = tiny_model("lstm", embed_size=8)
    text = "\n" + TINY_TEXT.replace("\n\n", "\n").strip() + "\n"  # no blank lines, whose breaks are left out
    losses = char_losses(model, text)
    assert sum(e["nats"] for e in costly_lines(text, losses, top=10**6)) == pytest.approx(losses.sum().item())


def test_next_chars_are_sorted_probabilities():
    model = tiny_model("paper")
    top = next_chars(model, "Il est", k=5)
    assert len(top) == 5 and all(c in model.vocab.chars for c, _ in top)
    probs = [p for _, p in top]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


@pytest.mark.parametrize("flush_denormal", [False, True])
def test_a_tiny_positive_temperature_or_top_p_samples_greedily(flush_denormal):
    model = tiny_model("lstm", embed_size=8)
    greedy = "".join(generate(model, "Il est", 30, temperature=0))
    # Flushing denormals, as some CPU settings do, turns a float32 below 1e-38 into 0 (and a float64 below
    # 2e-308: those then read as 0, which check_sampling refuses for top_p and takes as greedy for temperature).
    tiny = (1e-40,) if flush_denormal else (1e-40, 1e-320, 5e-324)
    torch.set_flush_denormal(flush_denormal)
    try:
        for kw in [dict(temperature=t) for t in tiny] + [dict(top_p=p) for p in tiny]:
            assert "".join(generate(model, "Il est", 30, **{"temperature": 1.0, **kw}, seed=0)) == greedy, kw
    finally:
        torch.set_flush_denormal(False)


def test_sampling_from_nan_scores_says_the_weights_are_broken():
    model = tiny_model("paper")
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))
    with pytest.raises(ValueError, match="not numbers .* its weights are broken"):
        next(generate(model, "Il", 5, temperature=1.0))


@pytest.mark.parametrize("cell, cached", [("paper", False), ("lstm", False), ("gru", True)])
def test_reading_a_text_in_pieces_gives_the_one_pass_losses_and_next_characters(cell, cached):
    from charrnn.scoring import read
    from charrnn.testtime.cache import CachedModel

    model = tiny_model(cell, embed_size=0 if cell == "paper" else 8, num_layers=2).eval()
    if cached:
        model = CachedModel(model, theta=0.7, lam=0.3, window=100)
    text = TINY_TEXT[:700]
    ids = torch.tensor([model.encode(text)])
    with torch.no_grad():
        logits, _ = model(ids)  # the whole text in one call: the reference
    one_pass = torch.nn.functional.cross_entropy(logits[0, :-1].float(), ids[0, 1:], reduction="none")
    top = torch.topk(torch.softmax(logits[0].float(), -1), 3)  # (700, 3): the guesses after each character
    for chunk in (1, 7, 128, 700):
        losses, guesses = read(model, text, 3, chunk=chunk)
        assert losses.shape == (699,) and len(guesses) == 700
        assert torch.allclose(losses, one_pass, atol=1e-5), chunk
        chars = [[model.vocab.chars[i] for i in row] for row in top.indices.tolist()]
        assert [[c for c, _ in g] for g in guesses] == chars, chunk
        assert torch.allclose(torch.tensor([[p for _, p in g] for g in guesses]), top.values, atol=1e-6), chunk
    assert torch.equal(char_losses(model, text), read(model, text)[0])
    assert next_chars(model, text, 3) == read(model, text, 3)[1][-1]


@pytest.fixture
def clock(monkeypatch):
    """time.monotonic as the deadlines (and nothing else: the served app's threads read the real one) see it:
    a clock that moves one second each time it is read."""
    import charrnn.deadline

    now = [0.0]

    def tick():
        now[0] += 1.0
        return now[0]

    monkeypatch.setattr(charrnn.deadline, "monotonic", tick)
    return now


def test_generation_stops_at_its_deadline_keeping_what_it_wrote(clock):
    from charrnn import DeadlineExceeded

    model = tiny_model("lstm", embed_size=8)
    full = "".join(generate(model, "Il est", 50, temperature=0.8, seed=1))
    out = []
    # The clock is read once before the prompt and once before each character: 1 + 4 readings fit before 5.5.
    with pytest.raises(DeadlineExceeded, match="after 4 of 50 characters generated"):
        for ch in generate(model, "Il est", 50, temperature=0.8, seed=1, deadline=5.5):
            out.append(ch)
    assert "".join(out) == full[:4]
    assert issubclass(DeadlineExceeded, TimeoutError)
    assert "".join(generate(model, "Il est", 50, temperature=0.8, seed=1, deadline=clock[0] + 100)) == full


def test_scoring_stops_at_its_deadline(clock):
    from charrnn import DeadlineExceeded, report
    from charrnn.testtime.cache import CachedModel

    model = tiny_model("gru", embed_size=8)
    text = TINY_TEXT[:1000]
    for score in (lambda d: char_losses(model, text, deadline=d), lambda d: next_chars(model, text, deadline=d),
                  lambda d: report.score(model, text, deadline=d),
                  lambda d: report.score(CachedModel(model, 0.7, 0.3), text, deadline=d)):
        start = clock[0]
        with pytest.raises(DeadlineExceeded, match="after 384 of 1,000 characters read"):  # 3 pieces of 128
            score(start + 3.5)
    assert report.score(model, text, deadline=clock[0] + 100)["bits"] == pytest.approx(
        (char_losses(model, text) / math.log(2)).tolist())
