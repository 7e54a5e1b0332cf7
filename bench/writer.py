#!/usr/bin/env python3
"""Log-throughput child of the benchmark (see kahi_bench.py): writes BYTES (rounded down to
whole lines) of 100-byte numbered lines to stdout as fast as the reader takes them, then exits.

    writer.py BYTES [STARTFILE]

Line i (from 0) is its number, zero-padded to 12 digits, a space, 86 dots and a newline, so
the numbers increase over the whole stream. The writer prebuilds 10,000 lines (1,000,000
bytes) and writes that buffer with os.write in a loop, handling short writes; between two
writes it only rewrites the digits of the line numbers above the last four that changed
(strided slice assignments), so it costs almost nothing next to a reader. Just before its
first byte it writes time.monotonic() to STARTFILE (if given), so the bench times from the
writer's first write, not from its launch.
"""

import os
import sys
import time

LINE = 100
LINES = 10_000  # per buffer; a power of ten, so a buffer's lines share all but 4 digits
DIGITS = 12


def line(i):
    """Line i of the stream, newline included."""
    return b"%0*d %s\n" % (DIGITS, i, b"." * (LINE - DIGITS - 2))


def main():
    total = int(sys.argv[1]) // LINE * LINE
    startfile = sys.argv[2] if len(sys.argv) > 2 else None
    buf = bytearray(b"".join(line(i) for i in range(LINES)))
    view = memoryview(buf)
    high = DIGITS - 4  # digits that are the same for every line of one buffer
    shown = b"0" * high

    if startfile:
        start = time.monotonic()
        with open(startfile + ".tmp", "w") as f:
            f.write(repr(start))
        os.rename(startfile + ".tmp", startfile)

    left, block = total, 0
    while left:
        digits = b"%0*d" % (high, block)
        for k in range(high):
            if digits[k] != shown[k]:
                buf[k::LINE] = digits[k:k + 1] * LINES
        shown = digits
        part = view[:min(len(buf), left)]
        while part:  # a write to a pipe may be partial
            n = os.write(1, part)
            part = part[n:]
        left -= min(len(buf), left)
        block += 1


if __name__ == "__main__":
    main()
