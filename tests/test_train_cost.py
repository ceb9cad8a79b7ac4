"""The training-cost sweep (python -m charrnn bench train --sequence-lengths): a row per model, batch size and
sequence length, recorded as JSON, and the Learning view's drawing of it."""
from __future__ import annotations

import json

import pytest

from charrnn.bench import train as bench

TINY = {"GRU (sequential)": dict(cell="gru", hidden_size=8, num_layers=1, embed_size=4),
        "minGRU (parallel scan)": dict(cell="mingru", hidden_size=8, num_layers=1, embed_size=4),
        "transformer": dict(cell="transformer", hidden_size=8, num_layers=1, embed_size=8, heads=2)}


def test_the_sweep_times_every_model_at_every_batch_size_and_length_and_records_it(tmp_path, capsys):
    out = bench.bench_sweep([4, 8], [1, 2], steps=1, record=str(tmp_path / "cost.json"), models=TINY)
    rows = json.loads((tmp_path / "cost.json").read_text())["rows"]
    assert rows == out["rows"]
    assert [(r["model"], r["batch_size"], r["seq_len"]) for r in rows] == [
        (m, b, t) for m in TINY for b in (1, 2) for t in (4, 8)]
    for r in rows:
        assert r["chars_s"] > 0 and r["step_s"] == pytest.approx(r["batch_size"] * r["seq_len"] / r["chars_s"], rel=1e-3)
        assert 0 < r["share"] and r["gflops"] == pytest.approx(6 * r["weights"] * r["chars_s"] / 1e9, rel=1e-3)
    printed = capsys.readouterr().out
    assert "matrix multiply (2048^3 fp32)" in printed and "| transformer |" in printed and "| 2 x 8 |" in printed


def test_the_sweep_models_have_about_the_same_number_of_weights():
    from charrnn.model import CharRNN, ModelConfig

    counts = [CharRNN(ModelConfig(vocab=bench.VOCAB, **dict(m, window=64) if m["cell"] == "transformer" else m))
              .num_weights() for m in bench.SWEEP_MODELS.values()]
    assert max(counts) / min(counts) < 1.05


def test_bad_lengths_are_refused_in_one_line():
    from charrnn.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["bench", "train", "--sequence-lengths", "0,64"])
    assert "--sequence-lengths and --batch-sizes take numbers of at least 1" in str(stop.value.code)


def test_the_learning_view_draws_the_recorded_sweep_and_nothing_without_one(tmp_path, tiny_checkpoints):
    import charrnn
    from ui.learned import Learned
    from ui.validate import Catalog

    view = Learned(Catalog({"paper": charrnn.load(tiny_checkpoints["paper"])}))
    assert view.train_cost(tmp_path / "none.json") == ("", "")
    rows = [{"model": m, "weights": 10, "batch_size": b, "seq_len": t, "step_s": 0.1, "chars_s": 100.0 * t, "gflops": 1}
            for m in ("GRU (sequential)", "transformer") for b in (1, 64) for t in (64, 128, 256)]
    (tmp_path / "cost.json").write_text(json.dumps({"date": "2026-12-06", "threads": 2, "rows": rows}))
    svg, caption = view.train_cost(tmp_path / "cost.json")
    assert svg.count("<figure class='panel'>") == 2 and svg.count("<polyline") == 4
    assert "batch of 1" in svg and "batch of 64" in svg and "GRU (sequential)" in svg
    assert "2026-12-06" in caption and "2 CPU thread(s)" in caption
