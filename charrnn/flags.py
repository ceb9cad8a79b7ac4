"""Command-line flags generated from a config dataclass, so that each setting is written down once.

A field `seq_len: int = 128  # truncated-BPTT length` becomes `--seq-len N` with that comment as its help,
a `Literal[...]` annotation its choices; a comment line right below a field continues its help.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import io
import tokenize
import types
import typing


def field_comments(cls) -> dict[str, str]:
    """The comment written after each field of dataclass `cls` (and on the comment lines just below it)."""
    comments: dict[str, str] = {}
    current, last_row = None, -1
    for tok in tokenize.generate_tokens(io.StringIO(inspect.getsource(cls)).readline):
        if tok.type == tokenize.NAME and tok.start[1] == 4 and tok.start[0] != last_row:
            current = tok.string  # a name at the class body's indentation starts a new statement
        if tok.type == tokenize.COMMENT and current:
            if tok.start[0] in (last_row, last_row + 1) and current in comments:
                comments[current] += " " + tok.string.lstrip("# ").strip()
            else:
                comments[current] = tok.string.lstrip("# ").strip()
            last_row = tok.start[0]
        elif tok.type == tokenize.NAME and tok.start[1] == 4:
            last_row = tok.start[0]
    return comments


def choices_of(cls, name: str) -> tuple | None:
    """The values a `Literal[...]` field of `cls` allows, or None for any other field."""
    hint = typing.get_type_hints(cls)[name]
    return typing.get_args(hint) if typing.get_origin(hint) is typing.Literal else None


def check_choices(config) -> None:
    """Raise ValueError for a `Literal[...]` field of dataclass instance `config` set to another value."""
    for f in dataclasses.fields(config):
        allowed = choices_of(type(config), f.name)
        if allowed is not None and getattr(config, f.name) not in allowed:
            raise ValueError(f"{f.name} must be one of {', '.join(map(repr, allowed))}, not {getattr(config, f.name)!r}")


def _scalar(hint):
    """int for `int`, and for `int | None`: what a flag's value is parsed as."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args and typing.get_origin(hint) in (typing.Union, types.UnionType) else hint


def add_flags(group, cls, skip: tuple[str, ...] = (), choices: dict[str, typing.Iterable] | None = None) -> None:
    """One `--field-name` flag per field of `cls` but `skip`. A flag not given is left out of the parsed
    namespace (so that a caller can tell which were given; see `given`); its help ends with the field's
    own default. `choices` adds allowed values for fields that are not `Literal`s."""
    comments, hints = field_comments(cls), typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        allowed = choices_of(cls, f.name) or (choices or {}).get(f.name)
        kind = type(allowed[0]) if allowed else _scalar(hints[f.name])
        default = "" if f.default is None else f" (default: {f.default})"
        group.add_argument("--" + f.name.replace("_", "-"), type=kind, default=argparse.SUPPRESS,
                           choices=list(allowed) if allowed else None, help=comments.get(f.name, "") + default)


def given(args: argparse.Namespace, cls) -> dict:
    """The fields of `cls` given on the command line (add_flags leaves the others out)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if getattr(args, f.name, None) is not None}
