"""Shared fixtures: a tiny French-looking text built here, tiny models trained on it, the app served on them.

No corpus text: the dialogue is drawn at random from a few invented lines' words.
"""
from __future__ import annotations

import random
import shutil
import socket

import pytest
import torch

import charrnn
from charrnn.training import Run, TrainConfig, train

# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine threads that spin-wait for
# each other make a 1-second training take 40.
torch.set_num_threads(1)

SPEAKERS = ["VALÈRE", "DORINE", "HARPAGON", "SGANARELLE", "ÉLISE"]
WORDS = ("je vous dis que la chose est faite monsieur madame mais quoi donc ah eh bien votre fils mon père "
         "n'est pas ici il faut que tu sois plus sage et moi aussi").split()


@pytest.fixture(scope="session")
def tiny_text() -> str:
    """About 8,000 characters of speaker lines and replies, the layout of the corpus."""
    rng = random.Random(0)
    parts = []
    for _ in range(160):
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 10)))
        parts.append(f"{rng.choice(SPEAKERS)}.\n\n{line[0].upper()}{line[1:]}{rng.choice('.!?')}\n\n")
    return "".join(parts)


@pytest.fixture(scope="session")
def tiny_checkpoints(tiny_text, tmp_path_factory) -> dict:
    """Checkpoint directories of a tiny paper RNN and LSTM trained 3 epochs (history and final losses; the
    LSTM held a validation slice out, as the shipped gated models do), and "unfinished": the LSTM's record
    as it is while training runs (status "training", no final)."""
    root = tmp_path_factory.mktemp("checkpoints")
    train_text, test_text = charrnn.data.split(tiny_text)
    vocab = charrnn.Vocab.from_text(tiny_text).chars
    paths = {}
    for cell, extra, val_chars in (("paper", {}, 0), ("lstm", {"embed_size": 8}, 500)):
        model = charrnn.CharRNN(charrnn.ModelConfig(vocab, cell, hidden_size=32, **extra))
        cfg = TrainConfig(batch_size=4, seq_len=32, epochs=3, lr=1e-2, warmup_steps=5, sample_length=60, seed=0,
                          val_chars=val_chars)
        run = Run(train_text, test_text, cfg, root / cell, info={"command": f"tiny {cell}", "device": "cpu"},
                  progress=False)
        train(model, run)
        paths[cell] = root / cell
    model = charrnn.load(paths["lstm"])
    meta = {k: v for k, v in charrnn.record.caller_fields(model.record).items() if k != "final"}
    paths["unfinished"] = charrnn.save(model, root / "unfinished", {**meta, "status": "training"})
    return paths


@pytest.fixture
def corpus_file(tiny_text, tmp_path):
    """The tiny text as a corpus file, for the command lines that read one."""
    path = tmp_path / "corpus.txt"
    path.write_text(tiny_text, encoding="utf-8")
    return path


@pytest.fixture
def lstm_copy(tiny_checkpoints, tmp_path):
    """A copy of the tiny LSTM checkpoint, for a test to record into."""
    return shutil.copytree(tiny_checkpoints["lstm"], tmp_path / "lstm")


@pytest.fixture(scope="session")
def cached_lstm(tiny_checkpoints, tiny_text, tmp_path_factory):
    """A copy of the tiny LSTM's checkpoint with a cache record, made as the shipped ones are (--record)."""
    from charrnn.cli import main

    root = tmp_path_factory.mktemp("cached")
    path = shutil.copytree(tiny_checkpoints["lstm"], root / "lstm")
    (root / "corpus.txt").write_text(tiny_text, encoding="utf-8")
    main(["cache", "--checkpoint", str(path), "--data", str(root / "corpus.txt"), "--theta", "1", "--lam", "0.2",
               "--window", "300", "--record"])
    return path


@pytest.fixture(scope="session")
def app_models(tiny_checkpoints, cached_lstm) -> dict:
    """What the served app offers: the tiny models by the shipped names (the LSTM with a cache record), the
    unfinished one, and an untrained LSTM big enough that a generation lasts seconds (to watch it stream and
    stop it). It has no record at all."""
    slow = charrnn.CharRNN(charrnn.ModelConfig(charrnn.load(tiny_checkpoints["lstm"]).config.vocab, "lstm",
                                               hidden_size=640, num_layers=2, embed_size=16))
    return {"Paper RNN (Mikolov 2010)": charrnn.load(tiny_checkpoints["paper"]),
            "LSTM": charrnn.load(cached_lstm),
            "LSTM (unfinished)": charrnn.load(tiny_checkpoints["unfinished"]),
            "Slow LSTM (untrained)": slow.eval()}


@pytest.fixture(scope="session")
def served_app(app_models):
    """The app launched in this process on a free port; yields its URL."""
    import app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = app.build_app(app_models)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.LAUNCH)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="session")
def inside_lstm(tiny_checkpoints, tiny_text, tmp_path_factory):
    """A copy of the tiny LSTM's checkpoint with an inside record, made as the shipped ones are (--record)."""
    from charrnn.cli import main

    root = tmp_path_factory.mktemp("inside")
    path = shutil.copytree(tiny_checkpoints["lstm"], root / "lstm")
    (root / "corpus.txt").write_text(tiny_text, encoding="utf-8")
    main(["inside", "--checkpoint", str(path), "--data", str(root / "corpus.txt"), "--positions", "8",
          "--max-distance", "16", "--warmup", "8", "--record"])
    return path


@pytest.fixture(scope="session")
def inside_app(inside_lstm, tiny_checkpoints):
    """A page with the Inside view alone over the tiny LSTM (with an inside record) and the tiny paper RNN (with
    none), launched in this process on a free port; yields (its URL, its models)."""
    import gradio as gr

    import app
    from ui.inside import build_inside
    from ui.validate import Catalog

    models = {"LSTM": charrnn.load(inside_lstm), "Paper RNN": charrnn.load(tiny_checkpoints["paper"])}
    catalog = Catalog(models)
    with gr.Blocks() as demo:
        model = gr.Dropdown(catalog.names(), value="LSTM", label="Model", elem_id="model")
        build_inside(catalog, model)
    demo.queue()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.LAUNCH)
    yield f"http://127.0.0.1:{port}/", models
    demo.close()
