"""The corpus: fetching it, its vocabulary, the train/test split and the training batches."""
from __future__ import annotations

import hashlib
import os
import tempfile
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

# The public copy named in ../shared/data/README.md, and the checksum that pins its content.
MOLIERE_URL = "https://raw.githubusercontent.com/SimonThomine/CoursDeepLearning/main/fr/05_NLP/moliere.txt"
MOLIERE_SHA256 = "9589b888061b947f572349272728147e6de1c34887a1298c92563e7cb1f10d28"
DEFAULT_DATA = "data/moliere.txt"
START = "\n"  # an empty prompt starts as if after a line break, where the corpus starts its lines
SAMPLE_PROMPT = "HARPAGON.\n\n"  # a speaker line, as the corpus writes them: the model answers in that voice
TRAIN_FRACTION = 0.9  # first 90 % of the characters train, last 10 % test, everywhere in the project


class DataError(ValueError):
    """A corpus that cannot be used; the message says what to do."""


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: str | os.PathLike, sha256: str | None = None, timeout: float = 30.0) -> Path:
    """Download `url` to `dest`, checking `sha256` before the file appears at `dest`.

    The body goes to a temporary file beside `dest` and is renamed into place only once verified,
    so an interrupted or corrupted download never leaves a bad cached corpus behind.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            for block in iter(lambda: resp.read(1 << 16), b""):
                h.update(block)
                out.write(block)
        if sha256 is not None and h.hexdigest() != sha256:
            raise DataError(
                f"the file downloaded from {url} has sha256 {h.hexdigest()}, expected {sha256}; "
                "it was not saved. Check the address, or download the corpus by hand and pass --data PATH."
            )
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError) as e:
        raise DataError(
            f"could not download {url} ({e}). If this machine is offline, copy the corpus here by hand "
            f"and pass --data PATH (docs/training.md gives its address and checksum)."
        ) from e
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def download_path(url: str, cache_dir: str | os.PathLike = "data") -> Path:
    """Where resolve_corpus caches the download of `url`: under cache_dir/downloads/, named by a hash of the
    whole address and the file's name, so that two corpus.txt at two addresses are two files, and no download
    ever lands on the pinned corpus (DEFAULT_DATA)."""
    name = Path(urllib.parse.urlsplit(url).path).name[:100] or "corpus.txt"
    return Path(cache_dir) / "downloads" / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}-{name}"


def _check_sha256(path: Path, expected: str | None, what: str, fix: str) -> None:
    if expected is not None and (actual := sha256_of(path)) != expected:
        raise DataError(f"{path}, {what}, has sha256 {actual}, not the expected {expected}: {fix}")


def resolve_corpus(data: str = DEFAULT_DATA, cache_dir: str | os.PathLike = "data") -> Path:
    """A local path for `data`: the path itself, or the cached download of an http(s) URL (see download_path).

    The default path downloads the Molière corpus from its public address when it is missing. Where the
    content is known (the default path and that address), the file is checked against its sha256 every
    time, cached or not: a file changed since, or put there by hand, is refused rather than trained on.
    """
    if data.startswith(("http://", "https://")):
        dest = download_path(data, cache_dir)
        expected = MOLIERE_SHA256 if data == MOLIERE_URL else None
        if not dest.exists():
            download(data, dest, expected)
        _check_sha256(dest, expected, f"the cached download of {data}", "delete it to download it again")
        return dest
    path = Path(data)
    if path.resolve() == Path(DEFAULT_DATA).resolve():  # the pinned corpus
        if not path.exists():
            download(MOLIERE_URL, path, MOLIERE_SHA256)
        _check_sha256(path, MOLIERE_SHA256, "the default corpus", "it is not the pinned Molière text. Delete it to "
                      "download that again; to train on this file, move it elsewhere and pass --data with its path")
        return path
    if not path.exists():
        raise DataError(f"no corpus file at {data}: pass --data with an existing text file or an http(s) URL")
    return path


def check_same_corpus(path: str | os.PathLike, sha256: str, recorded: dict, whose: str, fix: str) -> None:
    """Refuse the corpus at `path` (its sha256 given) unless it is the text a record's training section
    (`recorded`: its "corpus" and "corpus_sha256") names: `whose` losses, and the splits they were measured on,
    belong to that text. A record that names no checksum (written before they were recorded) is taken at its word.
    """
    expected = recorded.get("corpus_sha256")
    if isinstance(expected, str) and expected != sha256:
        raise DataError(f"{path} (sha256 {sha256[:12]}...) is not the corpus {whose} trained on, "
                        f"{recorded.get('corpus', '?')} (sha256 {expected[:12]}...): {fix}")


def read_text(path: str | os.PathLike) -> str:
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text (byte {e.start}): convert it, e.g. `iconv -t utf-8`") from e
    if not text:
        raise DataError(f"{path} is empty: a corpus needs text to learn from")
    return text


def split(text: str, train_fraction: float = TRAIN_FRACTION) -> tuple[str, str]:
    """First `train_fraction` of the characters is training text, the rest test text."""
    n = int(len(text) * train_fraction)
    return text[:n], text[n:]


def hold_out(train_text: str, val_chars: int = 0, max_chars: int = 0) -> tuple[str, str]:
    """What a run trains on and its validation slice, from the training split.

    The run reads the first `max_chars` characters of the split (all if 0) and holds the last `val_chars`
    of those out (none if 0). Training, the dynamic evaluation and the tests all take the slice from here.
    """
    text = train_text[:max_chars] if max_chars else train_text
    if not 0 <= val_chars < len(text):
        raise ValueError(f"val_chars must be from 0 to {len(text) - 1:,} (the training text's length - 1): "
                         "pass a smaller --val-chars, or 0 to hold no validation slice out")
    return text[: len(text) - val_chars], text[len(text) - val_chars :]


# Typographic variants a visitor's keyboard or word processor produces, mapped to plain forms.
# Each is used only when the vocabulary lacks the variant and has the replacement.
TYPOGRAPHIC = {
    "\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2026": "...", "\u2013": "-", "\u2014": "-", "\u2011": "-",
    "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\t": " ", "\r\n": "\n", "\r": "\n",
}


@dataclass(frozen=True)
class Vocab:
    """Characters <-> integer ids. `chars` is sorted; id i is chars[i]."""

    chars: str

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def stoi(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.chars)}

    def encode(self, text: str) -> list[int]:
        """Ids of `text`, which must use only vocabulary characters (see `normalize` for user text)."""
        stoi = self.stoi
        try:
            return [stoi[c] for c in text]
        except KeyError as e:
            raise DataError(f"character {e.args[0]!r} is not in the vocabulary; normalize user text first") from None

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def _mapped(self, text: str) -> str:
        """NFC, then each typographic variant the vocabulary lacks replaced by a plain form it has."""
        text = unicodedata.normalize("NFC", text)
        vocab = set(self.chars)
        for variant, plain in TYPOGRAPHIC.items():
            if variant in text and variant not in vocab and all(c in vocab for c in plain):
                text = text.replace(variant, plain)
        return text

    def normalize(self, text: str) -> tuple[str, int]:
        """User text made encodable: NFC, typographic variants mapped, other unknown characters dropped.

        Returns (clean text, number of characters dropped), so the caller can say what was lost.
        """
        text, vocab = self._mapped(text), set(self.chars)
        kept = "".join(c for c in text if c in vocab)
        return kept, len(text) - len(kept)

    def dropped_chars(self, text: str) -> list[str]:
        """The distinct characters of `text` that normalize() drops, to name them to the user."""
        return sorted(set(self._mapped(text)) - set(self.chars))


class Batches:
    """B parallel streams over a token sequence, cut into chunks of T for truncated BPTT.

    The text is split into B contiguous streams; batch i holds chunk i of every stream, so row b of
    batch i+1 continues row b of batch i and the hidden state can be carried from one to the next.
    Targets are the inputs shifted by one character.
    """

    def __init__(self, ids: torch.Tensor, batch_size: int, seq_len: int):
        stream_len = (len(ids) - 1) // batch_size
        if stream_len < seq_len:
            need = batch_size * seq_len + 1
            raise DataError(
                f"the training text has {len(ids)} characters, fewer than one batch needs "
                f"({batch_size} streams x {seq_len} steps + 1 = {need}): use more text or a smaller "
                "--batch-size/--seq-len"
            )
        self.seq_len = seq_len
        n = stream_len * batch_size
        self.x = ids[:n].view(batch_size, stream_len)  # (B, L)
        self.y = ids[1 : n + 1].view(batch_size, stream_len)  # (B, L), shifted by one
        self.num_batches = stream_len // seq_len

    def __len__(self) -> int:
        return self.num_batches

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < self.num_batches:
            raise IndexError(i)
        s = slice(i * self.seq_len, (i + 1) * self.seq_len)
        return self.x[:, s], self.y[:, s]  # (B, T), (B, T)
