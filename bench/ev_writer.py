#!/usr/bin/env python3
"""The program of the events benchmark: writes its start time (Unix) to STARTFILE, then LINES
lines of 100 bytes to its stdout, one write each, and sleeps: it is still running when its last
line is delivered, and the daemon stops it.

    ev_writer.py LINES STARTFILE
"""

import os
import sys
import time


def main():
    lines, startfile = int(sys.argv[1]), sys.argv[2]
    line = b"x" * 99 + b"\n"
    with open(startfile, "w") as f:
        f.write(f"{time.time()}\n")
    for _ in range(lines):
        os.write(1, line)
    time.sleep(3600)


if __name__ == "__main__":
    main()
