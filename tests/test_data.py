import hashlib
import http.server
import threading
from pathlib import Path

import pytest
import torch

from charrnn.data import (DEFAULT_DATA, MOLIERE_SHA256, MOLIERE_URL, Batches, DataError, Vocab, download,
                          download_path, read_text, resolve_corpus, split)


def test_vocab_is_sorted_set_and_roundtrips():
    v = Vocab.from_text("banane à la crème")
    assert v.chars == "".join(sorted(set("banane à la crème")))
    assert v.decode(v.encode("crème à la banane")) == "crème à la banane"
    assert v.encode("ab") == [v.chars.index("a"), v.chars.index("b")]
    with pytest.raises(DataError, match="not in the vocabulary"):
        v.encode("z")


def test_normalize_maps_typography_and_counts_dropped():
    v = Vocab.from_text("Ah! c'est \"bien\"... Non-dit, é\n")
    # ’ -> ', « » -> ", … -> ..., NBSP -> space, decomposed é (e + U+0301) -> NFC é; emoji and 'z' dropped.
    clean, dropped = v.normalize("c’est «bien»… e\u0301\u00a0🎭z")
    assert clean == "c'est \"bien\"... é "
    assert dropped == 2
    assert v.dropped_chars("c’est «bien»… e\u0301\u00a0🎭z") == ["z", "🎭"]


def test_normalize_keeps_variants_the_vocabulary_has():
    v = Vocab.from_text("«ab»")
    assert v.normalize("«a»") == ("«a»", 0)


def test_split_is_first_90_percent():
    text = "".join(chr(65 + i % 26) for i in range(1000))
    train, test = split(text)
    assert len(train) == 900 and len(test) == 100
    assert train + test == text


def test_batches_streams_and_one_step_shift():
    ids = torch.arange(1000)
    b = Batches(ids, batch_size=4, seq_len=10)
    stream_len = 999 // 4
    assert len(b) == stream_len // 10
    x0, y0 = b[0]
    x1, _ = b[1]
    assert x0.shape == y0.shape == (4, 10)
    assert torch.equal(y0, x0 + 1)  # targets are the next character
    assert torch.equal(x1[:, 0], x0[:, -1] + 1)  # row b of batch 1 continues row b of batch 0
    assert torch.equal(x0[:, 0], torch.arange(4) * stream_len)  # streams are contiguous slices
    with pytest.raises(IndexError):
        b[len(b)]


def test_batches_refuses_text_shorter_than_a_batch():
    with pytest.raises(DataError, match="fewer than one batch"):
        Batches(torch.arange(50), batch_size=4, seq_len=16)


def test_bad_files_get_clear_errors(tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Molière".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_text(latin1)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read_text(empty)
    with pytest.raises(DataError, match="no corpus file"):
        resolve_corpus(str(tmp_path / "missing.txt"))


class _Server:
    """An HTTP server of a few files (path -> content) on 127.0.0.1 for the download tests."""

    def __init__(self, files: dict[str, bytes]):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path not in files:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(files[self.path])))
                self.end_headers()
                self.wfile.write(files[self.path])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server({"/moliere.txt": "ACTE I.\n\nSCÈNE I.\n".encode(), "/a/corpus.txt": b"corpus a\n",
                 "/b/corpus.txt": b"corpus b\n", "/x/moliere.txt": b"not the pinned corpus\n"})
    yield s
    s.close()


def test_download_verifies_checksum_and_caches(server, tmp_path):
    body = "ACTE I.\n\nSCÈNE I.\n".encode()
    dest = download(server.url + "/moliere.txt", tmp_path / "c" / "m.txt", hashlib.sha256(body).hexdigest())
    assert dest.read_bytes() == body
    # Through resolve_corpus an URL is cached under cache_dir, and read from there once downloaded.
    path = resolve_corpus(server.url + "/moliere.txt", cache_dir=tmp_path / "cache")
    assert path == download_path(server.url + "/moliere.txt", tmp_path / "cache") and path.read_bytes() == body
    server.close()
    assert resolve_corpus(server.url + "/moliere.txt", cache_dir=tmp_path / "cache") == path


def test_downloads_are_cached_by_address_never_over_the_pinned_corpus(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the default corpus, data/moliere.txt, would be
    a, b = resolve_corpus(server.url + "/a/corpus.txt"), resolve_corpus(server.url + "/b/corpus.txt")
    assert (a.read_bytes(), b.read_bytes()) == (b"corpus a\n", b"corpus b\n")  # two addresses, two files
    x = resolve_corpus(server.url + "/x/moliere.txt")
    assert x.read_bytes() == b"not the pinned corpus\n"
    assert not (tmp_path / DEFAULT_DATA).exists()
    assert {p.parent for p in (a, b, x)} == {Path("data/downloads")}


def test_a_corpus_whose_content_is_known_is_checked_each_time_it_is_used(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / DEFAULT_DATA).write_text("a file put there by hand\n", encoding="utf-8")
    for data in (DEFAULT_DATA, "./" + DEFAULT_DATA):
        with pytest.raises(DataError, match=f"not the expected {MOLIERE_SHA256}: it is not the pinned Molière text"):
            resolve_corpus(data)
    cached = download_path(MOLIERE_URL)  # the public address's download, cached and changed since
    cached.parent.mkdir(parents=True)
    cached.write_text("changed\n", encoding="utf-8")
    with pytest.raises(DataError, match=f"the cached download of {MOLIERE_URL}, has sha256 .* delete it"):
        resolve_corpus(MOLIERE_URL)


def test_download_checksum_mismatch_saves_nothing(server, tmp_path):
    dest = tmp_path / "m.txt"
    with pytest.raises(DataError, match="expected 0000"):
        download(server.url + "/moliere.txt", dest, "0000" + "0" * 60)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a partial download is left


def test_download_unreachable_says_what_to_do(server, tmp_path):
    with pytest.raises(DataError, match="--data PATH"):
        download(server.url + "/nothing-here.txt", tmp_path / "m.txt")
    server.close()
    with pytest.raises(DataError, match="offline"):
        download(server.url + "/moliere.txt", tmp_path / "m.txt", timeout=2)
    assert list(tmp_path.iterdir()) == []
