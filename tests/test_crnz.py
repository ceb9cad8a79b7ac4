"""Compressed files as the untrusted input they are (issue 28): crafted headers and metadata, files that claim
more than they hold, outputs that are the input, symlinks, FIFOs and pipes, and where the checkpoint is found.
Most cases run in this process on a tiny model; those a user meets at the command line run it."""
import json
import os
import re
import resource
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest

import charrnn
from charrnn import crnz, hub
from charrnn.arith import Decoder, Encoder, Overrun
from charrnn.cli import main
from charrnn.compress import CompressError, compress_text, decompress_text, read_header
from charrnn.testtime import cache, dynamic
from tests.helpers import TINY_TEXT, tiny_model

ROOT = Path(__file__).resolve().parents[1]
TEXT = TINY_TEXT[:60] + "日"  # a character outside the vocabulary: the escapes' code too
MODES = {"none": None, "dynamic": dynamic.Settings(lr=0.1, seq_len=7), "cache": cache.Settings(theta=1.0, lam=0.2,
                                                                                                  window=30)}
SAME_MEANING = re.compile(r": checkpoint|: torch = 2\.0$|^none: settings = \{\}$|^(\w+): adapt \1$")
MEMORY = 1536 * 2**20  # address space for a command: what importing torch and a tiny model need, not more


def craft(data: bytes, meta=None, raw_meta: bytes | None = None, payload: bytes | None = None, **fields) -> bytes:
    """`data` with header fields (version, weights, text, chars, n_payload, n_meta), the metadata (a value to
    serialise, or raw bytes) or the payload replaced, the lengths following unless given, the CRC recomputed."""
    head = dict(zip(("magic", "version", "crc", "weights", "text", "chars", "n_payload", "n_meta"),
                    crnz.FIXED.unpack_from(data)))
    old_meta = data[crnz.FIXED.size : crnz.FIXED.size + head["n_meta"]]
    old_payload = data[crnz.FIXED.size + head["n_meta"] :]
    if meta is not None:
        raw_meta = json.dumps(meta).encode()
    raw_meta = old_meta if raw_meta is None else raw_meta
    payload = old_payload if payload is None else payload
    head.update(n_meta=len(raw_meta), n_payload=len(payload))
    head.update(fields)
    rest = crnz.FIXED.pack(*head.values())[9:] + raw_meta + payload
    return head["magic"] + bytes([head["version"]]) + struct.pack("<I", zlib.crc32(rest)) + rest


def meta_of(data: bytes) -> dict:
    n_meta = crnz.FIXED.unpack_from(data)[-1]
    return json.loads(data[crnz.FIXED.size : crnz.FIXED.size + n_meta])


WRONG = [None, True, 0, -1, 2.5, 1e308, -1e308, 10**30, -(10**30), 10**400, "", "x" * 300, "2.0", [], [1, 2], {},
         {"a": 1}]
SETTING_VALUES = [0, -5, 200_001, 400_000_000, 2**63, 1e308, 30.0, 0.5, float(2**70), 10**400, "1", None, True, []]


