#!/usr/bin/env python3
"""Soak test of `orcd serve`: 64 concurrent clients mix valid, invalid, disconnecting and slow requests for N
minutes; then the worker must still answer, its RSS must be flat (within 10 % of the level after warm-up), and no job
may be left (busy false, queue empty, the connections closed). Python standard library only, loopback only.

usage: bench/soak.py --orcd build-cpu/src/cli/orcd [--minutes 10] [--clients 64] [--model M.gguf | --shared DIR]
Exit status 0 when every check holds; the result is printed as one JSON object.
"""
import argparse
import atexit
import json
import os
import random
import re
import signal
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from orcd_serve import start_serve


def start_server(orcd, model):
    return start_serve(orcd, model, "--request-timeout", "5", "--max-queue", "64")


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def exchange(port, data, timeout=30.0, close_after=None):
    """Sends `data`; reads until the server closes, `timeout`, or `close_after` bytes (then hangs up)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                c = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not c:
                break
            out += c
            if close_after is not None and len(out) >= close_after:
                break
        return out
    finally:
        s.close()


def post(path, body, extra=b"", close=True):
    body = body if isinstance(body, bytes) else body.encode()
    return (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s%s\r\n"
            % (path.encode(), len(body), extra, b"Connection: close\r\n" if close else b"") + body)


def get(path):
    return b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path.encode()


def status_of(resp):
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", resp)
    return int(m.group(1)) if m else 0


def client(port, model, stop, stats, lock, rng):
    n = 0
    while not stop.is_set():
        n += 1
        kind = rng.choice(["execute", "openai", "stream_leave", "invalid", "huge_number", "bad_framing", "slow",
                           "health", "nested", "leave_nonstream"])
        jid = f"soak-{threading.get_ident()}-{n}"
        ok = True
        r = b""
        try:
            if kind == "execute":
                # Jobs run one at a time: behind a full queue on a loaded machine, an answer may take minutes.
                r = exchange(port, post("/execute", json.dumps({"job_id": jid, "prompt": "soak", "max_tokens": 8})),
                             timeout=300)
                ok = status_of(r) in (200, 503) and (status_of(r) == 503 or b"event: end" in r or b"event: error" in r)
            elif kind == "openai":
                r = exchange(port, post("/v1/completions", json.dumps({"model": model, "prompt": "hi", "max_tokens": 8})),
                             timeout=300)
                ok = status_of(r) in (200, 503)
            elif kind == "stream_leave":
                exchange(port, post("/execute", json.dumps({"job_id": jid, "prompt": "x", "max_tokens": 200})),
                         timeout=5, close_after=300)
            elif kind == "leave_nonstream":
                exchange(port, post("/v1/completions", json.dumps({"model": model, "prompt": "x", "max_tokens": 200})),
                         timeout=0.2)
            elif kind == "invalid":
                r = exchange(port, post("/execute", b'{"job_id": 1, "prompt": ['))
                ok = status_of(r) == 400
            elif kind == "huge_number":
                r = exchange(port, post("/execute", b'{"job_id":"a","prompt":"x","top_p":1e400}'))
                ok = status_of(r) == 400
            elif kind == "nested":
                r = exchange(port, post("/execute", b"[" * 5000))
                ok = status_of(r) == 400
            elif kind == "bad_framing":
                r = exchange(port, b"POST /cancel HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n"
                                   b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
                ok = status_of(r) == 400
            elif kind == "slow":
                # Headers trickled in over ~1 s (within the 5 s deadline), then a valid request.
                s = socket.create_connection(("127.0.0.1", port), timeout=30)
                try:
                    req = get("/health")
                    for i in range(0, len(req), 8):
                        s.sendall(req[i:i + 8])
                        time.sleep(0.1)
                    r = b""
                    while True:
                        c = s.recv(65536)
                        if not c:
                            break
                        r += c
                    ok = status_of(r) == 200
                finally:
                    s.close()
            else:
                r = exchange(port, get("/health"))
                ok = status_of(r) == 200
        except OSError as e:
            ok = kind in ("stream_leave", "leave_nonstream")
            r = repr(e).encode()
        with lock:
            stats[kind] = stats.get(kind, 0) + 1
            if not ok:
                stats["unexpected"] = stats.get("unexpected", 0) + 1
                bad = stats.setdefault("unexpected_samples", {})
                if len(bad.get(kind, [])) < 3:
                    bad.setdefault(kind, []).append(r[:160].decode("utf-8", "replace"))
                by_kind = stats.setdefault("unexpected_by_kind", {})
                by_kind[kind] = by_kind.get(kind, 0) + 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orcd", required=True)
    ap.add_argument("--model")
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "../../shared"))
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    model = a.model
    if not model:
        scratch = tempfile.mkdtemp(prefix="orcd-soak-")
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
        model = os.path.join(scratch, "soak-tiny.gguf")
        subprocess.run([a.orcd, "synth", "--preset", "qwen2.5-tiny", "--type", "Q8_0", "--vocab",
                        os.path.join(a.shared, "models/vocab/ggml-vocab-qwen2.5.gguf"), "--seed", "11", "-o", model],
                       check=True, capture_output=True, timeout=120)
    proc, port = start_server(a.orcd, model)
    model_id = os.path.basename(model)[:-len(".gguf")]
    stop = threading.Event()
    stats, lock = {}, threading.Lock()
    threads = [threading.Thread(target=client, args=(port, model_id, stop, stats, lock, random.Random(a.seed + i)),
                                daemon=True) for i in range(a.clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    total = a.minutes * 60
    warmup = min(60.0, total * 0.1)
    samples = []
    while time.monotonic() - t0 < total:
        time.sleep(min(5.0, max(0.1, total - (time.monotonic() - t0))))
        samples.append((round(time.monotonic() - t0, 1), rss(proc.pid)))
    stop.set()
    for t in threads:
        t.join(310)
    # After the load: the worker answers, nothing runs or waits, the connections are gone.
    idle = False
    health = {}
    for _ in range(300):
        health = json.loads(exchange(port, get("/health")).split(b"\r\n\r\n", 1)[1])
        if not health["busy"] and health["queue_depth"] == 0 and health["limits"]["open_connections"] <= 1:
            idle = True
            break
        time.sleep(0.1)
    metrics = exchange(port, get("/metrics")).decode()
    queue_metric = float(re.search(r"^worker_queue_depth\{[^}]*\} (\S+)", metrics, re.M).group(1))
    after = [r for (t, r) in samples if t >= warmup]
    base = after[0] if after else samples[0][1]
    final = rss(proc.pid)
    drift = (final - base) / base
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(60)
    result = {
        "minutes": a.minutes, "clients": a.clients,
        "requests": sum(v for k, v in stats.items() if isinstance(v, int) and k != "unexpected"),
        "by_kind": {k: v for k, v in sorted(stats.items()) if isinstance(v, int) and k != "unexpected"},
        "unexpected_answers": stats.get("unexpected", 0),
        "unexpected_by_kind": stats.get("unexpected_by_kind", {}),
        "unexpected_samples": stats.get("unexpected_samples", {}),
        "rss_after_warmup_mib": round(base / 2**20, 1), "rss_final_mib": round(final / 2**20, 1),
        "rss_max_mib": round(max(r for _, r in samples) / 2**20, 1), "rss_drift_pct": round(100 * drift, 2),
        "idle_after": idle, "queue_depth_metric": queue_metric, "health_status": health.get("status"),
        "exit_code": rc,
    }
    passed = (idle and abs(drift) <= 0.10 and queue_metric == 0 and health.get("status") == "healthy" and rc == 0 and
              result["unexpected_answers"] == 0)
    result["pass"] = passed
    print(json.dumps(result, indent=1))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
