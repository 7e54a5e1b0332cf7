#!/usr/bin/env python3
"""The event listener of the events benchmark, written from supervisord's documented protocol:
READY, a header line, a payload of `len` bytes, then `RESULT 2\\nOK`. It counts the data of
PROCESS_LOG events (the payload after its first line) and, once it holds WANT bytes, writes
`<unix time> <events>` to DONEFILE.

    ev_listener.py WANT DONEFILE
"""

import os
import sys
import time


def main():
    want, donefile = int(sys.argv[1]), sys.argv[2]
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    got = events = 0
    while True:
        stdout.write(b"READY\n")
        stdout.flush()
        header = stdin.readline()
        if not header:
            return
        fields = dict(f.split(b":", 1) for f in header.split())
        body = stdin.read(int(fields[b"len"]))
        events += 1
        if fields[b"eventname"].startswith(b"PROCESS_LOG"):
            got += len(body) - body.index(b"\n") - 1
        stdout.write(b"RESULT 2\nOK")
        stdout.flush()
        if got >= want and not os.path.exists(donefile):
            with open(donefile + ".tmp", "w") as f:
                f.write(f"{time.time()} {events}\n")
            os.rename(donefile + ".tmp", donefile)


if __name__ == "__main__":
    main()
