"""The model as a compressor: an arithmetic coder driven by the model's next-character distribution, so
that a text costs, in bits, what its loss says (Shannon): -log2 p of each character, plus a header.

The encoder and the decoder must compute the *same* probabilities, bit for bit, or the decoder reads
garbage. So both step the model one character at a time (a batched call may round differently from a
one-character one), on one CPU thread with oneDNN off, and turn each distribution into integer
frequencies by the same float64 arithmetic (every symbol at least 1). With `adapt`, both repeat the same
adaptation: "dynamic" takes training.train_step on each segment once it is coded (testtime.dynamic),
"cache" remembers each output with its follower (testtime.cache.CacheMemory), with the settings the
checkpoint recorded, which the file carries.

Characters outside the vocabulary are coded exactly: an escape symbol, whose probability follows how
often escapes came so far, then the character among those escaped before or, when new, its code point.
The model reads only the vocabulary's characters; an escaped one leaves its state as it was.

The file (charrnn.crnz): a header with the weights' and the text's sha256, the text's length, the
adaptation with its settings and where the checkpoint came from, then the payload. Decoding checks the
header whole before it loads or allocates anything, the weights (another checkpoint), stops if the code
runs out before the text does, and checks the text's sha256 at the end (a decoder whose arithmetic
differed from the encoder's), so it fails with an error, never with garbage text.
"""
from __future__ import annotations

import bisect
import copy
import dataclasses
import hashlib
import io
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import save as safetensors_bytes

from . import crnz
from .arith import MAX_TOTAL, Decoder, Encoder, Overrun
from .checkpoint import CheckpointError, read_record
from .crnz import ADAPT, MAX_CHARS, CompressError, Header
from .data import START
from .testtime import METHODS, cache
from .training import train_step

TOTAL = 1 << 24  # a frequency table's total: symbols below 1/TOTAL cost a little extra, ~V/TOTAL nats/char
CODE_POINTS = 0x110000  # a new escaped character is coded as its code point, uniformly
PROGRESS_EVERY = 1024  # characters between two calls of a progress callback
assert TOTAL <= MAX_TOTAL and CODE_POINTS <= MAX_TOTAL


def weights_sha256(model) -> str:
    """sha256 of `model`'s weights as checkpoint.save writes them in the checkpoint's storage type: for a
    loaded checkpoint, the sha256 of its model.safetensors."""
    dtype = getattr(torch, model.record.get("dtype", "float32"))
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    return hashlib.sha256(safetensors_bytes(tensors, metadata={"format": "pt"})).hexdigest()


def adapt_settings(model, adapt: str, settings=None) -> dict:
    """The settings of adaptation `adapt`: `settings` (a testtime Settings) if given, else the checkpoint's
    recorded reading (final[adapt]), as a dict; {} for "none"."""
    if adapt not in ADAPT:
        raise CompressError(f"unknown adaptation {adapt!r}: choose one of {', '.join(ADAPT)}")
    if adapt == "none":
        return {}
    if settings is None:
        reading = (model.record.get("final") or {}).get(adapt)
        if not reading:
            raise CompressError(f"this checkpoint records no {adapt} settings: run python -m charrnn {adapt} "
                                f"--checkpoint DIR --record first, or compress with --adapt none")
        settings = METHODS[adapt].settings_of(reading)
    return crnz.check_settings(adapt, dataclasses.asdict(settings))  # what decompress will accept


# Predictors: the distribution (V,) float64 of the next character of the vocabulary, one character at a time.
class Static:
    """The stored weights read one character at a time."""

    def __init__(self, model, first: int):
        self.model, self.state = model, None
        self._step(first)

    def _step(self, i: int) -> None:
        logits, self.state = self.model(torch.tensor([[i]]), self.state)  # (1, 1, V)
        self.p = torch.softmax(logits[0, 0].double(), -1)

    def feed(self, i: int) -> None:
        """Read character id i, which followed what was read so far."""
        self._step(i)


