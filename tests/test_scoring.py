"""Scoring against references computed another way: one stream read from the zero state, the softmax of the
model's own logits."""
import pytest
import torch

from charrnn import char_losses, evaluate, next_chars
from charrnn.scoring import read

from .helpers import TINY_TEXT, tiny_model


def memory_model(decay: float = 0.8):
    """A tanh RNN built so that its state matters: h(t) = tanh(w(t) + decay h(t-1)), one unit per character,
    and logits = V h(t) with a large random V. Each prediction depends on the characters read before, a
    character k steps back weighing at most decay^k (tanh contracts): 0.8^128 < 1e-12, so a stream warmed
    by 128 characters is exact, while a cold one (or one warmed by 16 characters: 0.8^16 = 0.03) is not."""
    model = tiny_model("rnn", hidden_size=len(set(TINY_TEXT)))
    V = model.config.vocab_size
    with torch.no_grad():
        model.rnn.weight_ih_l0.copy_(torch.eye(V))
        model.rnn.weight_hh_l0.copy_(decay * torch.eye(V))
        model.rnn.bias_ih_l0.zero_()
        model.rnn.bias_hh_l0.zero_()
        model.head.weight.copy_(2 * torch.randn(V, V, generator=torch.Generator().manual_seed(0)))
        model.head.bias.zero_()
    return model


def test_evaluate_in_warmed_streams_is_the_single_pass_loss():
    """Each stream but the first reads the burn-in before its segment; the first starts from the zero state as the
    single pass does. On this model the streams left cold move the loss by 9e-3 nats/char, the first one warmed on
    padding instead of reset by 3e-4, streams warmed by 16 characters only by 9e-5; right, it agrees to 1e-7."""
    model = memory_model()
    text = TINY_TEXT * 3  # 7,680 characters: 8 streams of 960
    one_pass = char_losses(model, text).double().mean().item()  # one stream, from the zero state
    r = evaluate(model, text, streams=8, burn_in=128)
    assert r["chars"] == len(text) - 1
    assert r["nats"] == pytest.approx(one_pass, abs=1e-5)
    # The same check would pass with the streams cold if the model did not remember: it does.
    cold = evaluate(model, text, streams=8, burn_in=0)["nats"]
    assert abs(cold - one_pass) > 1e-3


def test_evaluate_without_burn_in_reads_each_segment_from_the_zero_state():
    """burn_in=0: every segment cold, as if each were a text of its own (its first character given)."""
    model = memory_model()
    text = TINY_TEXT[:1001]  # n = 1,000 scored characters: 4 segments of 250
    cold = sum(char_losses(model, text[a : a + 251]).double().sum().item() for a in range(0, 1000, 250)) / 1000
    assert evaluate(model, text, streams=4, burn_in=0)["nats"] == pytest.approx(cold, abs=1e-5)


@pytest.mark.parametrize("text", ["Il est", ""])
def test_next_chars_are_the_softmax_of_the_model_s_own_logits(text):
    """At temperature 1, in eval mode (no dropout, though the model was training), after the whole text; an empty
    text is read as the start of a line."""
    model = tiny_model("lstm", embed_size=8, dropout=0.5, num_layers=2)
    with torch.no_grad():
        model.head.bias.normal_(0, 3, generator=torch.Generator().manual_seed(0))  # peaked: a wrong temperature shows
    model.train()
    top = next_chars(model, text, k=4)
    assert model.training  # the caller's mode is restored
    model.eval()
    with torch.no_grad():
        logits, _ = model(torch.tensor([model.encode(text or "\n")]))
    probs = torch.softmax(logits[0, -1].double(), -1)
    order = torch.argsort(probs, descending=True)[:4]
    assert [c for c, _ in top] == [model.vocab.chars[int(i)] for i in order]
    assert [p for _, p in top] == pytest.approx(probs[order].tolist(), abs=1e-6)
    assert top[0][1] > 0.3  # peaked enough that the check means something


def test_read_gives_each_character_s_loss_and_the_guesses_after_every_prefix():
    """Against the softmax of the model's own logits at every position: losses[i] is -log p(text[i + 1]), guesses[i]
    the k most likely characters after text[:i + 1], guesses[-1] those after the whole text."""
    model = tiny_model("gru", embed_size=8)
    with torch.no_grad():
        model.head.bias.normal_(0, 3, generator=torch.Generator().manual_seed(0))  # peaked: a wrong temperature shows
    text = "Il est là, monsieur."
    losses, guesses = read(model, text, k=3)
    with torch.no_grad():
        probs = torch.softmax(model(torch.tensor([model.encode(text)]))[0][0].double(), -1)  # (N, V)
    ids = model.encode(text)
    assert losses.shape == (len(text) - 1,) and len(guesses) == len(text)
    assert torch.allclose(losses.double(), -probs[torch.arange(len(text) - 1), ids[1:]].log(), atol=1e-5)
    for p, guess in zip(probs, guesses):
        order = torch.argsort(p, descending=True)[:3]
        assert [c for c, _ in guess] == [model.vocab.chars[int(i)] for i in order]
        assert [q for _, q in guess] == pytest.approx(p[order].tolist(), abs=1e-6)
    after = next_chars(model, text, k=3)
    assert [c for c, _ in guesses[-1]] == [c for c, _ in after]
    assert [q for _, q in guesses[-1]] == pytest.approx([q for _, q in after], abs=1e-6)
