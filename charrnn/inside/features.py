"""Features of play text that a reader recognises, each a small function: text -> one bool per character.

The corpus lays a play out as lines: a speaker's name in capitals ending with a full stop ("HARPAGON."),
sometimes with a stage direction after a comma ("VALÈRE, riant."), a blank line, the speech, a blank
line. Each feature below is defined by plain code over those lines, so that what a unit is said to
"mean" can be checked by reading ten lines. A character's label describes the character itself, as the
network has just read it: a unit's activation after reading character t is compared with label t.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

LATE_COLUMN = 40  # "late in the line": prose lines wrap at ~70 characters, an alexandrine is ~40-50 long


def lines(text: str) -> list[tuple[int, str]]:
    """Each line of `text` (without its line break) with the index of its first character."""
    out, start = [], 0
    for line in text.split("\n"):
        out.append((start, line))
        start += len(line) + 1
    return out


def is_speaker_line(line: str) -> bool:
    """A speaker's name line: a name in capitals (spaces, hyphens, apostrophes allowed), maybe a stage
    direction after a comma, and a full stop at the end: "HARPAGON.", "MAITRE JACQUES, à part."."""
    name = line.split(",")[0].removesuffix(".")
    return line.endswith(".") and len(name) > 1 and any(c.isalpha() for c in name) and \
        all(c.isupper() or c in " '-" for c in name)


def _speaker_lines(text: str) -> list[tuple[int, str]]:
    """The speaker lines of `text`: a line that looks like one and follows a blank line (or starts the text)."""
    all_lines = lines(text)
    return [(start, line) for i, (start, line) in enumerate(all_lines)
            if is_speaker_line(line) and (i == 0 or not all_lines[i - 1][1].strip())]


def speaker_line(text: str) -> list[bool]:
    """Inside a speaker's name line: every character of it (not its line break)."""
    labels = [False] * len(text)
    for start, line in _speaker_lines(text):
        labels[start : start + len(line)] = [True] * len(line)
    return labels


def stage_direction(text: str) -> list[bool]:
    """The stage direction of a speaker line: from the comma after the name to the end of the line
    ("VALÈRE, riant." -> ", riant.")."""
    labels = [False] * len(text)
    for start, line in _speaker_lines(text):
        if "," in line:
            comma = line.index(",")
            labels[start + comma : start + len(line)] = [True] * (len(line) - comma)
    return labels


def in_parentheses(text: str) -> list[bool]:
    """From an opening parenthesis to its closing one, both included. A blank line (the end of a speech)
    closes any parenthesis left open, so that one stray "(" cannot mark the rest of the play."""
    labels, depth = [], 0
    for i, c in enumerate(text):
        if c == "(":
            depth += 1
        if c == "\n" and text[i - 1 : i] == "\n":
            depth = 0
        labels.append(depth > 0)
        if c == ")":
            depth = max(depth - 1, 0)
    return labels


def line_start(text: str) -> list[bool]:
    """The first character of a line that is not blank."""
    return [c != "\n" and (i == 0 or text[i - 1] == "\n") for i, c in enumerate(text)]


def late_in_line(text: str) -> list[bool]:
    """At least LATE_COLUMN characters into its line (the column counted from 0; a line break counts as the
    last character of its line): what a unit that tracks the position in the line would show."""
    labels, column = [], 0
    for c in text:
        labels.append(column >= LATE_COLUMN)
        column = 0 if c == "\n" else column + 1
    return labels


def after_question(text: str) -> list[bool]:
    """The last of the sentence ends . ! ? read before this character was a question mark."""
    labels, last = [], None
    for c in text:
        labels.append(last == "?")
        if c in ".!?":
            last = c
    return labels


def inside_word(text: str) -> list[bool]:
    """A letter that follows a letter: inside a word, past its first letter."""
    return [c.isalpha() and i > 0 and text[i - 1].isalpha() for i, c in enumerate(text)]


def verse(text: str) -> list[bool]:
    """Every character of a line of verse: a line that starts with a capital letter and continues a speech
    (the line before is neither blank nor a speaker's name line). Verse capitalises every line; prose
    continues a sentence from one line to the next, so most of its lines start in lower case."""
    labels = [False] * len(text)
    speakers = {start for start, _ in _speaker_lines(text)}
    all_lines = lines(text)
    for (prev_start, prev), (start, line) in zip(all_lines, all_lines[1:]):
        if line[:1].isupper() and prev.strip() and prev_start not in speakers and start not in speakers:
            labels[start : start + len(line)] = [True] * len(line)
    return labels


@dataclass(frozen=True)
class Feature:
    label: Callable[[str], list[bool]]  # text -> one bool per character
    about: str  # what it is, in the words a record and the app show


FEATURES: dict[str, Feature] = {f.label.__name__: f for f in (
    Feature(speaker_line, "inside a speaker's name line"),
    Feature(stage_direction, "a stage direction after a speaker's name"),
    Feature(in_parentheses, "inside parentheses"),
    Feature(line_start, "the first character of a line"),
    Feature(late_in_line, f"{LATE_COLUMN} or more characters into the line"),
    Feature(after_question, "after a question mark (the last sentence end read was '?')"),
    Feature(inside_word, "a letter inside a word (after a letter)"),
    Feature(verse, "a line of verse (a capital after a line break within a speech)"),
)}


def label_all(text: str) -> dict[str, list[bool]]:
    """Every feature's labels of `text`, by name."""
    return {name: f.label(text) for name, f in FEATURES.items()}
