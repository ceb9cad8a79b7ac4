"""The model as a compressor: the arithmetic coder, exact round trips in every mode, refusals, and the size
the losses predict."""
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import charrnn
from charrnn import compress
from charrnn.arith import MAX_TOTAL, Decoder, Encoder
from charrnn.cli import main
from charrnn.compress import CompressError, compress_text, decompress_text, read_header
from charrnn.data import START, split
from charrnn.scoring import char_losses
from charrnn.testtime import cache, dynamic
from charrnn.testtime.cache import CacheMemory, CachedModel
from tests.helpers import TINY_TEXT, tiny_model
from tests.test_cache import literal_cache_losses

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared/data/moliere.txt"
MODES = [("none", None), ("dynamic", dynamic.Settings(lr=0.5, seq_len=13)),
         ("cache", cache.Settings(theta=2.0, lam=0.3, window=40))]


def peaked_model(text: str = TINY_TEXT):
    """A tiny GRU whose distributions are very sharp (head weights x 30), so that most characters get the
    least frequency the coder allows and a few nearly all of it: the extremes of the frequency tables."""
    model = tiny_model("gru", text=text, embed_size=8)
    with torch.no_grad():
        model.head.weight.mul_(30)
    return model


def random_unicode(rng: random.Random, n: int, vocab: str) -> str:
    """Characters of the vocabulary, mixed with ones outside it: accents, CJK, emoji (outside the BMP),
    controls, a NUL, the last code point."""
    others = "é\u00a0\r\t\x00日本語😀🎭\U0010ffff\u2019«»"
    return "".join(rng.choice(vocab) if rng.random() < 0.7 else rng.choice(others) for _ in range(n))


