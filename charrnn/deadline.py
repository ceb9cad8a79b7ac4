"""Deadlines: how a request's time limit holds inside generation and scoring, whatever serves the request.

A deadline is a time.monotonic() value, or None for none. generate, char_losses, next_chars and
report.score check it between their steps (one character generated, one chunk of text read) and raise
DeadlineExceeded once it has passed, so a call stops within one step of its limit.
"""
from __future__ import annotations

from time import monotonic


class DeadlineExceeded(TimeoutError):
    """A generation or a scoring reached its deadline; the message says how far it got."""


def check_deadline(deadline: float | None, done: int, total: int, doing: str) -> None:
    """Raise DeadlineExceeded if `deadline` has passed, after `done` of `total` characters `doing`."""
    if deadline is not None and monotonic() >= deadline:
        raise DeadlineExceeded(f"the time limit ran out after {done:,} of {total:,} characters {doing}")