class Dynamic(Static):
    """The paper's dynamic model (testtime.dynamic): once a segment of seq_len characters is coded, one SGD
    step on its loss (training.train_step, the segment in one call from the state it started with), and
    reading goes on from the state that call returns, with the updated weights."""

    def __init__(self, model, first: int, lr: float, seq_len: int):
        model = copy.deepcopy(model).float().eval()  # the copy learns; eval: no dropout
        self.opt, self.seq_len = torch.optim.SGD(model.parameters(), lr=lr), seq_len
        self.segment, self.segment_state = [first], None  # the segment's inputs so far, the state before them
        super().__init__(model, first)

    def feed(self, i: int) -> None:
        self.segment.append(i)
        if len(self.segment) == self.seq_len + 1:  # the segment's last target is known: learn from it
            ids = torch.tensor([self.segment])
            with torch.enable_grad():
                _, self.state = train_step(self.model, self.opt, ids[:, :-1], ids[:, 1:], self.segment_state)
            self.segment, self.segment_state = [i], self.state
        self._step(i)


class Cached(Static):
    """The stored weights with a continuous cache (testtime.cache): each output h(t) is remembered with the
    character that followed it."""

    def __init__(self, model, first: int, theta: float, lam: float, window: int):
        self.memory = cache.CacheMemory(theta, lam, window)
        super().__init__(model, first)

    def _step(self, i: int) -> None:
        h, self.state = self.model.features(torch.tensor([[i]]), self.state)  # (1, 1, H)
        self.h = h[0, 0]
        self.p = self.memory.mix(self.h, torch.softmax(self.model.readout(h)[0, 0].double(), -1))

    def feed(self, i: int) -> None:
        self.memory.add(self.h, i)
        self._step(i)


PREDICTORS = {"none": Static, "dynamic": Dynamic, "cache": Cached}


@contextmanager
def same_arithmetic():
    """What the encoder and the decoder must share besides the weights: one CPU thread (a reduction split
    across threads may add in another order), oneDNN off (its kernels round differently), no autograd
    outside the dynamic model's steps."""
    threads, onednn = torch.get_num_threads(), torch.backends.mkldnn.enabled
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False  # (its flags() context warns about Intel GPUs on every call)
    try:
        with torch.no_grad():
            yield
    finally:
        torch.set_num_threads(threads)
        torch.backends.mkldnn.enabled = onednn


def cumulative(p: torch.Tensor, escape: int) -> list[int]:
    """Cumulative integer frequencies (V + 2,) of the vocabulary's characters with probabilities p (V,) float64,
    then of the escape, which takes `escape` of TOTAL: every character gets at least 1."""
    if not torch.isfinite(p).all():  # an adaptation's settings made the model diverge (no frequency to give NaN)
        raise _Diverged
    budget = TOTAL - escape - len(p)
    freq = (p * budget).floor_().long() + 1  # sum(floor(p budget)) <= budget as sum(p) = 1 within 1e-15
    cum = torch.cat([freq.new_zeros(1), freq.cumsum(0)]).tolist()
    return cum + [cum[-1] + escape]


