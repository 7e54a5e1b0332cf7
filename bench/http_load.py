"""HTTP under load: Kahi's process list under wrk (its REST route and its XML-RPC
getAllProcessInfo), idle connections, and supervisord's XML-RPC under the same load."""

import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

from common import Daemon, note, stop_session, wait_quiet
from scenarios import scale


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url, secs, script=None):
    """One wrk run, 2 threads and 32 kept-alive connections: (requests/s, p99 in ms)."""
    argv = ["wrk", "-t2", "-c32", f"-d{secs}s", "--latency"]
    if script:
        argv += ["-s", script]
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=secs + 60).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\b", out, re.M)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not rate or not p99 or errors:
        raise RuntimeError(f"wrk said: {out}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return float(rate.group(1)), float(p99.group(1)) * scale


def rpc_script(d):
    """A wrk script that asks XML-RPC's getAllProcessInfo, written in `d`."""
    script = os.path.join(d, "rpc.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "text/xml"\n'
                'wrk.body = "<?xml version=\'1.0\'?><methodCall><methodName>'
                'supervisor.getAllProcessInfo</methodName><params></params></methodCall>"\n')
    return script


def idle_connections(port, n, threads):
    """Opens up to `n` connections that send nothing (as many as the descriptor limit
    allows), then times one /healthz: (connections opened, ms, daemon threads)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    conns = []
    try:
        for _ in range(min(n, hard - 100)):
            conns.append(socket.create_connection(("127.0.0.1", port)))
        t = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = s.recv(12)
        took = (time.monotonic() - t) * 1000
        if not answer.startswith(b"HTTP/1.1 200"):
            note(f"  /healthz with {len(conns)} idle connections: {answer!r}")
            return None
        return len(conns), took, threads()
    except OSError as e:
        note(f"  idle connections: {e}")
        return None
    finally:
        for c in conns:
            c.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def http_load(out, opts):
    """GET /api/v1/processes with 100 programs under wrk (2 threads, 32 connections), median
    of the runs; then supervisord's XML-RPC getAllProcessInfo the same way, when installed."""
    if not shutil.which("wrk"):
        note("wrk is not installed: no HTTP figures")
        return
    port = free_port()
    http = f'\n[server.http]\nlisten = "127.0.0.1:{port}"\n'

    def tables(d):
        return http + "".join(f'\n[programs.p{i}]\ncommand = "{d.exe} 100000{i}"\n'
                              'autorestart = true\nstartsecs = 0\n' for i in range(100))

    runs = []
    with Daemon(opts.kahi, opts.scratch, 100, tables=tables) as d:
        wait_quiet(opts.quiesce)
        d.wait_running(d.start())
        url = f"http://127.0.0.1:{port}/api/v1/processes"
        wrk(url, 1)  # warm up
        for _ in range(opts.http_runs):
            runs.append(wrk(url, opts.http_secs))
            note(f"  Kahi HTTP: {runs[-1][0]:.0f} req/s, p99 {runs[-1][1]:.2f} ms")
        # The same list as supervisord's XML-RPC gives it, for the comparison below.
        rpc, script = [], rpc_script(d.dir)
        rpc_url = f"http://127.0.0.1:{port}/RPC2"
        wrk(rpc_url, 1, script)
        for _ in range(opts.http_runs):
            rpc.append(wrk(rpc_url, opts.http_secs, script))
            note(f"  Kahi XML-RPC: {rpc[-1][0]:.0f} req/s, p99 {rpc[-1][1]:.2f} ms")
        threads = d.threads()
        idle = idle_connections(port, 10000, d.threads)
        d.check_alive()
    rate = statistics.median(r[0] for r in runs)
    p99 = statistics.median(r[1] for r in runs)
    detail = f"median of {len(runs)} wrk runs of {opts.http_secs} s: " + " ".join(f"{r[0]:.0f}" for r in runs)
    out.figure("http_rps", rate, detail)
    out.figure("http_p99", p99, "median of the runs' p99: " + " ".join(f"{r[1]:.2f}" for r in runs))
    rpc_rate = statistics.median(r[0] for r in rpc)
    out.measure("Kahi XML-RPC getAllProcessInfo", rpc_rate, "req/s",
                f"p99 {statistics.median(r[1] for r in rpc):.2f} ms; median of {len(rpc)} wrk runs")
    out.measure("HTTP daemon threads after the wrk runs", threads, "threads", "the loop, the front, two password checkers")
    if idle:
        out.measure(f"/healthz with {idle[0]} idle connections open", idle[1], "ms",
                    f"threads {idle[2]}; past max_connections (512) new ones take the idle ones' places")
    if shutil.which("supervisord"):
        sup = supervisord_rpc(opts)
        if sup:
            out.measure("supervisord XML-RPC getAllProcessInfo", sup[0], "req/s", f"p99 {sup[1]:.2f} ms")
            out.figure("http_vs_supervisord", rate / sup[0],
                       f"Kahi {rate:.0f} req/s, supervisord {sup[0]:.0f} req/s")
            out.measure("XML-RPC, Kahi / supervisord", rpc_rate / sup[0], "x",
                        f"getAllProcessInfo of 100: Kahi {rpc_rate:.0f} req/s, "
                        f"supervisord {sup[0]:.0f} req/s")


def supervisord_rpc(opts):
    """supervisord with 100 sleep programs: (req/s, p99 ms) of getAllProcessInfo under wrk."""
    d = tempfile.mkdtemp(prefix="supervisord-", dir=opts.scratch)
    port = free_port()
    sleep = shutil.which("sleep") or "/bin/sleep"
    conf = os.path.join(d, "supervisord.conf")
    with open(conf, "w") as f:
        f.write(f"[supervisord]\nlogfile={d}/supervisord.log\npidfile={d}/supervisord.pid\n"
                f"childlogdir={d}\nnodaemon=true\n\n[inet_http_server]\nport=127.0.0.1:{port}\n\n"
                "[rpcinterface:supervisor]\n"
                "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n")
        for i in range(100):
            f.write(f"\n[program:p{i}]\ncommand={sleep} 200000{i}\nstartsecs=0\n"
                    "stdout_logfile=NONE\nstderr_logfile=NONE\n")
    script = rpc_script(d)
    log = open(os.path.join(d, "out.log"), "wb")
    proc = subprocess.Popen(["supervisord", "-c", conf], cwd=d, stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, start_new_session=True)
    log.close()
    try:
        url = f"http://127.0.0.1:{port}/RPC2"
        deadline = time.monotonic() + 60
        while True:
            try:
                body = ("<?xml version='1.0'?><methodCall><methodName>supervisor.getAllProcessInfo"
                        "</methodName><params></params></methodCall>").encode()
                with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                    c.sendall(b"POST /RPC2 HTTP/1.0\r\nContent-Type: text/xml\r\nContent-Length: "
                              + str(len(body)).encode() + b"\r\n\r\n" + body)
                    reply = b""
                    while chunk := c.recv(65536):
                        reply += chunk
                if reply.count(b"RUNNING") >= 100:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                note("supervisord did not come up; no comparison")
                return None
            time.sleep(0.2)
        wrk(url, 1, script)
        runs = [wrk(url, opts.http_secs, script) for _ in range(opts.http_runs)]
        for r in runs:
            note(f"  supervisord XML-RPC: {r[0]:.0f} req/s, p99 {r[1]:.2f} ms")
        return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    finally:
        stop_session(proc)
        shutil.rmtree(d, ignore_errors=True)
