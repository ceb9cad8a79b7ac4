"""Arithmetic coding (Witten, Neal & Cleary 1987): a message of symbols, each given with the integer
frequencies its coder predicted, becomes a string of bits whose length is within a few bits of the sum of
-log2(frequency / total) over the message.

The coder keeps an interval [low, high] of STATE_BITS-bit integers. Coding a symbol narrows it to the
symbol's share of the frequency table; whenever the interval lies in one half of the range, the leading
bit is settled, sent, and the interval doubled. An interval that straddles the middle while inside its
middle half (the underflow case) is doubled around the middle, and the bit it will settle is counted as
pending. Everything is integer arithmetic, so an encoder and a decoder given the same frequency tables
cut the interval identically on any machine; whether the tables themselves are identical is the
caller's concern (see charrnn.compress).

The decoder reads one bit per doubling after its first STATE_BITS, the encoder writes one per doubling
and two more, so decoding a message reads at most STATE_BITS - 2 bits past its end: a decoder that reads
more than STATE_BITS (zeros) past the end is decoding what no encoder wrote, and stops (Overrun). As the
encoder pads its last byte with fewer than 8 bits, the decoder of a whole message has read past its end:
code left unread (Decoder.read_all false) was not the encoder's either.
"""
from __future__ import annotations

STATE_BITS = 32
FULL = (1 << STATE_BITS) - 1
HALF = 1 << (STATE_BITS - 1)
QUARTER = 1 << (STATE_BITS - 2)
MAX_TOTAL = QUARTER  # after renormalisation the interval is wider than a quarter, so every symbol of a
#                      table whose total is at most this gets a non-empty sub-interval


class Overrun(ValueError):
    """The decoder read more than STATE_BITS bits past the end of its message: no encoder wrote it."""


def _check(lo: int, hi: int, total: int) -> None:
    if not 0 <= lo < hi <= total <= MAX_TOTAL:
        raise ValueError(f"a symbol's cumulative frequencies must satisfy 0 <= lo < hi <= total <= {MAX_TOTAL}, "
                         f"not lo {lo}, hi {hi}, total {total}")


class _Interval:
    """The interval both ends keep, narrowed by each symbol in the same integer steps."""

    def __init__(self):
        self.low, self.high = 0, FULL

    def _narrow(self, lo: int, hi: int, total: int) -> None:
        """Narrow [low, high] to the range [lo, hi) of a table of `total`, then double it while a bit is settled
        (or pending): each doubling calls _doubled(bit, offset), bit None for an underflow."""
        _check(lo, hi, total)
        width = self.high - self.low + 1
        self.high = self.low + width * hi // total - 1
        self.low = self.low + width * lo // total
        while True:
            if self.high < HALF:
                bit, offset = 0, 0
            elif self.low >= HALF:
                bit, offset = 1, HALF
            elif self.low >= QUARTER and self.high < HALF + QUARTER:
                bit, offset = None, QUARTER
            else:
                return
            self.low, self.high = 2 * (self.low - offset), 2 * (self.high - offset) + 1
            self._doubled(bit, offset)

    def _doubled(self, bit: int | None, offset: int) -> None:
        raise NotImplementedError


class Encoder(_Interval):
    """encode(lo, hi, total) for each symbol (its cumulative frequency range in a table of `total`), then
    finish() -> the bytes."""

    def __init__(self):
        super().__init__()
        self.pending = 0  # underflow doublings whose bit is the opposite of the next settled one
        self.out, self.byte, self.nbits = bytearray(), 0, 0

    def _bit(self, bit: int) -> None:
        self.byte = (self.byte << 1) | bit
        self.nbits += 1
        if self.nbits == 8:
            self.out.append(self.byte)
            self.byte, self.nbits = 0, 0

    def _doubled(self, bit: int | None, offset: int) -> None:
        if bit is None:
            self.pending += 1
            return
        self._bit(bit)
        for _ in range(self.pending):
            self._bit(bit ^ 1)
        self.pending = 0

    def encode(self, lo: int, hi: int, total: int) -> None:
        self._narrow(lo, hi, total)

    def finish(self) -> bytes:
        """Two more bits (with the pending ones) name a point inside the final interval whatever follows
        them; the decoder reads zeros past the end, so the last byte is padded with zeros."""
        self.pending += 1
        self._doubled(0 if self.low < QUARTER else 1, 0)
        while self.nbits:
            self._bit(0)
        return bytes(self.out)


class Decoder(_Interval):
    """For each symbol: v = target(total), find the symbol whose range [lo, hi) holds v, then
    consume(lo, hi, total) with the same arguments the encoder was given."""

    def __init__(self, data: bytes):
        super().__init__()
        self.data, self.pos = data, 0  # pos: the next bit to read
        self.code = 0  # the STATE_BITS bits of the message under the interval
        for _ in range(STATE_BITS):
            self.code = (self.code << 1) | self._bit()

    def _bit(self) -> int:
        i, j = divmod(self.pos, 8)
        self.pos += 1
        if i < len(self.data):
            return (self.data[i] >> (7 - j)) & 1
        if self.pos > 8 * len(self.data) + STATE_BITS:
            raise Overrun(f"read {self.pos - 8 * len(self.data)} bits past the end of a {len(self.data)}-byte message")
        return 0

    def _doubled(self, bit: int | None, offset: int) -> None:
        self.code = 2 * (self.code - offset) + self._bit()

    @property
    def read_all(self) -> bool:
        """Whether every bit of the message has been read (always, once a whole message is decoded)."""
        return self.pos >= 8 * len(self.data)

    def target(self, total: int) -> int:
        """The cumulative frequency, in [0, total), that the code points at."""
        width = self.high - self.low + 1
        return ((self.code - self.low + 1) * total - 1) // width

    def consume(self, lo: int, hi: int, total: int) -> None:
        self._narrow(lo, hi, total)
