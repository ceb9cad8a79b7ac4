"""The compressed file (`.crnz`, written by charrnn.compress): its layout, and reading it back as the
untrusted input it is (people download these files).

    magic "CRNZ" (4 bytes) | format version (1) | CRC-32 of everything after it (4)
    | sha256 of the weights (32) | sha256 of the text's UTF-8 (32) | the text's length in characters (8)
    | the payload's length in bytes (8) | the metadata's length in bytes (2) | metadata | payload

Integers are little-endian. The metadata is JSON with exactly four keys: "adapt" ("none", "dynamic" or
"cache"), "settings" (the adaptation's settings: {}, {"lr", "seq_len"} or {"theta", "lam", "window"}),
"checkpoint" (where the encoder's checkpoint came from: {"dir": NAME}, a local directory's name and never
its path, {"hub": "USER/NAME"}, or {} when not known) and "torch" (the encoder's torch version). The payload
is the arithmetic code (charrnn.arith). Version 1 (still read) had "checkpoint" as typed: a path or a Hub id.

Reading checks, in this order, before anything is allocated or decoded: the magic, the version, the text's
length against a maximum (MAX_CHARS unless raised), the payload's length against what an encoder can
write for that many characters, the metadata's length; then reads exactly that many bytes (and no more),
checks the CRC-32, and checks every metadata field's type and range (the ranges the library's commands
accept, with an upper bound on the cache window). Whatever is wrong is one CompressError.
"""
from __future__ import annotations

import dataclasses
import json
import re
import struct
import typing
import zlib
from dataclasses import dataclass

from .testtime import cache, dynamic

MAGIC, VERSION = b"CRNZ", 2
READABLE = (1, 2)  # version 1: the same layout, "checkpoint" the name typed to compress
FIXED = struct.Struct("<4sBI32s32sQQH")  # magic, version, crc32, weights sha256, text sha256, chars, payload, meta
MAX_CHARS = 5_000_000  # the default maximum of characters, compressed or decompressed: three Molières, and hours
#                        of coding at the coder's speed; --max-chars raises it
MAX_BYTES_PER_CHAR = 16  # an encoder writes at most ~11 (24 bits for the escape, ~log2(2 n) for which
#                          escaped character, 21 for a new code point): a payload beyond 16 a character is crafted
MAX_META = 4096  # bytes of metadata: an encoder writes ~100
MAX_SEQ_LEN = 10_000  # the dynamic model's segment: a backward pass through this many steps (the default is 50)
MAX_LR = 100.0  # the dynamic model's learning rate (tuned over 0.005 to 0.08): beyond, steps only diverge, and past
#                 float32's range SGD cannot even take them
SETTINGS = {"dynamic": dynamic.Settings, "cache": cache.Settings}
ADAPT = ("none", *SETTINGS)
KEYS = ("adapt", "settings", "checkpoint", "torch")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}")


class CompressError(ValueError):
    """A text that cannot be compressed or a file that cannot be decompressed; the message says what to do."""


@dataclass(frozen=True)
class Header:
    weights_sha256: str  # hex, of the weights the encoder computed with
    text_sha256: str  # hex, of the text's UTF-8
    chars: int  # the text's length in characters
    adapt: str  # "none", "dynamic" or "cache"
    settings: dict  # the adaptation's settings (a testtime Settings as a dict)
    checkpoint: dict  # {"dir": NAME}, {"hub": "USER/NAME"} or {}; in a version 1 file {"typed": what was typed}
    torch: str  # the encoder's torch version, named when the decoder's arithmetic turns out to differ
    version: int = VERSION


def check_settings(adapt, settings) -> dict:
    """`settings` (a dict, as a file holds them) checked for adaptation `adapt`: the keys of its testtime
    Settings, each of its type and in the range its command accepts; CompressError otherwise."""
    if adapt not in ADAPT:
        raise CompressError(f"unknown adaptation {adapt!r:.40}: one of {', '.join(ADAPT)}")
    cls = SETTINGS.get(adapt)
    names = [f.name for f in dataclasses.fields(cls)] if cls else []
    if not isinstance(settings, dict) or sorted(settings) != sorted(names):
        raise CompressError(f"the settings of adaptation {adapt} must be an object with the keys "
                            f"{', '.join(names) or '(none)'}, not {json.dumps(settings)[:80]}")
    hints = typing.get_type_hints(cls) if cls else {}
    s = {}
    for name, value in settings.items():
        integer = int in (hints[name], *typing.get_args(hints[name]))
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            raise CompressError(f"{adapt} setting {name} must be {'an integer' if integer else 'a number'}, not "
                                f"{json.dumps(value)[:40]}")
        try:
            s[name] = value if integer else float(value)
        except OverflowError:
            raise CompressError(f"{adapt} setting {name} is out of range: {str(value)[:40]}") from None
    if adapt == "dynamic" and not (0 <= s["lr"] <= MAX_LR and 1 <= s["seq_len"] <= MAX_SEQ_LEN):
        raise CompressError(f"the dynamic model needs 0 <= lr <= {MAX_LR:g} and 1 <= seq_len <= {MAX_SEQ_LEN:,}, not "
                            f"lr {s['lr']:g}, seq_len {s['seq_len']}")
    if adapt == "cache":
        try:
            cache.check_cache(s["theta"], s["lam"], s["window"])
        except ValueError as e:
            raise CompressError(f"the cache's settings: {e}") from None
    return s


