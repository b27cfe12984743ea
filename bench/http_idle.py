#!/usr/bin/env python3
"""/health latency of `orcd serve` while N idle (or slow-header) connections are open: the measurement behind the
transport choice in docs/HTTP.md. Python standard library only, loopback only.

usage: bench/http_idle.py --orcd BIN --model M.gguf [--counts 0,60,1000] [--probes 20]
"""
import argparse
import json
import resource
import signal
import socket
import statistics
import subprocess
import time

from orcd_serve import start_serve


def start(orcd, model):
    return start_serve(orcd, model)


def probe(port, timeout):
    t0 = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        s.settimeout(max(0.01, timeout - (time.monotonic() - t0)))
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = s.recv(100)
        s.close()
        return (time.monotonic() - t0) * 1000 if data.startswith(b"HTTP/1.1 200") else None
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orcd", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--counts", default="0,60,1000")
    ap.add_argument("--probes", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=2.0)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    rows = []
    for n in [int(x) for x in a.counts.split(",")]:
        proc, port = start(a.orcd, a.model)
        socks = []
        for i in range(n):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                if i % 2:
                    s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                socks.append(s)
            except OSError:
                break
        time.sleep(0.2)
        lat = [probe(port, a.timeout) for _ in range(a.probes)]
        ok = [x for x in lat if x is not None]
        rows.append({"open": len(socks), "answered": f"{len(ok)}/{a.probes}",
                     "median_ms": round(statistics.median(ok), 2) if ok else None,
                     "max_ms": round(max(ok), 2) if ok else None})
        for s in socks:
            s.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print(json.dumps({"orcd": a.orcd, "probe_timeout_s": a.timeout, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
