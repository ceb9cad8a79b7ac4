"""Regularisation in the trainer: DropConnect on the recurrent weights, locked dropout, the layer-normalised LSTM."""
import pytest
import torch

import charrnn
from charrnn import cells
from charrnn.cells import LockedRecurrence, drop_connect, locked_dropout
from charrnn.model import ModelConfig
from charrnn.training import Run, TrainConfig, train
from tests.helpers import TINY_TEXT, tiny_model


def literal_gru(x, h, W_ih, W_hh, b_ih, b_hh):
    """The GRU equations of PyTorch's documentation, step by step: x (B, T, in), h (B, H) -> (B, T, H)."""
    outs = []
    for t in range(x.shape[1]):
        r_i, z_i, n_i = (x[:, t] @ W_ih.T + b_ih).chunk(3, -1)
        r_h, z_h, n_h = (h @ W_hh.T + b_hh).chunk(3, -1)
        r, z = torch.sigmoid(r_i + r_h), torch.sigmoid(z_i + z_h)
        n = torch.tanh(n_i + r * n_h)
        h = (1 - z) * n + z * h
        outs.append(h)
    return torch.stack(outs, 1)


def test_drop_connect_thins_the_recurrent_matrix_once_per_sequence_before_the_kernel(monkeypatch):
    torch.manual_seed(0)
    rnn = LockedRecurrence("gru", 5, 8, 1, dropout=0.0, weight_drop=0.5).double().train()
    used = []
    monkeypatch.setattr(cells, "drop_connect", lambda w, p, training: used.append(drop_connect(w, p, training)) or used[-1])
    x = torch.randn(3, 40, 5, dtype=torch.float64)
    out, h = rnn(x)
    layer = rnn.layers[0]
    (W,) = used  # one matrix for the whole sequence
    kept = W != 0
    assert torch.allclose(W[kept], 2 * layer.weight_hh_l0[kept]) and 0.4 < 1 - kept.double().mean() < 0.6
    want = literal_gru(x, torch.zeros(3, 8, dtype=torch.float64), layer.weight_ih_l0, W, layer.bias_ih_l0,
                       layer.bias_hh_l0)
    assert torch.allclose(out, want, atol=1e-10) and torch.allclose(h[0], want[:, -1])  # every step, that matrix
    assert not torch.allclose(out, literal_gru(x, torch.zeros(3, 8, dtype=torch.float64), layer.weight_ih_l0,
                                               layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0), atol=1e-3)
    out.sum().backward()  # the gradient reaches the kept weights of the stored matrix, and only those
    grad = layer.weight_hh_l0.grad
    assert bool((grad[~kept] == 0).all()) and bool((grad[kept] != 0).all())


def test_locked_dropout_draws_one_mask_per_sequence_and_none_in_eval_mode():
    torch.manual_seed(0)
    x = torch.ones(4, 30, 50)
    y = locked_dropout(x, 0.4, training=True)
    assert torch.equal(y, y[:, :1].expand_as(y))  # the same units at every step of a sequence
    assert not torch.equal(y[0], y[1])  # each sequence its own mask
    assert y.unique().tolist() == pytest.approx([0.0, 1 / 0.6])  # kept units scaled by 1 / (1 - p)
    assert torch.equal(locked_dropout(x, 0.4, training=False), x)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm", "ln-lstm"])