def check_origin(checkpoint) -> dict:
    """Where a checkpoint came from, as a version 2 file names it: {"dir": NAME}, {"hub": "USER/NAME"} or {}."""
    if checkpoint == {}:
        return {}
    if isinstance(checkpoint, dict) and len(checkpoint) == 1:
        (kind, name), = checkpoint.items()
        if kind == "dir" and isinstance(name, str) and is_dir_name(name):
            return {"dir": name}
        if kind == "hub" and isinstance(name, str) and HUB_ID.fullmatch(name):
            return {"hub": name}
    raise CompressError("the checkpoint a file names must be {\"dir\": NAME} (a directory's name, no path), "
                        f"{{\"hub\": \"USER/NAME\"}} or {{}}, not {json.dumps(checkpoint)[:80]}")


def is_dir_name(name: str) -> bool:
    """A directory's name alone: no separator, not . or .., printable."""
    return 0 < len(name) <= 255 and name not in (".", "..") and "/" not in name and "\\" not in name \
        and name.isprintable()


def pack(header: Header, payload: bytes) -> bytes:
    """The file's bytes: the fixed header, the metadata, the payload (always the current version)."""
    meta = json.dumps({"adapt": header.adapt, "settings": header.settings, "checkpoint": header.checkpoint,
                       "torch": header.torch}, separators=(",", ":"), ensure_ascii=False).encode()
    rest = FIXED.pack(MAGIC, VERSION, 0, bytes.fromhex(header.weights_sha256), bytes.fromhex(header.text_sha256),
                      header.chars, len(payload), len(meta))[9:] + meta + payload
    return MAGIC + bytes([VERSION]) + struct.pack("<I", zlib.crc32(rest)) + rest


def _read(stream, n: int) -> bytes:
    """Up to n bytes of `stream`, fewer only at its end (a pipe may hand out less per read)."""
    parts, left = [], n
    while left > 0:
        part = stream.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def read(stream, max_chars: int = MAX_CHARS) -> tuple[Header, bytes]:
    """The header and the payload of the compressed file `stream` (a binary file object), each length checked
    against its bound before that many bytes are read, the CRC and every metadata field checked."""
    head = _read(stream, FIXED.size)
    if head[:4] != MAGIC:
        raise CompressError(f"this is not a file written by python -m charrnn compress (it does not start with {MAGIC!r})")
    if len(head) < FIXED.size:
        raise CompressError(f"the file is truncated: {len(head)} bytes, shorter than the {FIXED.size}-byte header")
    _, version, crc, weights, text_hash, chars, n_payload, n_meta = FIXED.unpack(head)
    if version not in READABLE:
        raise CompressError(f"the file has format version {version}; this charrnn reads versions "
                            f"{', '.join(map(str, READABLE))}" + (": upgrade charrnn" if version > VERSION else ""))
    if chars > max_chars:
        raise CompressError(f"the file holds {chars:,} characters, more than the {max_chars:,} allowed: if you trust "
                            "it, raise --max-chars (decoding takes a network step per character)")
    if not 1 <= n_payload <= MAX_BYTES_PER_CHAR * chars + 16 or not 2 <= n_meta <= MAX_META:
        raise CompressError(f"the file is corrupted or crafted: its header gives {n_payload:,} bytes of code for "
                            f"{chars:,} characters (an encoder writes 1 to {MAX_BYTES_PER_CHAR} a character) and "
                            f"{n_meta:,} bytes of metadata (2 to {MAX_META:,})")
    rest = _read(stream, n_meta + n_payload)
    if len(rest) < n_meta + n_payload:
        raise CompressError(f"the file is truncated: {FIXED.size + len(rest):,} bytes of "
                            f"{FIXED.size + n_meta + n_payload:,}; copy it again")
    if _read(stream, 1) or zlib.crc32(head[9:] + rest) != crc:
        raise CompressError("the file is corrupted (its CRC-32 does not match its content); copy it again")
    meta = _metadata(rest[:n_meta], version)
    return Header(weights.hex(), text_hash.hex(), chars, meta["adapt"], meta["settings"], meta["checkpoint"],
                  meta["torch"], version), rest[n_meta:]


def _metadata(raw: bytes, version: int) -> dict:
    """The metadata, every field checked. Its CRC matched: what is wrong here was written on purpose."""
    def refuse(constant):
        raise ValueError(f"{constant} is no JSON number")

    def no_duplicates(pairs):
        if len({k for k, _ in pairs}) < len(pairs):
            raise ValueError("a key comes twice")
        return dict(pairs)

    try:
        meta = json.loads(raw.decode("utf-8"), parse_constant=refuse, object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _crafted(f"its metadata is not JSON ({str(e)[:80]})") from None
    if not isinstance(meta, dict) or set(meta) != set(KEYS):
        shown = sorted(meta) if isinstance(meta, dict) else type(meta).__name__
        raise _crafted(f"its metadata must be an object with the keys {', '.join(KEYS)}, not {str(shown)[:80]}")
    if not (isinstance(meta["torch"], str) and 0 < len(meta["torch"]) <= 64 and meta["torch"].isprintable()):
        raise _crafted(f"its torch version must be a short string, not {json.dumps(meta['torch'])[:40]}")
    try:
        meta["settings"] = check_settings(meta["adapt"], meta["settings"])
        if version == 1:  # the name that was typed: any string; it is only looked for locally
            typed = meta["checkpoint"]
            if not (isinstance(typed, str) and typed.isprintable()):
                raise CompressError(f"the checkpoint must be a name, not {json.dumps(typed)[:40]}")
            meta["checkpoint"] = {"typed": typed} if typed else {}
        else:
            meta["checkpoint"] = check_origin(meta["checkpoint"])
    except CompressError as e:
        raise _crafted(str(e)) from None
    return meta


def _crafted(what: str) -> CompressError:
    return CompressError(f"the file was not written by python -m charrnn compress, or altered after with its CRC-32 "
                         f"recomputed: {what}")
