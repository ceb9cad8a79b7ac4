import pytest
import torch
import torch.nn.functional as F

from charrnn.model import CharRNN, ModelConfig, detach_state

from .helpers import TINY_TEXT, tiny_model


def literal_paper_rnn(model: CharRNN, idx: torch.Tensor) -> torch.Tensor:
    """Mikolov et al. (2010) eq. 1-3 written out step by step, layer by layer, with the model's U, b, V."""
    B, T = idx.shape
    Vn, H = model.config.vocab_size, model.config.hidden_size
    s = [torch.zeros(B, H, dtype=torch.float64) for _ in model.rnn.U]  # s(0) = 0
    ys = []
    for t in range(T):
        w = F.one_hot(idx[:, t], Vn).double()  # w(t)
        inp = w
        for l, (U, b) in enumerate(zip(model.rnn.U, model.rnn.b)):
            x = torch.cat([inp, s[l]], dim=1)  # x(t) = [w(t); s(t-1)]
            s[l] = torch.sigmoid(x @ U.T + b)  # s(t) = f(U x(t) + b)
            inp = s[l]
        ys.append(inp @ model.head.weight.T)  # y(t) = g(V s(t)), before the softmax
    return torch.stack(ys, dim=1)  # (B, T, V)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_paper_model_matches_its_equations_forward_and_gradients(num_layers):
    model = tiny_model("paper", hidden_size=12, num_layers=num_layers).double()
    with torch.no_grad():
        for b in model.rnn.b:
            b.normal_()  # a non-zero bias, so its place in the equations is checked too
    idx = torch.randint(0, model.config.vocab_size, (3, 17), generator=torch.Generator().manual_seed(0))
    targets = torch.roll(idx, -1, 1)

    logits, state = model(idx)
    ref = literal_paper_rnn(model, idx)
    assert logits.shape == (3, 17, model.config.vocab_size)
    assert torch.allclose(logits, ref, atol=1e-5, rtol=0)
    assert state.shape == (num_layers, 3, 12) and bool(((state > 0) & (state < 1)).all())  # sigmoid states

    grads = torch.autograd.grad(F.cross_entropy(logits.flatten(0, 1), targets.flatten()), list(model.parameters()))
    ref_grads = torch.autograd.grad(F.cross_entropy(ref.flatten(0, 1), targets.flatten()), list(model.parameters()))
    for (name, _), g, r in zip(model.named_parameters(), grads, ref_grads):
        assert torch.allclose(g, r, atol=1e-5, rtol=0), name


def test_paper_model_has_exactly_the_papers_parameters():
    model = tiny_model("paper", hidden_size=12)
    Vn = model.config.vocab_size
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    assert shapes == {"rnn.U.0": (12, Vn + 12), "rnn.b.0": (12,), "head.weight": (Vn, 12)}


@pytest.mark.parametrize("cell", ["paper", "rnn", "gru", "lstm", "mingru"])
@pytest.mark.parametrize("embed_size", [0, 8])
def test_contract_shapes_and_state_carry(cell, embed_size):
    """Reading a text in two calls, carrying the state, gives the logits of reading it in one."""
    model = tiny_model(cell, hidden_size=10, num_layers=2, embed_size=embed_size).eval()
    idx = torch.randint(0, model.config.vocab_size, (2, 20), generator=torch.Generator().manual_seed(1))
    whole, _ = model(idx)
    first, state = model(idx[:, :8])
    second, _ = model(idx[:, 8:], detach_state(state))
    assert whole.shape == (2, 20, model.config.vocab_size)
    assert torch.allclose(torch.cat([first, second], 1), whole, atol=1e-6)


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="unknown cell"):
        ModelConfig(vocab="ab", cell="mamba")
    with pytest.raises(ValueError, match="dropout"):
        ModelConfig(vocab="ab", dropout=1.0)
    with pytest.raises(ValueError, match="distinct"):
        ModelConfig(vocab="aa")