def test_in_eval_mode_the_regularised_model_is_the_plain_one_and_in_training_its_masks_are_locked(cell):
    kw = dict(embed_size=6, num_layers=2, hidden_size=12, dropout=0.3, input_dropout=0.2)
    plain = tiny_model(cell, **kw)
    awd = tiny_model(cell, weight_drop=0.4, dropout_mask="sequence", **kw)
    if cell != "ln-lstm":  # the same weights: nn.GRU's layer k is LockedRecurrence's layers[k]
        weights = {k: v for k, v in plain.state_dict().items() if not k.startswith("rnn.")}
        for k, v in plain.rnn.state_dict().items():
            name, layer = k.rsplit("_l", 1)
            weights[f"rnn.layers.{layer}.{name}_l0"] = v
        awd.load_state_dict(weights, strict=True)
    else:
        awd.load_state_dict(plain.state_dict(), strict=True)
    idx = torch.randint(0, plain.config.vocab_size, (2, 25), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(awd.eval()(idx)[0], plain.eval()(idx)[0], atol=1e-5)
        awd.train()
        a, b = awd(idx)[0], awd(idx)[0]
    assert not torch.allclose(a, b)  # masks in training, new ones at each call
    # The output dropout, locked: a constant output loses the same units at every step
    awd.train()
    h = torch.ones(2, 25, 12)
    dropped = awd.readout(h) - awd.head.bias
    assert torch.allclose(dropped, dropped[:, :1].expand_as(dropped), atol=1e-6)


def test_the_layer_norm_lstm_is_its_equations():
    model = tiny_model("ln-lstm", embed_size=4, hidden_size=6).double().eval()
    rnn = model.rnn
    with torch.no_grad():
        for ln in (*rnn.ln_x, *rnn.ln_h, *rnn.ln_c):  # gains and biases away from 1 and 0, so their place is checked
            ln.weight.normal_(1.0, 0.3)
            ln.bias.normal_(0.0, 0.3)

    def ln(v, mod):
        return (v - v.mean(-1, keepdim=True)) / (v.var(-1, unbiased=False, keepdim=True) + mod.eps).sqrt() * mod.weight + mod.bias

    idx = torch.randint(0, model.config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(0))
    x = model.embed(idx)
    h = c = torch.zeros(2, 6, dtype=torch.float64)
    outs = []
    for t in range(9):
        gates = ln(h @ rnn.W_h[0].T, rnn.ln_h[0]) + ln(x[:, t] @ rnn.W_x[0].T, rnn.ln_x[0]) + rnn.b[0]
        i, f, g, o = gates.chunk(4, -1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(ln(c, rnn.ln_c[0]))
        outs.append(h)
    out, (h_n, c_n) = rnn(x)
    assert torch.allclose(out, torch.stack(outs, 1), atol=1e-10) and torch.allclose(c_n[0], c, atol=1e-10)


def test_regularisation_is_refused_where_it_is_not_offered_and_bad_rates_are_named():
    with pytest.raises(ValueError, match="offered for the rnn, gru, lstm, ln-lstm cells, not 'paper'"):
        ModelConfig("ab", "paper", weight_drop=0.2)
    with pytest.raises(ValueError, match="weight_drop must be in"):
        ModelConfig("ab", "gru", weight_drop=1.0)
    with pytest.raises(ValueError, match="dropout_mask must be one of"):
        ModelConfig("ab", "gru", dropout_mask="word")


def test_a_regularised_model_trains_saves_and_loads_the_same(tmp_path):
    train_text, test_text = charrnn.data.split(TINY_TEXT)
    model = tiny_model("gru", embed_size=8, hidden_size=24, num_layers=2, dropout=0.2, input_dropout=0.1,
                       weight_drop=0.3, dropout_mask="sequence")
    cfg = TrainConfig(batch_size=4, seq_len=32, epochs=3, lr=1e-2, warmup_steps=5, sample_length=20, seed=0)
    record = train(model, Run(train_text, test_text, cfg, tmp_path / "awd", info={"command": "test"}, progress=False))
    assert record["history"][-1]["train_loss"] < record["history"][0]["train_loss"]
    loaded = charrnn.load(tmp_path / "awd")
    assert loaded.config == model.config and isinstance(loaded.rnn, LockedRecurrence)
    assert charrnn.evaluate(loaded, test_text)["nats"] == pytest.approx(record["final"]["test"]["nats"], abs=1e-6)


def test_the_awd_preset_makes_a_regularised_model_that_fits_a_checkpoint():
    from charrnn.presets import PRESETS

    p = PRESETS["awd-gru"]
    cfg = ModelConfig(vocab="".join(chr(0x41 + i) for i in range(85)), **p["model"])  # the corpus's 85 characters
    model = charrnn.CharRNN(cfg)
    assert cfg.regularised and cfg.locked and cfg.weight_drop > 0 and cfg.input_dropout > 0
    assert 2 * model.num_params() < 10 * 2**20  # float16 weights under a checkpoint's 10 MB
    assert p["train"]["val_chars"] == PRESETS["gru-large"]["train"]["val_chars"]  # compared on the same slice
