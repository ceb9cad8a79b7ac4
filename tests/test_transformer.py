"""The transformer (charrnn.transformer) on the recurrent models' contract: its key/value cache as the carried state
(chunks, steps and one pass agree; a reset stream forgets), its reach of L (W - 1) characters, what it refuses."""
from __future__ import annotations

import pytest
import torch

import charrnn
from charrnn.model import map_state, select_streams, zero_row
from charrnn.transformer import Transformer
from tests.helpers import TINY_TEXT, tiny_model
import train as train_script


def flat(state) -> list[torch.Tensor]:
    return [t for part in state for t in (part if isinstance(part, tuple) else (part,))]


def tiny_transformer(layers: int = 3, window: int = 8, **kw):
    kw = {"hidden_size": 16, "num_layers": layers, "embed_size": 16, "heads": 2, "window": window, **kw}
    return tiny_model("transformer", **kw).double().eval()


def test_chunks_steps_and_one_pass_give_the_same_predictions_and_state():
    model = tiny_transformer()
    ids = torch.tensor([model.encode(TINY_TEXT[:60]), model.encode(TINY_TEXT[100:160])])
    with torch.no_grad():
        whole, whole_state = model(ids)
        for size in (1, 5, 7, 60):  # shorter and longer than the window, not aligned with it
            state, parts = None, []
            for a in range(0, 60, size):
                logits, state = model(ids[:, a : a + size], state)
                parts.append(logits)
            assert (torch.cat(parts, 1) - whole).abs().max() < 1e-12, size
            assert all((s - w).abs().max() < 1e-12 for s, w in zip(flat(state), flat(whole_state)))
    *layers, n = whole_state
    assert len(layers) == 3 and n.tolist() == [[8, 8]]  # (1, B)
    assert all(k.shape == v.shape == (1, 2, 8, 16) for k, v in layers)  # (1, B, W, C) each


@pytest.mark.parametrize("layers,window", [(1, 8), (2, 8), (3, 8), (2, 5)])
def test_a_prediction_reaches_back_exactly_layers_times_window_minus_one(layers, window):
    """Changing the character read k steps back (k = 1: the last one read) moves the last prediction for
    k <= L (W - 1) + 1, the last character and L (W - 1) before it, and never beyond."""
    model = tiny_transformer(layers, window)
    ids = torch.tensor([model.encode(TINY_TEXT[:60])])
    with torch.no_grad():
        base = model(ids)[0][0, -1]
        moved = []
        for k in range(1, 60):
            other = ids.clone()
            other[0, -k] = (other[0, -k] + 1) % model.config.vocab_size
            moved.append((model(other)[0][0, -1] - base).abs().max().item() > 0)
    reach = layers * (window - 1)
    assert model.rnn.horizon == reach
    assert moved[reach] and not any(moved[reach + 1 :])  # moved[k - 1]: the character read k steps back


def test_a_reset_stream_starts_afresh_and_leaves_the_others_alone():
    """Scoring's burn-in resets one stream's state (model.zero_row): its cache empties, so what it read before the
    reset no longer counts, while the other stream keeps its own."""
    model = tiny_transformer()
    a, b = model.encode(TINY_TEXT[:20]), model.encode(TINY_TEXT[50:70])
    with torch.no_grad():
        _, state = model(torch.tensor([a, b]))
        zero_row(state, 0)
        after, _ = model(torch.tensor([b[:6], a[:6]]), state)
        fresh, _ = model(torch.tensor([b[:6]]))
        kept, _ = model(torch.tensor([b + a[:6]]))
    assert (after[0] - fresh[0]).abs().max() < 1e-12 and (after[1] - kept[0, -6:]).abs().max() < 1e-12


def test_the_state_of_streams_can_be_selected_and_joined_along_the_batch():
    model = tiny_transformer()
    ids = torch.tensor([model.encode(TINY_TEXT[i : i + 30]) for i in (0, 40, 80)])
    with torch.no_grad():
        _, state = model(ids)
        picked = select_streams(state, [2, 0])
        joined = map_state(picked, lambda p: torch.cat([p[:, :1], p[:, 1:]], 1))
        nxt = torch.tensor([model.encode("ab"), model.encode("ab")])
        assert torch.equal(model(nxt, joined)[0], model(nxt, picked)[0])
        alone = model(nxt[:1], select_streams(state, [2]))[0][0]  # stream 2 by itself: the same to rounding
        assert (model(nxt, picked)[0][0] - alone).abs().max() < 1e-12


def test_a_transformer_trains_saves_loads_and_reproduces_its_recorded_loss(tmp_path):
    from charrnn.training import Run, TrainConfig, train

    train_text, test_text = charrnn.data.split(TINY_TEXT)
    model = tiny_model("transformer", hidden_size=16, num_layers=2, embed_size=8, heads=2, window=16, dropout=0.1)
    cfg = TrainConfig(batch_size=4, seq_len=16, epochs=3, lr=1e-2, warmup_steps=5, sample_length=20, seed=0)
    record = train(model, Run(train_text, test_text, cfg, tmp_path / "t", info={"command": "test"}, progress=False))
    assert record["history"][-1]["train_loss"] < record["history"][0]["train_loss"]
    loaded = charrnn.load(tmp_path / "t")
    assert loaded.config == model.config and isinstance(loaded.rnn, Transformer)
    assert loaded.config.heads == 2 and loaded.config.window == 16  # written out in the record
    assert charrnn.evaluate(loaded, test_text)["nats"] == pytest.approx(record["final"]["test"]["nats"], abs=1e-6)