@pytest.mark.parametrize("cell", ["paper", "lstm"])
def test_tiny_model_overfits_a_short_text(cell):
    torch.manual_seed(0)
    text = TINY_TEXT[:300]
    model = tiny_model(cell, text=text, hidden_size=64, embed_size=16 if cell == "lstm" else 0)
    idx = torch.tensor([model.encode(text)])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        logits, _ = model(idx[:, :-1])
        loss = F.cross_entropy(logits[0], idx[0, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    # The uniform guess costs ln(V) ~ 3.3 nats; memorising 300 characters must go far below.
    assert loss.item() < 0.3


def test_a_new_cell_is_one_registry_entry(monkeypatch, tmp_path):
    """A cell added to the registry, and nowhere else, trains, saves with a card that names it, and loads."""
    import torch.nn as nn

    import charrnn
    from charrnn.cells import CELLS, Cell
    from charrnn.data import split
    from charrnn.training import Run, TrainConfig, train

    class ReluRNN(nn.Module):  # a throwaway cell, made for this test
        def __init__(self, input_size, hidden_size, num_layers, dropout):
            super().__init__()
            self.rnn = nn.RNN(input_size, hidden_size, num_layers, nonlinearity="relu", batch_first=True)

        def forward(self, x, state):
            return self.rnn(x, state)

    monkeypatch.setitem(CELLS, "relu", Cell(ReluRNN, "Elman RNN with ReLU state", "relu-rnn"))
    model = tiny_model("relu", embed_size=4)
    train_text, test_text = split(TINY_TEXT)
    cfg = TrainConfig(batch_size=2, seq_len=16, epochs=1, lr=1e-2, warmup_steps=1, sample_length=10)
    record = train(model, Run(train_text, test_text, cfg, tmp_path / "ck", {"command": "test"}, progress=False))
    assert record["status"] == "complete"
    card = (tmp_path / "ck" / "README.md").read_text()
    assert "Elman RNN with ReLU state" in card and "- relu-rnn" in card
    loaded = charrnn.load(tmp_path / "ck")
    assert isinstance(loaded.rnn, ReluRNN) and loaded.head.bias is not None
    x = torch.tensor([model.encode(TINY_TEXT[:40])])
    assert torch.allclose(loaded(x)[0], model.eval()(x)[0], atol=1e-6)


@pytest.mark.parametrize("cell", ["paper", "lstm"])
def test_dropout_before_the_output_layer_drops_at_its_rate_in_training_only(cell):
    """What reaches V in training: each of the top layer's outputs zeroed with probability p, the others scaled by
    1 / (1 - p); in eval mode, the outputs as they are."""
    p = 0.4
    model = tiny_model(cell, hidden_size=50, dropout=p)
    seen = []
    model.head.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    out = torch.rand(4, 50, 50, generator=torch.Generator().manual_seed(0)) + 0.1  # (B, T, H), no zero
    with torch.no_grad():
        model.train().readout(out)
        model.eval().readout(out)
    dropped = seen[0] == 0
    assert abs(dropped.float().mean().item() - p) < 0.03  # 10,000 draws: the rate within 3 standard deviations
    assert torch.allclose(seen[0][~dropped], out[~dropped] / (1 - p))
    assert torch.equal(seen[1], out)


def test_the_paper_model_drops_the_state_between_its_layers_in_training_only(monkeypatch):
    """The second layer reads the first layer's state s(t) with dropout: each unit zeroed with probability p, the
    others scaled by 1 / (1 - p), then in its tanh form 2 s - 1 like any state. Inspected at the input of the
    recurrence kernel, whose output h gives the first layer's s = (1 + h) / 2."""
    p = 0.4
    model = tiny_model("paper", hidden_size=50, num_layers=2, dropout=p)
    calls, rnn_tanh = [], torch.rnn_tanh

    def spy(inp, *args):
        calls.append((inp, rnn_tanh(inp, *args)[0]))
        return rnn_tanh(inp, *args)

    monkeypatch.setattr(torch, "rnn_tanh", spy)
    x = F.one_hot(torch.randint(0, model.config.vocab_size, (4, 50), generator=torch.Generator().manual_seed(0)),
                  model.config.vocab_size).float()  # (4, 50, V)
    for train in (True, False):
        with torch.no_grad():
            model.train(train).rnn(x, None)
    (_, h1), (inp2, _), (_, h1_eval), (inp2_eval, _) = calls  # two layers, in training then in eval mode
    s1, seen = (1 + h1) / 2, (1 + inp2) / 2  # (4, 50, 50) each: the state, and what the second layer read of it
    dropped = seen == 0
    assert abs(dropped.float().mean().item() - p) < 0.03  # 10,000 draws: the rate within 3 standard deviations
    assert torch.allclose(seen[~dropped], s1[~dropped] / (1 - p), atol=1e-5)
    assert torch.allclose((1 + inp2_eval) / 2, (1 + h1_eval) / 2, atol=1e-6)  # eval: the state as it is