def crafted_files(files: dict[str, bytes]) -> list[tuple[str, bytes]]:
    """A few hundred files made from good ones: every header field and metadata key replaced by wrong types,
    huge and negative values; the metadata replaced whole; the payload cut, replaced or padded."""
    cases = []
    good = files["cache"]
    size = len(read_header(good)[1])
    for version in (0, 1, 3, 255):
        cases.append((f"version {version}", craft(good, version=version)))
    for chars in (0, 1, 10, 60, 62, 100_000, 4_999_999, 5_000_001, 10**12, 2**63, 2**64 - 1):
        for mode, data in files.items():
            cases.append((f"{mode}: chars {chars}", craft(data, chars=chars)))
    for n in (0, 1, size - 1, size + 1, 2**32, 2**64 - 1):
        cases.append((f"payload length {n}", craft(good, n_payload=n)))
    for n in (0, 1, 2, len(json.dumps(meta_of(good))) + 1, 4097, 65535):
        cases.append((f"metadata length {n}", craft(good, n_meta=n)))
    cases += [("weights sha256", craft(good, weights=b"\1" * 32)), ("text sha256", craft(good, text=b"\1" * 32))]
    for raw in (b"", b"[]", b'"x"', b"5", b"null", b"{}", b"[1, 2]", b"\xff\xfe", b"{", b'{"adapt": NaN}',
                b"[" * 3000 + b"]" * 1000, b'{"adapt": "none", "adapt": "none", "settings": {}, "checkpoint": {}, '
                                          b'"torch": "2"}'):
        cases.append((f"metadata {raw[:20]!r}", craft(good, raw_meta=raw)))
    for mode, data in files.items():
        meta = meta_of(data)
        for key in meta:
            cases.append((f"{mode}: no {key}", craft(data, meta={k: v for k, v in meta.items() if k != key})))
            for value in WRONG:
                cases.append((f"{mode}: {key} = {str(value)[:20]}", craft(data, meta={**meta, key: value})))
        cases.append((f"{mode}: an extra key", craft(data, meta={**meta, "extra": 1})))
        for key in meta["settings"]:
            for value in SETTING_VALUES:
                settings = {**meta["settings"], key: value}
                cases.append((f"{mode}: {key} = {str(value)[:20]}", craft(data, meta={**meta, "settings": settings})))
            settings = {k: v for k, v in meta["settings"].items() if k != key}
            cases.append((f"{mode}: no {key}", craft(data, meta={**meta, "settings": settings})))
        cases.append((f"{mode}: an extra setting", craft(data, meta={**meta, "settings": {**meta["settings"], "x": 1}})))
        for adapt in ("none", "dynamic", "cache", "krause", "combined"):
            cases.append((f"{mode}: adapt {adapt}", craft(data, meta={**meta, "adapt": adapt})))
        for origin in ({"dir": "../x"}, {"dir": "/abs/x"}, {"dir": ""}, {"hub": "no id"}, {"hub": "a/b/c"},
                       {"dir": "a", "hub": "b/c"}, {"x": "y"}, {"dir": 5}, {"dir": "tiny"}, {"hub": "user/tiny"}):
            cases.append((f"{mode}: checkpoint {origin}", craft(data, meta={**meta, "checkpoint": origin})))
        payload = read_header(data)[1]
        for name, new in (("cut", payload[: len(payload) // 2]), ("one byte", payload[:1]), ("zeros", bytes(len(payload))),
                          ("ones", b"\xff" * len(payload)), ("doubled", payload * 2), ("reversed", payload[::-1])):
            cases.append((f"{mode}: payload {name}", craft(data, payload=new)))
    return cases


@pytest.fixture(scope="module")
def tiny():
    """A tiny GRU and a good file of TEXT in each mode."""
    model = tiny_model("gru", embed_size=8)
    return model, {mode: compress_text(model, TEXT, mode, settings) for mode, settings in MODES.items()}


@pytest.fixture(scope="module")
def tiny_dir(tiny, tmp_path_factory):
    """The tiny model as a checkpoint directory named "tiny", and a file of TEXT it compressed (static)."""
    root = tmp_path_factory.mktemp("tiny")
    charrnn.save(tiny[0], root / "tiny", {})
    (root / "text.crnz").write_bytes(compress_text(charrnn.load(root / "tiny"), TEXT))
    return root


def run_cli(*args, cwd=ROOT, input=None, memory=MEMORY, env=None):
    """`python -m charrnn ARGS` in a process of its own, its address space limited to `memory`."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run([sys.executable, "-m", "charrnn", *map(str, args)], cwd=cwd, input=input, capture_output=True,
                          preexec_fn=limit, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def refused(*argv, match: str) -> None:
    """`python -m charrnn ARGV`, run in this process, ends in one line on stderr (SystemExit) matching `match`."""
    with pytest.raises(SystemExit, match=match):
        main([str(a) for a in argv])


@pytest.fixture
def no_hub(monkeypatch):
    """Any download from the Hub fails the test: a name out of a file is never fetched."""
    def fetch(*args, **kwargs):
        raise AssertionError(f"the Hub was asked for {args}")

    monkeypatch.setattr(hub, "download_checkpoint", fetch)


def assert_refused(done, match: str) -> None:
    stderr = done.stderr.decode()
    assert done.returncode == 1 and "Traceback" not in stderr, stderr
    last = stderr.replace("\r", "\n").strip().splitlines()[-1]  # after a progress bar, if one was drawn
    assert last.startswith("error: ") and match in last, stderr


def test_the_decoder_stops_once_it_reads_32_bits_past_the_code():
    encoder = Encoder()
    for s in (3, 1, 4, 1, 5):
        encoder.encode(s, s + 1, 8)
    data = encoder.finish()
    decoder = Decoder(data)
    for s in (3, 1, 4, 1, 5):  # the message itself decodes, within its bits and 30 more
        assert decoder.target(8) == s
        decoder.consume(s, s + 1, 8)
    assert decoder.read_all and decoder.pos <= 8 * len(data) + 30
    with pytest.raises(Overrun):
        for _ in range(100):  # 3 bits a symbol: past 32 bits beyond the end within 11 symbols
            decoder.consume(0, 1, 8)
    assert decoder.pos == 8 * len(data) + 33


def test_a_file_claiming_more_characters_than_its_code_holds_stops_at_once(tiny):
    model, files = tiny
    for mode, data in files.items():
        t = time.perf_counter()
        with pytest.raises(CompressError, match="the code ends before the 4,000,000 characters"):
            decompress_text(model, craft(data, chars=4_000_000))
        assert time.perf_counter() - t < 2


def test_the_maximum_of_characters_is_the_default_and_raised_by_max_chars(tiny, tiny_dir, tmp_path):
    model, files = tiny
    with pytest.raises(CompressError, match="1,000,000,000,000 characters, more than the 5,000,000 allowed: if you "
                                            "trust it, raise --max-chars"):
        decompress_text(model, craft(files["none"], chars=10**12))
    with pytest.raises(CompressError, match="61 characters, more than the 60 allowed"):
        decompress_text(model, files["none"], max_chars=60)
    with pytest.raises(CompressError, match="more than the 60 allowed: raise --max-chars"):
        compress_text(model, TEXT, max_chars=60)
    assert decompress_text(model, files["none"], max_chars=61) == TEXT
    # At the command line: the flag that raises the bound
    (tmp_path / "text.txt").write_text(TEXT)
    refused("compress", tmp_path / "text.txt", tmp_path / "out.crnz", "--checkpoint", tiny_dir / "tiny", "--max-chars",
            60, match="error: the text has 61 characters, more than the 60 allowed: raise --max-chars")
    refused("decompress", tiny_dir / "text.crnz", tmp_path / "out.txt", "--max-chars", 60,
            match="error: the file holds 61 characters, more than the 60 allowed")
    assert sorted(os.listdir(tmp_path)) == ["text.txt"]


def test_every_crafted_file_gets_a_clear_error_quickly(tiny):
    """The fuzz test: each crafted file decodes to the text (only a change that keeps its meaning can: the torch
    version, the checkpoint's name, an adaptation or its settings written as they were) or is refused with a CompressError, in well under 2 s; never another exception."""
    model, files = tiny
    cases = crafted_files(files)
    assert len(cases) > 300
    refused, slowest = 0, 0.0
    for name, data in cases:
        t = time.perf_counter()
        try:
            assert decompress_text(model, data) == TEXT, name
            assert SAME_MEANING.search(name), name
        except CompressError as e:
            refused += 1
            assert "\n" not in str(e), name
        slowest = max(slowest, time.perf_counter() - t)
        assert time.perf_counter() - t < 2, name
    assert refused > 0.9 * len(cases)
    print(f"{len(cases)} crafted files, {refused} refused, the slowest in {slowest:.2f} s")


@pytest.mark.parametrize("name, change", [
    ("cache window 400,000,000", lambda d: craft(d, meta={**meta_of(d), "settings": {"theta": 1.0, "lam": 0.2,
                                                                                      "window": 400_000_000}})),
    ("no adapt key", lambda d: craft(d, meta={k: v for k, v in meta_of(d).items() if k != "adapt"})),
    ("metadata a list", lambda d: craft(d, meta=[1, 2])),
    ("a string theta", lambda d: craft(d, meta={**meta_of(d), "settings": {"theta": "1", "lam": 0.2, "window": 30}})),
    ("10^12 characters", lambda d: craft(d, chars=10**12)),
    ("a payload of 2^60 bytes", lambda d: craft(d, n_payload=2**60)),
])
def test_a_crafted_file_is_refused_at_the_command_line_within_bounded_memory(tiny, tiny_dir, tmp_path, name, change):
    data = change(tiny[1]["cache"])
    (tmp_path / "crafted.crnz").write_bytes(data)
    t = time.perf_counter()
    done = run_cli("decompress", tmp_path / "crafted.crnz", tmp_path / "out.txt", "--checkpoint", tiny_dir / "tiny")
    assert_refused(done, "")
    assert time.perf_counter() - t < 60 and not (tmp_path / "out.txt").exists()


def test_neither_command_reads_an_endless_input_whole(tiny_dir, tmp_path):
    t = time.perf_counter()
    assert_refused(run_cli("decompress", "/dev/zero", tmp_path / "out.txt"), "not a file written by python -m charrnn")
    assert_refused(run_cli("compress", "/dev/zero", tmp_path / "out.crnz", "--checkpoint", tiny_dir / "tiny"),
                   "longer than 5,000,000 characters can be: raise --max-chars")
    # A header that says more code follows than an endless stream holds: refused before reading it
    header = craft((tiny_dir / "text.crnz").read_bytes(), n_payload=2**40)[: crnz.FIXED.size]
    done = subprocess.run(f"(cat; cat /dev/zero) | {sys.executable} -m charrnn decompress - {tmp_path / 'out.txt'} "
                          f"--checkpoint {tiny_dir / 'tiny'}", shell=True, input=header, capture_output=True, cwd=ROOT,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY)), timeout=120)
    assert_refused(done, "corrupted or crafted")
    assert time.perf_counter() - t < 60 and os.listdir(tmp_path) == []


def test_the_output_is_never_the_input(tiny_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "same.txt").write_text(TEXT)
    (tmp_path / "link.txt").symlink_to(tmp_path / "same.txt")
    os.link(tmp_path / "same.txt", tmp_path / "hard.txt")
    for out in ("same.txt", "link.txt", "hard.txt"):
        refused("compress", "same.txt", out, "--checkpoint", tiny_dir / "tiny",
                match=f"error: {out} is the input file same.txt itself")
    assert (tmp_path / "same.txt").read_text() == TEXT and (tmp_path / "link.txt").is_symlink()
    (tmp_path / "text.crnz").write_bytes((tiny_dir / "text.crnz").read_bytes())
    refused("decompress", "text.crnz", "text.crnz", "--checkpoint", tiny_dir / "tiny", match="is the input file")
    assert (tmp_path / "text.crnz").read_bytes() == (tiny_dir / "text.crnz").read_bytes()


def test_a_symlinked_output_is_followed_and_a_fifo_written_directly(tiny_dir, tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "to-fifo").symlink_to(tmp_path / "fifo")
    (tmp_path / "to-file").symlink_to(tmp_path / "file.txt")
    received = []
    reader = threading.Thread(target=lambda: received.append((tmp_path / "fifo").read_bytes()))
    reader.start()
    try:
        main(["decompress", str(tiny_dir / "text.crnz"), str(tmp_path / "to-fifo"), "--checkpoint", str(tiny_dir / "tiny")])
    finally:
        if reader.is_alive():  # the FIFO never written (main failed first): open it so that the reader ends
            try:  # without blocking: a reader that has read already and is ending waits for no writer
                os.close(os.open(tmp_path / "fifo", os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # ENXIO: no reader has the FIFO open any more
                pass
        reader.join(timeout=60)
    assert received == [TEXT.encode()]
    assert (tmp_path / "to-fifo").is_symlink() and (tmp_path / "fifo").is_fifo()
    main(["decompress", str(tiny_dir / "text.crnz"), str(tmp_path / "to-file"), "--checkpoint", str(tiny_dir / "tiny")])
    assert (tmp_path / "to-file").is_symlink() and (tmp_path / "file.txt").read_text() == TEXT
    assert sorted(os.listdir(tmp_path)) == ["fifo", "file.txt", "to-fifo", "to-file"]  # no temporary left


def test_standard_input_and_output(tiny_dir):
    packed = run_cli("compress", "-", "-", "--checkpoint", tiny_dir / "tiny", input=TEXT.encode())
    assert packed.returncode == 0 and packed.stdout.startswith(b"CRNZ"), packed.stderr.decode()
    assert "61 characters" in packed.stderr.decode()  # the summary on stderr, the file alone on stdout
    done = run_cli("decompress", "-", "-", "--checkpoint", tiny_dir / "tiny", input=packed.stdout)
    assert done.returncode == 0 and done.stdout == TEXT.encode(), done.stderr.decode()


def test_the_file_names_the_checkpoint_s_directory_never_its_path_nor_a_hub_id_it_fetches(tiny_dir, tmp_path, no_hub,
                                                                                         monkeypatch):
    data = (tiny_dir / "text.crnz").read_bytes()
    assert read_header(data)[0].checkpoint == {"dir": "tiny"} and str(tiny_dir).encode() not in data
    # From the folder that holds it, found by its name; from another, not fetched: --checkpoint says where
    monkeypatch.chdir(tiny_dir)
    main(["decompress", str(tiny_dir / "text.crnz"), str(tmp_path / "out.txt")])
    assert (tmp_path / "out.txt").read_text() == TEXT
    monkeypatch.chdir(tmp_path)
    refused("decompress", tiny_dir / "text.crnz", "o2.txt",
            match=r"error: the file was compressed with a directory named tiny \(weights sha256 .*, and it is not here: "
                  "pass --checkpoint")
    (tmp_path / "hub.crnz").write_bytes(craft(data, meta={**meta_of(data), "checkpoint": {"hub": "someone/tiny"}}))
    refused("decompress", "hub.crnz", "o3.txt",
            match="the Hub model someone/tiny, which is downloaded only if you name it: pass --checkpoint someone/tiny")
    # --checkpoint is checked against the weights' sha256 the file holds
    charrnn.save(tiny_model("gru", embed_size=8, seed=1), tmp_path / "other", {})
    refused("decompress", "hub.crnz", "o4.txt", "--checkpoint", "other",
            match=r"compressed with another checkpoint \(the Hub model someone/tiny\)")
    assert sorted(os.listdir(tmp_path)) == ["hub.crnz", "other", "out.txt"]


def test_a_file_of_the_shipped_seed_decompresses_from_another_folder(tmp_path):
    # The case: a file compressed with checkpoints/seed, decompressed elsewhere, asked the Hub for a repo
    # named checkpoints/seed; now it names the directory "seed", found among the shipped checkpoints.
    data = compress_text(charrnn.load(ROOT / "checkpoints/seed"), "ARGAN.\n\nMon ami.\n")
    (tmp_path / "seed.crnz").write_bytes(data)
    done = run_cli("decompress", "seed.crnz", "seed.txt", cwd=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0 and (tmp_path / "seed.txt").read_text() == "ARGAN.\n\nMon ami.\n", done.stderr.decode()


def version_1(data: bytes, typed: str) -> bytes:
    """A version 1 file of the same text: the same payload, "checkpoint" the name that was typed."""
    return craft(data, meta={**meta_of(data), "checkpoint": typed}, version=1)


def test_files_of_version_1_still_decompress_with_the_same_checks(tiny, tiny_dir, tmp_path, no_hub, monkeypatch):
    model, files = tiny
    for mode, data in files.items():
        assert decompress_text(model, version_1(data, "checkpoints/tiny")) == TEXT
    old = version_1(files["cache"], "x")
    with pytest.raises(CompressError, match="window must be 1 to 200,000"):
        decompress_text(model, craft(old, meta={**meta_of(old), "settings": {"theta": 1, "lam": 0.2,
                                                                              "window": 400_000_000}}))
    # The typed path, relative, is looked for from here; a Hub id or an absolute path never leaves this machine
    (tmp_path / "v1.crnz").write_bytes(version_1((tiny_dir / "text.crnz").read_bytes(), "tiny"))
    monkeypatch.chdir(tiny_dir)
    main(["decompress", str(tmp_path / "v1.crnz"), str(tmp_path / "v1.txt")])
    assert (tmp_path / "v1.txt").read_text() == TEXT
    monkeypatch.chdir(tmp_path)
    for typed in ("someone/elsewhere", "/nowhere/at/all"):
        (tmp_path / "v1.crnz").write_bytes(version_1((tiny_dir / "text.crnz").read_bytes(), typed))
        refused("decompress", "v1.crnz", "o.txt", match="it is not here: pass --checkpoint")


def test_a_model_from_the_hub_is_named_by_its_id_and_fetched_only_when_the_user_names_it(tiny_dir, tmp_path,
                                                                                         monkeypatch):
    asked = []
    monkeypatch.setattr(hub, "download_checkpoint", lambda repo_id, revision=None: asked.append(repo_id) or
                        tiny_dir / "tiny")  # a stand-in Hub that holds the tiny model
    monkeypatch.chdir(tmp_path)
    data = compress_text(charrnn.load("someone/tiny"), TEXT)
    assert read_header(data)[0].checkpoint == {"hub": "someone/tiny"} and asked == ["someone/tiny"]
    (tmp_path / "hub.crnz").write_bytes(data)
    refused("decompress", "hub.crnz", "out.txt", match="pass --checkpoint someone/tiny")
    assert asked == ["someone/tiny"]
    main(["decompress", "hub.crnz", "out.txt", "--checkpoint", "someone/tiny"])
    assert (tmp_path / "out.txt").read_text() == TEXT and asked == ["someone/tiny"] * 2
