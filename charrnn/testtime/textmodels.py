"""The context-mixing compressors' models of text, as inputs of testtime.mixing: counts of what followed each
context of the text read so far (character orders 1 to 6, the word so far, the word so far after the previous
word, the line so far), and a match model (the longest earlier occurrence of the current context, predicting
the character that followed it). Both are primed on the text the model trained on, then learn the text as it is
read; the contexts a position has are computed from the characters before it only.
"""
from __future__ import annotations

import numpy as np

ORDERS = 6  # character contexts counted: orders 1 to 6
MASK = (1 << 61) - 1  # the rolling hashes of words and lines stay exact integers under it
NAMES = tuple(f"order {k}" for k in range(1, ORDERS + 1)) + ("word", "word pair", "line")
PAD = 127  # what precedes the text, in a context: no character id (a vocabulary has fewer than 127)
MIN_MATCH = 6  # the match model looks an occurrence up by the last 6 characters (the order-6 context)
MAX_MATCH = 64  # a longer match predicts no better: lengths are bucketed up to here


class Contexts:
    """For every position i of ids (predicting ids[i] from ids[:i]): keys (C, T) of the counted contexts (NAMES),
    the column (characters since the line began), and where a speaker's name is read (1 at the start of a line after
    a blank line, 2 inside such a line while it is capitals so far, 0 elsewhere)."""

    def __init__(self, ids: np.ndarray, chars: str):
        T = len(ids)
        padded = np.concatenate([np.full(ORDERS, PAD, np.int64), ids.astype(np.int64)])
        keys = np.zeros((len(NAMES), T), np.int64)
        key = np.zeros(T, np.int64)
        for k in range(1, ORDERS + 1):  # exact: 7 bits a character, 42 at order 6
            key = key * 128 + padded[ORDERS - k : ORDERS - k + T]
            keys[k - 1] = key
        letter = np.array([ch.isalpha() or ch in "'-" for ch in chars])
        capital = np.array([ch.isupper() or ch in " '-" for ch in chars])
        newline = chars.index("\n") if "\n" in chars else -1
        word = pair = line = prev_word = 0
        column, name = np.zeros(T + 1, np.int64), np.zeros(T, np.int64)
        w, p, lk = keys[ORDERS], keys[ORDERS + 1], keys[ORDERS + 2]
        state = 1  # the text starts as if after a blank line
        for i in range(T):
            w[i], p[i], lk[i], name[i] = word, pair, line, state  # what is known before ids[i]
            c = int(ids[i])
            if c == newline:
                state = 1 if column[i] == 0 else 0  # a line after a blank one may be a speaker's name
                line = column[i + 1] = 0
            else:
                line, column[i + 1] = (line * 1_000_003 + c + 1) & MASK, column[i] + 1
                state = 2 if state and capital[c] else 0
            if letter[c]:
                word = (word * 1_000_003 + c + 1) & MASK
            elif word:  # a word ended: it becomes the previous word
                prev_word, word = word, 0
            pair = (prev_word * 7_919 + word) & MASK
        column = column[:T]
        self.keys, self.column, self.name = keys, column, name


class Primed:
    """How often each character followed each context of each kind in the first `primed` positions (keys (C, T) from
    Contexts, ids (T,)), counted at once: the rows of V counts, and which row is which kind's which context."""

    def __init__(self, keys: np.ndarray, ids: np.ndarray, primed: int, V: int):
        self.rows: list[dict] = []
        blocks, n = [], 0
        for k in range(keys.shape[0]):
            uniq, inverse = np.unique(keys[k, :primed], return_inverse=True)
            blocks.append(np.bincount(inverse * V + ids[:primed], minlength=len(uniq) * V).reshape(-1, V))
            self.rows.append(dict(zip(uniq.tolist(), range(n, n + len(uniq)))))
            n += len(uniq)
        self.table = np.concatenate(blocks).astype(np.float32)


class Counts:
    """How often each character followed each context of each kind, one row of V counts per context seen, from the
    Primed counts on: a row's counts are halved whenever their sum passes `limit`, so that the text just read
    outweighs the training text. keys, ids: as Primed's."""

    BLOCK = 1 << 16  # rows of the contexts first seen while reading, allocated this many at a time

    def __init__(self, primed: Primed, keys: np.ndarray, ids: np.ndarray, limit: float):
        self.limit, self.keys, self.ids = limit, keys, ids
        self.rows = [dict(r) for r in primed.rows]
        total = primed.table.sum(1, keepdims=True)
        self.tables = [primed.table * np.minimum(1.0, limit / np.maximum(total, 1))]  # counted often: capped at limit
        self.base = len(primed.table)  # new rows: number base + j is row j % BLOCK of tables[1 + j // BLOCK]
        self.used = 0
        self.zero = np.zeros(primed.table.shape[1], np.float32)

    def _row(self, r: int) -> np.ndarray:
        if r < self.base:
            return self.tables[0][r]
        j = r - self.base
        return self.tables[1 + j // self.BLOCK][j % self.BLOCK]

    def at(self, i: int) -> tuple[np.ndarray, list]:
        """The counts (C, V) of every context of position i, and their rows (None: a context not seen yet)."""
        rows = [r.get(int(k)) for r, k in zip(self.rows, self.keys[:, i])]
        return np.stack([self._row(r) if r is not None else self.zero for r in rows]), rows

    def add(self, i: int, rows: list) -> None:
        """Count ids[i] after each context of position i (rows: from at(i))."""
        c = int(self.ids[i])
        for k, r in enumerate(rows):
            if r is None:
                if self.used == self.BLOCK * (len(self.tables) - 1):
                    self.tables.append(np.zeros((self.BLOCK, len(self.zero)), np.float32))
                r = self.base + self.used
                self.rows[k][int(self.keys[k, i])] = r
                self.used += 1
            row = self._row(r)
            row[c] += 1
            if row.sum() > self.limit:
                row *= 0.5


class Match:
    """The longest earlier occurrence of the current context (at least MIN_MATCH characters, found by the order-6
    key), and the character that followed it: what comes next, expected again. expected(i) gives that character and
    the match's length, or (-1, 0)."""

    def __init__(self, key: np.ndarray, ids: np.ndarray, primed: int):
        self.key, self.ids = key, ids
        self.last = dict(zip(key[MIN_MATCH:primed].tolist(), range(MIN_MATCH, primed)))  # later ones overwrite
        self.ptr = self.length = 0

    def expected(self, i: int) -> tuple[int, int]:
        if self.length == 0 and i >= MIN_MATCH:
            ptr = self.last.get(int(self.key[i]))
            if ptr is not None:  # the same 6 characters came before ids[ptr]: how far back does the match go?
                n = MIN_MATCH
                while n < MAX_MATCH and ptr - n > 0 and self.ids[ptr - n - 1] == self.ids[i - n - 1]:
                    n += 1
                self.ptr, self.length = ptr, n
        return (int(self.ids[self.ptr]), self.length) if self.length else (-1, 0)

    def add(self, i: int) -> None:
        """ids[i] read: the match goes on if it expected it, and position i is the latest of its context."""
        if self.length and self.ids[self.ptr] == self.ids[i]:
            self.ptr, self.length = self.ptr + 1, min(self.length + 1, MAX_MATCH)
        else:
            self.length = 0
        if i >= MIN_MATCH:
            self.last[int(self.key[i])] = i