def test_heads_and_window_default_where_unset_and_are_refused_for_the_recurrent_cells():
    model = tiny_model("transformer", hidden_size=128, embed_size=128)
    assert (model.config.heads, model.config.window) == (2, 256)  # one head per 64, a window of 256
    with pytest.raises(ValueError, match="heads and window are the transformer's settings: the 'gru' cell takes none"):
        tiny_model("gru", window=16)
    with pytest.raises(ValueError, match="heads >= 1 dividing hidden_size \\(16\\)"):
        tiny_model("transformer", hidden_size=16, heads=3)


def test_a_record_written_before_heads_and_window_existed_still_loads():
    import json
    from pathlib import Path

    path = Path(__file__).parent.parent / "checkpoints" / "gru"  # shipped before the transformer existed
    assert not {"heads", "window"} & set(json.loads((path / "config.json").read_text())["model"])
    config = charrnn.checkpoint.read_record(path)
    model = charrnn.CharRNN(charrnn.ModelConfig(**config["model"]))
    assert (model.config.heads, model.config.window) == (0, 0)


@pytest.mark.parametrize("flags,words", [
    (["--weight-drop", "0.3"], "offered for the rnn, gru, lstm, ln-lstm cells, not 'transformer'"),
    (["--dropout-mask", "sequence"], "offered for the rnn, gru, lstm, ln-lstm cells, not 'transformer'"),
    (["--heads", "3", "--hidden-size", "32"], "the transformer needs heads >= 1 dividing hidden_size (32)")])
def test_what_the_transformer_does_not_take_is_refused_in_one_line(tmp_path, flags, words):
    data = tmp_path / "text.txt"
    data.write_text(TINY_TEXT, encoding="utf-8")
    with pytest.raises(SystemExit) as stop:
        train_script.main(["--cell", "transformer", *flags, "--data", str(data), "--out", str(tmp_path / "o")])
    message = str(stop.value.code)
    assert message.startswith("error: ") and "\n" not in message and words in message


def test_the_transformer_preset_fits_a_shipped_checkpoint_and_reaches_508_characters():
    from charrnn.presets import PRESETS

    vocab = "".join(chr(0x41 + i) for i in range(85))  # the corpus's vocabulary size
    model = charrnn.CharRNN(charrnn.ModelConfig(vocab=vocab, **PRESETS["transformer"]["model"]))
    assert 2 * model.num_params() < 10_000_000  # float16 weights under a checkpoint's 10 MB
    assert model.rnn.horizon == 4 * 127


def test_the_inside_command_records_a_transformer_s_horizon_and_says_it_has_no_units(corpus_file, tmp_path, capsys):
    """The horizon is a gradient with respect to the input, which a transformer has; its units are not read. The
    record, its card and the app's Inside view take a record without units."""
    import json

    from charrnn.cli import main
    from charrnn.training import Run, TrainConfig, train
    from tests.test_inside import ARGS
    from ui.inside import Inside
    from ui.validate import Catalog

    text = corpus_file.read_text(encoding="utf-8")
    train_text, test_text = charrnn.data.split(text)
    model = tiny_model("transformer", text=text, hidden_size=16, num_layers=2, embed_size=16, heads=2, window=6)
    cfg = TrainConfig(batch_size=4, seq_len=16, epochs=1, lr=1e-2, warmup_steps=5, sample_length=10, seed=0,
                      val_chars=500)
    train(model, Run(train_text, test_text, cfg, tmp_path / "t", info={"command": "test"}, progress=False))
    main(["inside", "--checkpoint", str(tmp_path / "t"), "--data", str(corpus_file), *ARGS, "--record"])
    assert "units: not measured (its cell, 'transformer', offers no reading of its hidden units" in capsys.readouterr().out
    inside = json.loads((tmp_path / "t" / "config.json").read_text())["inside"]
    assert set(inside) == {"horizon", "command"} and inside["horizon"]["relative"][0] == 1.0
    # Beyond L (W - 1) + 1 = 11 characters back nothing reaches the prediction: the recorded curve says so.
    assert all(r == 0 for r in inside["horizon"]["relative"][11:]) and inside["horizon"]["relative"][10] > 0
    assert "Its hidden units are not read" in (tmp_path / "t" / "README.md").read_text()
    view = Inside(Catalog({"t": charrnn.load(tmp_path / "t")}))
    assert view.horizon("t")[0][0] == {"k": 1, "relative": 1.0}
    assert "| t |" in view.all_horizons()[1] and "no units to read" in view.all_horizons()[1]
    assert view.unit_options("t") == ([], "0")