def test_the_arithmetic_coder_round_trips_and_costs_what_the_frequencies_say():
    rng = random.Random(0)
    for trial in range(50):
        tables, message, ideal = [], [], 0.0
        encoder = Encoder()
        for _ in range(rng.randint(0, 200)):
            freqs = [rng.choice([1, 2, 7, 1000, MAX_TOTAL // 64]) for _ in range(rng.randint(1, 40))]
            cum = [0]
            for f in freqs:
                cum.append(cum[-1] + f)
            s = rng.randrange(len(freqs))
            encoder.encode(cum[s], cum[s + 1], cum[-1])
            tables.append(cum)
            message.append(s)
            ideal += -math.log2(freqs[s] / cum[-1])
        data = encoder.finish()
        decoder = Decoder(data)
        decoded = []
        for cum in tables:
            v = decoder.target(cum[-1])
            s = max(i for i in range(len(cum) - 1) if cum[i] <= v)
            decoder.consume(cum[s], cum[s + 1], cum[-1])
            decoded.append(s)
        assert decoded == message
        assert ideal - 1 <= 8 * len(data) <= ideal + 2 + 8  # two closing bits, a byte's padding
    with pytest.raises(ValueError, match="cumulative"):
        Encoder().encode(3, 3, 10)  # an empty range cannot be coded


@pytest.mark.parametrize("adapt, settings", MODES)
def test_any_text_round_trips_exactly(adapt, settings):
    model = peaked_model()
    rng = random.Random(adapt)
    texts = ["", "A", "😀", "\r\n", TINY_TEXT[:300], random_unicode(rng, 400, model.vocab.chars)]
    texts += [random_unicode(rng, rng.randint(1, 60), model.vocab.chars) for _ in range(10)]
    for text in texts:
        data = compress_text(model, text, adapt, settings)
        assert decompress_text(model, data) == text
    assert decompress_text(model, compress_text(model, texts[-1].encode("utf-8"), adapt, settings)) == texts[-1]


@pytest.mark.skipif(not CORPUS.exists(), reason="the corpus is not beside the project (../shared/data/moliere.txt)")
@pytest.mark.parametrize("adapt, settings", MODES)
def test_a_slice_of_the_corpus_round_trips_exactly(adapt, settings):
    piece = split(CORPUS.read_text(encoding="utf-8"))[1][:20_000]
    model = tiny_model("paper", text=piece[:2_000], hidden_size=24)  # the rest of the slice has characters it lacks
    assert len(set(piece) - set(model.vocab.chars)) > 5
    data = compress_text(model, piece, adapt, settings)
    assert decompress_text(model, data) == piece


def _payload_and_losses(model, text: str, adapt: str, settings):
    """The payload's bytes, and what the test-time reading's per-character losses of the text (read after START,
    in one batched pass, as the checkpoint's figures are) say it should cost, in bytes."""
    data = compress_text(model, text, adapt, settings)
    read = START + text
    if adapt == "none":
        losses = char_losses(model, read)
    elif adapt == "dynamic":
        losses = dynamic.dynamic_char_losses(model, read, settings.lr, settings.seq_len)
    else:
        losses = char_losses(CachedModel(model, settings.theta, settings.lam, settings.window), read)
    return len(read_header(data)[1]), losses.double().sum().item() / math.log(2) / 8


@pytest.mark.parametrize("adapt, settings", MODES)
def test_the_payload_costs_what_the_losses_say_within_a_few_bytes(adapt, settings):
    model = tiny_model("gru", embed_size=8, seed=1)
    payload, expected = _payload_and_losses(model, TINY_TEXT, adapt, settings)
    assert expected > 1000  # a real cost to match
    assert expected - 1 <= payload <= expected + 4  # the escape's possibility (~1 byte), the closing bits


def test_the_adaptive_modes_learn_the_text_as_they_code_it():
    model = tiny_model("gru", embed_size=8, seed=1)
    # A window longer than the text's period (128 characters): the cache holds the last repeat.
    modes = dict(MODES, cache=cache.Settings(theta=2.0, lam=0.3, window=500))
    sizes = {adapt: len(compress_text(model, TINY_TEXT, adapt, settings)) for adapt, settings in modes.items()}
    assert sizes["dynamic"] < 0.8 * sizes["none"]  # the network learns the repeated dialogue
    assert sizes["cache"] < 0.95 * sizes["none"]  # an untrained network's states tell contexts apart only a little


def test_the_cache_memory_computes_the_cache_s_equations_one_character_at_a_time():
    # The ring storage wraps several times over 400 characters and a window of 45.
    model, text = tiny_model("lstm", embed_size=8), TINY_TEXT[:400]
    expected = literal_cache_losses(model, text, theta=0.7, lam=0.3, window=45)
    memory, ids, state, losses = CacheMemory(0.7, 0.3, 45), model.encode(text), None, []
    with torch.no_grad():
        for t in range(len(ids) - 1):
            h, state = model.features(torch.tensor([[ids[t]]]), state)
            p = memory.mix(h[0, 0], torch.softmax(model.readout(h)[0, 0].double(), -1))
            losses.append(-math.log(p[ids[t + 1]]))
            memory.add(h[0, 0], ids[t + 1])
    assert torch.allclose(torch.tensor(losses, dtype=torch.float64), expected, atol=1e-5)


def test_characters_outside_the_vocabulary_cost_little_once_seen():
    model = tiny_model("gru", embed_size=8)
    once = len(compress_text(model, "ARGAN日"))
    often = len(compress_text(model, "ARGAN" + "日" * 200))
    assert often - once < 8  # the first costs its code point (21 bits); each repeat a fraction of a bit


def test_a_file_from_another_checkpoint_is_refused():
    data = compress_text(tiny_model("gru", embed_size=8, seed=0), TINY_TEXT[:200])
    with pytest.raises(CompressError, match="compressed with another checkpoint"):
        decompress_text(tiny_model("gru", embed_size=8, seed=1), data)


def test_a_truncated_or_bit_flipped_file_is_refused_with_a_clear_error():
    model = tiny_model("gru", embed_size=8)
    data = compress_text(model, TINY_TEXT[:300], "cache", cache.Settings(theta=1.0, lam=0.2, window=30))
    for cut in (0, 3, 20, len(data) - 1):
        with pytest.raises(CompressError, match="truncated|not a file written by python -m charrnn compress"):
            decompress_text(model, data[:cut])
    with pytest.raises(CompressError, match="corrupted"):
        decompress_text(model, data + b"\0")
    for i in range(len(data)):  # every byte, header and payload, with one bit flipped
        flipped = bytearray(data)
        flipped[i] ^= 1 << (i % 8)
        with pytest.raises(CompressError, match="corrupted|truncated|not a file written|format version|more than the"):
            decompress_text(model, bytes(flipped))


def test_a_decoder_whose_probabilities_differ_says_so(monkeypatch):
    # What a decoder on other arithmetic would do: the CRC is fine, the text decoded is not the one coded.
    model = tiny_model("gru", embed_size=8)
    data = compress_text(model, TINY_TEXT[:300])
    monkeypatch.setattr(compress.Static, "_step", lambda self, i: (setattr(self, "p", torch.full((len(model.vocab),),
                                                                                                1 / len(model.vocab)))))
    # (it runs out of code before the text's end, which a decoder on differing arithmetic may do too)
    with pytest.raises(CompressError, match="(does not match the file's checksum|the code ends before).*torch"):
        decompress_text(model, data)


def test_bad_input_says_what_to_do():
    model = tiny_model("gru", embed_size=8)
    with pytest.raises(CompressError, match="not UTF-8 text \\(byte 3"):
        compress_text(model, b"abc\xff")
    with pytest.raises(CompressError, match="lone surrogate"):
        compress_text(model, "ab\ud800")
    with pytest.raises(CompressError, match="records no dynamic settings: run python -m charrnn dynamic"):
        compress_text(model, "ARGAN", "dynamic")
    with pytest.raises(CompressError, match="unknown adaptation"):
        compress_text(model, "ARGAN", "zip")
    with pytest.raises(CompressError, match="lam"):
        compress_text(model, "ARGAN", "cache", cache.Settings(theta=1.0, lam=1.5))


def test_the_file_carries_the_recorded_settings_and_the_model_is_unchanged(cached_lstm):
    model = charrnn.load(cached_lstm)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = compress_text(model, TINY_TEXT[:200], "cache")
    header, _ = read_header(data)
    reading = model.record["final"]["cache"]
    assert header.settings == {k: reading[k] for k in ("theta", "lam", "window")}
    # The checkpoint's name, never its path (the directory's absolute path is nowhere in the file)
    assert header.checkpoint == {"dir": "lstm"} and header.chars == 200 and header.adapt == "cache"
    assert str(cached_lstm.parent).encode() not in data and header.version == 2
    assert header.weights_sha256 == charrnn.data.sha256_of(cached_lstm / "model.safetensors")
    compress_text(model, TINY_TEXT[:200], "dynamic", dynamic.Settings(lr=1.0, seq_len=10))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_cli_round_trip_decoded_in_another_process(lstm_copy, corpus_file, tmp_path, capsys):
    # The dynamic model, the hardest to repeat: a fresh process (PyTorch's default thread count, not the
    # tests' one) decodes what this one encoded, the checkpoint found from the file: the directory it names
    # (lstm), from the folder that holds it, though the project ships another lstm.
    main(["dynamic", "--checkpoint", str(lstm_copy), "--data", str(corpus_file), "--lr", "0.05", "--record"])
    text = "HARPAGON.\n\nÔ ciel! mon pauvre argent, 日本, 😀.\r\n" * 8
    (tmp_path / "in.txt").write_bytes(text.encode())
    main(["compress", str(tmp_path / "in.txt"), str(tmp_path / "in.crnz"), "--checkpoint", str(lstm_copy),
          "--adapt", "dynamic"])
    assert f"{len(text):,} characters" in capsys.readouterr().out
    done = subprocess.run([sys.executable, "-m", "charrnn", "decompress", "in.crnz", "out.txt"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.txt").read_bytes() == text.encode()


def test_cli_refuses_a_bad_file_and_leaves_the_output_alone(tiny_checkpoints, tmp_path):
    (tmp_path / "in.txt").write_text("ARGAN.\n\nBonjour.\n")
    main(["compress", str(tmp_path / "in.txt"), str(tmp_path / "in.crnz"), "--checkpoint", str(tiny_checkpoints["lstm"])])
    good = (tmp_path / "in.crnz").read_bytes()
    (tmp_path / "in.crnz").write_bytes(good[:-2])
    (tmp_path / "out.txt").write_text("kept")
    with pytest.raises(SystemExit, match="error: the file is truncated"):
        main(["decompress", str(tmp_path / "in.crnz"), str(tmp_path / "out.txt")])
    (tmp_path / "in.crnz").write_bytes(good)
    with pytest.raises(SystemExit, match="error: the file was compressed with another checkpoint"):
        main(["decompress", str(tmp_path / "in.crnz"), str(tmp_path / "out.txt"), "--checkpoint",
              str(tiny_checkpoints["paper"])])
    assert (tmp_path / "out.txt").read_text() == "kept" and sorted(p.name for p in tmp_path.iterdir()) == [
        "in.crnz", "in.txt", "out.txt"]
    (tmp_path / "latin1.txt").write_bytes("Molière".encode("latin-1"))
    with pytest.raises(SystemExit, match="not UTF-8 text"):
        main(["compress", str(tmp_path / "latin1.txt"), str(tmp_path / "x.crnz"), "--checkpoint",
              str(tiny_checkpoints["lstm"])])


def test_the_bench_s_best_mode_is_one_the_coder_can_repeat():
    """A checkpoint may record readings the coder cannot repeat (Krause's, the combination): "best" is the
    lowest on the tuning text of those it can (seen failing: the bench asked the coder for "combined")."""
    from charrnn.bench.compress import best_adaptive

    def reading(nats):
        return {"label": "a reading", "about": "what it is", "tuning": {"0.1": nats}, "test": {"nats": nats}}

    record = {"final": {"test": {"nats": 1.3}, "dynamic": reading(0.99), "cache": reading(0.98),
                        "krause": reading(0.97), "combined": reading(0.95)}}
    assert best_adaptive(record) == "cache"
    record["final"]["dynamic"] = reading(0.97)
    assert best_adaptive(record) == "dynamic"
    assert best_adaptive({"final": {"test": {"nats": 1.3}, "krause": reading(0.9)}}) is None