def escape_frequency(coded: int, escaped: int, vocab_size: int) -> int:
    """The escape's share of TOTAL after `coded` characters, `escaped` of them escaped: (escaped + 1/2) / (coded
    + 1) (Krichevsky-Trofimov), so that a text of the vocabulary pays about log2(length) / 2 nats in all for the
    possibility and one out of it little more than its own characters; the vocabulary keeps 2 each at least."""
    return min(TOTAL - 2 * vocab_size, max(1, (2 * escaped + 1) * TOTAL // (2 * (coded + 1))))


class _Writer:
    def __init__(self):
        self.coder = Encoder()

    def symbol(self, cum, s: int) -> int:
        self.coder.encode(cum[s], cum[s + 1], cum[-1])
        return s


class _Reader:
    def __init__(self, payload: bytes):
        self.coder = Decoder(payload)

    def symbol(self, cum, s=None) -> int:
        v = self.coder.target(cum[-1])
        s = bisect.bisect_right(cum, v) - 1
        self.coder.consume(cum[s], cum[s + 1], cum[-1])  # arith.Overrun once the code is read far past its end
        return s


class _Escapes:
    """The characters outside the vocabulary: one escaped before is coded by how often it came (each seen
    character's count, and as many for "new" as there are distinct ones, plus 1); a new one by its code point."""

    def __init__(self, vocab: str):
        self.vocab, self.seen, self.counts, self.escaped = set(vocab), [], [], 0

    def code(self, channel, ch: str | None) -> str:
        """Code `ch` (None when decoding); returns the character."""
        cum = [0]
        for c in (*self.counts, len(self.seen) + 1):
            cum.append(cum[-1] + c)
        j = channel.symbol(cum, self.seen.index(ch) if ch in self.seen else len(self.seen))
        self.escaped += 1
        if j < len(self.seen):
            self.counts[j] += 1
            return self.seen[j]
        cp = channel.symbol(range(CODE_POINTS + 1), None if ch is None else ord(ch))
        if 0xD800 <= cp < 0xE000 or chr(cp) in self.vocab or chr(cp) in self.seen:  # an encoder never codes these
            raise _Mismatch
        self.seen.append(chr(cp))
        self.counts.append(1)
        return chr(cp)


class _Mismatch(Exception):
    """The decoder decoded what no encoder writes: its probabilities differ from the encoder's."""


class _Diverged(Exception):
    """The model's distribution holds NaN or infinite values (an adaptation's settings made it diverge)."""


def _code(model, header: Header, channel, text: str | None, progress: Callable[[int], None] | None) -> str:
    """Run the model over the text, coding each character through `channel`: the text's own characters when
    encoding, those the channel decodes when `text` is None. Returns the text."""
    if model.device.type != "cpu":
        raise CompressError("the coder runs on the CPU (the decoder must repeat its arithmetic exactly): load the "
                            "model with device='cpu'")
    vocab, stoi = model.vocab.chars, model.vocab.stoi
    V, out, escapes = len(vocab), [], _Escapes(vocab)
    first = stoi.get(START, 0)  # what the first character is predicted after: a line break, where the corpus starts
    was_training, k = model.training, 0
    model.eval()
    try:
        with same_arithmetic():
            reader = PREDICTORS[header.adapt](model, first, **header.settings)
            for k in range(header.chars):
                cum = cumulative(reader.p, escape_frequency(k, escapes.escaped, V))
                s = channel.symbol(cum, None if text is None else stoi.get(text[k], V))
                if s < V:
                    out.append(vocab[s])
                    reader.feed(s)
                else:
                    out.append(escapes.code(channel, None if text is None else text[k]))
                if progress and (k + 1) % PROGRESS_EVERY == 0:
                    progress(PROGRESS_EVERY)
    except _Diverged:
        raise CompressError(f"the model's distribution became NaN or infinite at character {k:,} with adaptation "
                            f"{header.adapt} {header.settings}: " + ("lower its settings (the learning rate)" if text
                            is not None else "the file's settings are not ones an encoder could use")) from None
    finally:
        model.train(was_training)
    return "".join(out)


def _utf8(text: str | bytes) -> tuple[str, bytes]:
    if isinstance(text, bytes):
        try:
            return text.decode("utf-8"), text
        except UnicodeDecodeError as e:
            raise CompressError(f"the input is not UTF-8 text (byte {e.start:,}): convert it first, e.g. "
                                "`iconv -f latin1 -t utf-8`") from None
    try:
        return text, text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise CompressError(f"the text holds a character UTF-8 cannot write ({text[e.start]!r} at {e.start:,}, a "
                            "lone surrogate): only text that UTF-8 can store is compressed") from None


def compress_text(model, text: str | bytes, adapt: str = "none", settings=None,
                  progress: Callable[[int], None] | None = None, max_chars: int = MAX_CHARS) -> bytes:
    """`text` (a str, or UTF-8 bytes) compressed by `model`: the file's bytes.

    adapt: "none" (the stored weights), "dynamic" or "cache", with `settings` (a testtime Settings) or, if
    None, those the checkpoint recorded. The file names where `model` came from (model.origin, set by
    charrnn.load; none otherwise). progress: called with a count of characters coded, every PROGRESS_EVERY.
    max_chars: a longer text is refused (decompress refuses it too unless given as much).
    """
    text, raw = _utf8(text)
    if len(text) > max_chars:
        raise CompressError(f"the text has {len(text):,} characters, more than the {max_chars:,} allowed: raise "
                            "--max-chars (and give decompress as much)")
    try:
        origin = crnz.check_origin(getattr(model, "origin", {}))
    except CompressError:  # a directory name a file cannot carry: decompress will need --checkpoint
        origin = {}
    header = Header(weights_sha256(model), hashlib.sha256(raw).hexdigest(), len(text), adapt,
                    adapt_settings(model, adapt, settings), origin, torch.__version__)
    channel = _Writer()
    _code(model, header, channel, text, progress)
    return crnz.pack(header, channel.coder.finish())


def read_text(stream, max_chars: int = MAX_CHARS) -> bytes:
    """The bytes of text file `stream` (binary), read no further than max_chars characters' worth of UTF-8."""
    raw = stream.read(4 * max_chars + 1)  # UTF-8 writes a character in 1 to 4 bytes
    if len(raw) > 4 * max_chars:
        raise CompressError(f"the input is longer than {max_chars:,} characters can be: raise --max-chars")
    return raw


def read_header(data: bytes, max_chars: int = MAX_CHARS) -> tuple[Header, bytes]:
    """The header of compressed file `data` and its payload, once the file is checked whole (charrnn.crnz.read)."""
    return crnz.read(io.BytesIO(data), max_chars)


def decompress_text(model, data: bytes, progress: Callable[[int], None] | None = None,
                    max_chars: int = MAX_CHARS) -> str:
    """The text that compress_text wrote into `data`, decoded with `model`, which must be the encoder's."""
    return decode(model, *read_header(data, max_chars), progress)


def decode(model, header: Header, payload: bytes, progress: Callable[[int], None] | None = None) -> str:
    """The text of a file read by charrnn.crnz.read, decoded with `model`, which must be the encoder's."""
    here = weights_sha256(model)
    if here != header.weights_sha256:
        named = f" ({described(header.checkpoint)})" if header.checkpoint else ""
        raise CompressError(f"the file was compressed with another checkpoint{named}, whose weights have sha256 "
                            f"{header.weights_sha256[:12]}…; these have {here[:12]}…: decompress with that checkpoint")
    arithmetic = f"(torch {header.torch} there, {torch.__version__} here)"
    channel = _Reader(payload)
    try:
        text = _code(model, header, channel, None, progress)
        matches = hashlib.sha256(text.encode("utf-8")).hexdigest() == header.text_sha256
    except (_Mismatch, UnicodeEncodeError):
        matches = False
    except Overrun:
        raise CompressError(f"the code ends before the {header.chars:,} characters the file claims: it was altered "
                            "with its CRC-32 recomputed, or this machine's arithmetic differs from the encoder's "
                            f"{arithmetic}") from None
    if matches and not channel.coder.read_all:
        raise CompressError(f"the file holds more code than its {header.chars:,} characters take: it was altered with "
                            "its CRC-32 recomputed")
    if not matches:
        raise CompressError("the decoded text does not match the file's checksum: this machine's arithmetic differs "
                            f"from the encoder's {arithmetic}, so the probabilities differed; decompress with the "
                            "encoder's torch version and CPU kind")
    return text


def described(origin: dict) -> str:
    """A file's checkpoint origin in words."""
    kind, name = next(iter(origin.items()))
    return {"dir": f"a directory named {name}", "hub": f"the Hub model {name}", "typed": name}[kind]


def find_checkpoint(header: Header) -> Path:
    """Where decompress finds the checkpoint a file names when it is not told: only on this machine, never on
    the Hub (a file names what it likes), and only where its weights' recorded sha256 is the file's.

    A directory name is looked for as checkpoints/NAME and NAME from here, then in the checkpoints beside
    this charrnn (the shipped ones); a version 1 file's typed name also as typed, if relative."""
    origin = header.checkpoint
    fix = "pass --checkpoint with the checkpoint it was compressed with (a directory or a Hub id)"
    if not origin:
        raise CompressError(f"the file names no checkpoint: {fix}")
    if "hub" in origin:
        raise CompressError(f"the file was compressed with the Hub model {origin['hub']}, which is downloaded only "
                            f"if you name it: pass --checkpoint {origin['hub']}")
    candidates = []
    if "typed" in origin:
        typed = Path(origin["typed"])
        if not typed.is_absolute() and ".." not in typed.parts:
            candidates.append(typed)
        name = typed.name
    else:
        name = origin["dir"]
    if crnz.is_dir_name(name):
        candidates += [Path("checkpoints") / name, Path(name), Path(__file__).resolve().parents[1] / "checkpoints" / name]
    others = []
    for path in dict.fromkeys(candidates):
        try:
            recorded = read_record(path).get("weights_sha256")
        except (CheckpointError, OSError):
            continue
        if recorded in (None, header.weights_sha256):  # None: a mixture, checked once loaded
            return path
        others.append(str(path))
    found = f"{' and '.join(others)} {'has' if len(others) == 1 else 'have'} other weights" if others else \
        "it is not here"
    raise CompressError(f"the file was compressed with {described(origin)} (weights sha256 "
                        f"{header.weights_sha256[:12]}…), and {found}: {fix}")
