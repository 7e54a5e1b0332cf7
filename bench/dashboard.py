"""The web dashboard's cost: 20 dashboards following /api/v1/events/stream (as the page's
script does) while a program is killed and restarted (the restart scenario's timing, see
scenarios.restart), and the idle daemon with its HTTP listener after a browser has loaded the
dashboard and gone."""

import os
import signal
import socket
import subprocess
import sys
import time

from common import Daemon, context_switches, note, wait_quiet

# The dashboards: N connections to the event stream, each read as it comes (the page's
# EventSource); prints how many are open, then at SIGTERM the events read. A process of its
# own, like the webhook receiver: it must not take the GIL from the busy poll.
FOLLOWERS = r"""
import selectors, signal, socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
sel, events = selectors.DefaultSelector(), 0
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /api/v1/events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    if b" 200 " not in head.split(b"\r\n")[0]:
        sys.exit(f"the event stream answered {head[:80]!r}")
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
def done(*_):
    print(events, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, done)
print(n, flush=True)
while True:
    for key, _ in sel.select():
        data = key.fileobj.recv(65536)
        if not data:
            sys.exit("an event stream ended")
        events += data.count(b"\nevent: ") + data.startswith(b"event: ")
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Followers:
    """The FOLLOWERS process: `n` dashboards on the daemon listening on `port`."""

    def __init__(self, port, n):
        self.proc = subprocess.Popen([sys.executable, "-c", FOLLOWERS, str(port), str(n)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        opened = self.proc.stdout.readline().strip()
        if opened != str(n):
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"the dashboards did not all connect ({opened!r})")

    def close(self):
        """Ends them; returns the events they read."""
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=30)
        return int(out.strip() or 0)


def http_tables(port):
    """A [server.http] table on `port`, loopback, no users."""
    return f'\n[server.http]\nlisten = "127.0.0.1:{port}"\n'


def get(port, path):
    """One GET, read to the end (Connection: close); the status."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    return int(raw.split(b" ", 2)[1])


def dashboard_idle(out, opts):
    """A daemon with one program and its HTTP listener; a browser's visit (the page, its
    stylesheet, script, icon, the table's data), gone; then context switches over the idle
    window, every thread."""
    port = free_port()

    def tables(d):
        return (http_tables(port) + f'\n[programs.p0]\ncommand = "{d.exe} 1000000"\n'
                'autorestart = true\nstartsecs = 0\n')

    rates = []
    for i in range(opts.hundred_runs):
        with Daemon(opts.kahi, opts.scratch, 1, tables=tables) as d:
            wait_quiet(opts.quiesce)
            d.wait_running(d.start())
            for path in ["/", "/ui/kahi.css", "/ui/kahi.js", "/ui/icon.svg", "/ui/processes.json",
                         "/ui/p/p0", "/ui/daemon"]:
                status = get(port, path)
                if status != 200:
                    raise RuntimeError(f"GET {path}: {status}")
            time.sleep(opts.idle_settle)
            c0 = context_switches(d.pid)
            time.sleep(opts.idle_secs)
            rates.append((context_switches(d.pid) - c0) / opts.idle_secs)
            d.check_alive()
            note(f"  dashboard idle run {i + 1}: {rates[-1]:.2f} wakeups/s over {opts.idle_secs} s, "
                 f"threads {d.threads()}")
    rates.sort()
    out.figure("dashboard_idle", rates[len(rates) // 2],
               f"median of {len(rates)}, after a visit of the page and its assets")
