"""The minimal GRU (cells.MinGRU): its parallel scan against the recurrence it computes, and the model contract
(training, checkpoint, sampling, scoring, the test-time readings, the writing form) honoured by a minGRU model."""
from __future__ import annotations

import math

import pytest
import torch

import charrnn
from charrnn.cells import MinGRU
from charrnn.fast import for_writing
from charrnn.testtime.dynamic import evaluate_dynamic
from charrnn.training import Run, TrainConfig, train
from tests.helpers import TINY_TEXT, tiny_model
import train as train_script


def sequential(rnn: MinGRU, x: torch.Tensor, state=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The module one step at a time (its writing path), the state handed from call to call."""
    outs = []
    for t in range(x.shape[1]):
        out, state = rnn(x[:, t : t + 1], state)
        outs.append(out)
    return torch.cat(outs, 1), state


def drift_prone(input_size: int = 8, hidden_size: int = 32) -> MinGRU:
    """A layer whose gates open wide (z near 1), so that |sum log(1 - z)| grows fast: the float32 scan's weak spot."""
    torch.manual_seed(0)
    rnn = MinGRU(input_size, hidden_size, 1, 0.0).eval()
    with torch.no_grad():
        rnn.gates[0].weight.mul_(3)
        rnn.gates[0].bias[:hidden_size] += 2.0
    return rnn


@pytest.mark.parametrize("T", [1, 2, 63, 64, 65, 1024])
def test_the_parallel_scan_equals_the_recurrence_in_float64(T):
    torch.manual_seed(T)
    rnn = MinGRU(5, 16, 2, 0.0).double().eval()
    x, h0 = torch.randn(3, T, 5, dtype=torch.float64), torch.rand(2, 3, 16, dtype=torch.float64)
    with torch.no_grad():
        for state in (None, h0):
            out, last = rnn(x, state)
            ref, ref_last = sequential(rnn, x, state)
            assert (out - ref).abs().max() < 1e-5 and (last - ref_last).abs().max() < 1e-5


@pytest.mark.parametrize("T", [128, 1024])
def test_the_float32_scan_in_pieces_stays_within_1e_4_of_the_recurrence_where_one_piece_would_not(T, monkeypatch):
    rnn = drift_prone()
    x = torch.randn(2, T, 8)
    with torch.no_grad():
        ref = sequential(rnn.double(), x.double())[0]
        rnn.float()
        assert (rnn(x)[0].double() - ref).abs().max() < 1e-4
        monkeypatch.setattr(MinGRU, "SCAN", T)  # the whole chunk in one scan: the drift the pieces avoid
        assert (rnn(x)[0].double() - ref).abs().max() > 1e-4


def test_the_module_computes_the_paper_s_equations_written_out_literally():
    """A reference written from the equations, one float at a time: z = sigmoid(W_z x + b_z), h~ = g(W_h x + b_h),
    h = (1 - z) h + z h~, layer l + 1 reading layer l's h."""
    torch.manual_seed(1)
    I, H, L, T = 3, 4, 2, 6
    rnn = MinGRU(I, H, L, 0.0).double().eval()
    x = torch.randn(1, T, I, dtype=torch.float64)

    def g(v):
        return v + 0.5 if v >= 0 else 1 / (1 + math.exp(-v))

    seq = [[x[0, t, i].item() for i in range(I)] for t in range(T)]
    for l in range(L):
        W, b = rnn.gates[l].weight.tolist(), rnn.gates[l].bias.tolist()
        h, out = [0.0] * H, []
        for xt in seq:
            pre = [sum(W[j][i] * xt[i] for i in range(len(xt))) + b[j] for j in range(2 * H)]
            z = [1 / (1 + math.exp(-pre[j])) for j in range(H)]
            h = [(1 - z[j]) * h[j] + z[j] * g(pre[H + j]) for j in range(H)]
            out.append(h)
        seq = out
    with torch.no_grad():
        got = rnn(x)[0][0]
    assert (got - torch.tensor(seq, dtype=torch.float64)).abs().max() < 1e-12


def test_the_state_carried_across_chunks_equals_one_pass():
    model = tiny_model("mingru", hidden_size=12, num_layers=2, embed_size=6).eval()
    ids = torch.tensor([model.encode(TINY_TEXT[:300])] * 2)
    with torch.no_grad():
        whole, whole_state = model(ids)
        state, parts = None, []
        for a in range(0, 300, 70):  # pieces that do not align with the scan's
            logits, state = model(ids[:, a : a + 70], state)
            parts.append(logits)
    assert torch.allclose(torch.cat(parts, 1), whole, atol=1e-5) and torch.allclose(state, whole_state, atol=1e-6)
    assert whole_state.shape == (2, 2, 12)  # (layers, batch, hidden), as the GRU's


def test_a_mingru_trains_saves_loads_samples_and_scores(tmp_path):
    train_text, test_text = charrnn.data.split(TINY_TEXT)
    model = tiny_model("mingru", embed_size=8, hidden_size=24, num_layers=2, dropout=0.1)
    cfg = TrainConfig(batch_size=4, seq_len=32, epochs=3, lr=1e-2, warmup_steps=5, sample_length=20, seed=0)
    record = train(model, Run(train_text, test_text, cfg, tmp_path / "m", info={"command": "test"}, progress=False))
    assert record["history"][-1]["train_loss"] < record["history"][0]["train_loss"]
    loaded = charrnn.load(tmp_path / "m")
    assert loaded.config == model.config and isinstance(loaded.rnn, MinGRU)
    scored = charrnn.evaluate(loaded, test_text)["nats"]
    assert scored == pytest.approx(record["final"]["test"]["nats"], abs=1e-6)
    assert charrnn.char_losses(loaded, test_text).mean().item() == pytest.approx(scored, abs=1e-3)
    assert evaluate_dynamic(loaded, test_text, lr=1e-3)["nats"] < math.log(loaded.config.vocab_size)
    written = charrnn.generate(loaded, "ARGAN.\n\n", 40, 0.8, 0, 1.0, 3)
    assert len("".join(written)) == 40
    for form in ("float32", "bf16", "int8"):  # every writing form writes
        assert len("".join(charrnn.generate(for_writing(loaded, form), "ARGAN.\n\n", 20, 0.8, 0, 1.0, 3))) == 20


def test_weight_drop_is_refused_for_mingru_in_one_line(tmp_path, capsys):
    data = tmp_path / "text.txt"
    data.write_text(TINY_TEXT, encoding="utf-8")
    with pytest.raises(SystemExit) as stop:
        train_script.main(["--cell", "mingru", "--weight-drop", "0.3", "--data", str(data), "--out", str(tmp_path / "o")])
    message = str(stop.value.code)
    assert message.startswith("error: ") and "\n" not in message
    assert "offered for the rnn, gru, lstm, ln-lstm cells, not 'mingru'" in message


def test_the_mingru_preset_has_the_gru_preset_s_parameter_count_within_2_percent():
    from charrnn.presets import PRESETS

    vocab = "".join(chr(0x41 + i) for i in range(85))  # the corpus's vocabulary size
    gru, mingru = (charrnn.CharRNN(charrnn.ModelConfig(vocab=vocab, **PRESETS[name]["model"])).num_params()
                   for name in ("gru", "mingru"))
    assert abs(mingru / gru - 1) < 0.02 and PRESETS["mingru"]["train"] == PRESETS["gru"]["train"]


def test_bench_train_times_the_named_presets_at_each_batch_size_back_to_back_and_refuses_unknown_ones(capsys):
    from charrnn.bench.train import _rows
    from charrnn.cli import main

    rows = _rows(["gru", "mingru"], [4, 64])
    assert [(name, t["batch_size"]) for name, _, t in rows] == [
        ("gru preset", 64), ("gru preset, batch 4", 4), ("mingru preset", 64), ("mingru preset, batch 4", 4)]
    with pytest.raises(SystemExit) as stop:
        main(["bench", "train", "--presets", "gru,mamba"])
    assert str(stop.value.code).startswith("error: unknown preset 'mamba' for --presets: choose among paper")


@pytest.mark.parametrize("adapt", ["none", "dynamic", "cache"])
def test_a_mingru_compresses_and_decompresses_exactly_in_every_mode(adapt):
    from charrnn.compress import compress_text, decompress_text
    from charrnn.testtime import dynamic
    from tests.test_compress import MODES

    # test_compress's dynamic rate, 0.5, makes this sharpened minGRU diverge (its g is unbounded above: h grows
    # with the weights), which the coder refuses with its NaN error; a tenth of it codes.
    settings = dynamic.Settings(lr=0.1, seq_len=13) if adapt == "dynamic" else dict(MODES)[adapt]

    model = tiny_model("mingru", hidden_size=12, num_layers=2, embed_size=6)
    with torch.no_grad():
        model.head.weight.mul_(30)  # sharp distributions: the coder's extremes
    text = TINY_TEXT[:200] + "é😀"
    data = compress_text(model, text, adapt, settings)
    assert decompress_text(model, data) == text
