#!/usr/bin/env python3
"""scripts/serve-fleet.sh with three `orcd serve --device cpu` workers behind HAProxy, on loopback: requests spread
over every worker, X-Session-Id keeps a conversation on one worker, a worker killed mid-load loses no request that had
not started (the ones it was running fail with a clear error), and a rolling restart under light load fails nothing.
Standard library only; every loop is bounded in count and time.

usage: test_fleet.py ORCD_BINARY SHARED_DIR"""
import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

ORCD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/src/cli/orcd"
SHARED = sys.argv[2] if len(sys.argv) > 2 else "../shared"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOCAB = os.path.join(SHARED, "models/vocab/ggml-vocab-qwen2.5.gguf")
TMP = tempfile.mkdtemp(prefix="orcd-fleet-test-")
atexit.register(shutil.rmtree, TMP, ignore_errors=True)
MODEL = os.path.join(TMP, "tiny.gguf")
WORKERS = 3


def free_ports(n, avoid=()):
    """The first of n consecutive free loopback ports, none of them in `avoid` (bounded search)."""
    for start in range(20000 + (os.getpid() % 2000) * 10, 60000, 97):
        if any(p in avoid for p in range(start, start + n)):
            continue
        socks = []
        try:
            for p in range(start, start + n):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return start
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free ports")


def request(port, path, body=None, headers=None, timeout=60):
    """One HTTP request; returns (status, body text). Connection errors become status 0."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        h = {"Content-Type": "application/json", **(headers or {})}
        c.request("POST" if body is not None else "GET", path, json.dumps(body) if body is not None else None, h)
        r = c.getresponse()
        text = r.read().decode("utf-8", "replace")
        c.close()
        return r.status, text
    except (OSError, http.client.HTTPException) as e:
        return 0, f"{type(e).__name__}: {e}"


def completion(port, max_tokens=4, session=None):
    headers = {"X-Session-Id": session} if session else {}
    return request(port, "/v1/completions", {"model": "tiny", "prompt": "Hello", "max_tokens": max_tokens,
                                             "temperature": 0}, headers)


class Fleet:
    def __init__(self):
        self.port = free_ports(1)
        self.base = free_ports(WORKERS, avoid={self.port})
        self.state = tempfile.mkdtemp(prefix="state-", dir=TMP)
        env = dict(os.environ, ORCD=ORCD)
        self.proc = subprocess.Popen(
            [os.path.join(ROOT, "scripts/serve-fleet.sh"), "-m", MODEL, "--device", "cpu", "--workers", str(WORKERS),
             "--port", str(self.port), "--base-port", str(self.base), "--state", self.state, "--", "-t", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
        deadline = time.monotonic() + 120
        self.log = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.log += line
            if line.startswith("ready url="):
                threading.Thread(target=self._drain, daemon=True).start()
                return
        self.stop()
        raise AssertionError("the fleet did not start:\n" + self.log)

    def _drain(self):
        for line in self.proc.stdout:
            self.log += line

    def worker_port(self, i):
        return self.base + i

    def served(self):
        """Requests each worker has answered with a 2xx, as HAProxy counts them (health checks not counted)."""
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(os.path.join(self.state, "haproxy.sock"))
        s.sendall(b"show stat\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        s.close()
        totals = {}
        lines = out.decode().splitlines()
        column = lines[0].lstrip("# ").split(",").index("hrsp_2xx")
        for line in lines[1:]:
            f = line.split(",")
            if len(f) > column and f[0] == "workers" and f[1].startswith("w"):
                totals[int(f[1][1:])] = int(f[column] or 0)
        return [totals.get(i, 0) for i in range(WORKERS)]

    def restart(self, worker=None):
        args = [os.path.join(ROOT, "scripts/serve-fleet.sh"), "restart", "--state", self.state]
        if worker is not None:
            args += ["--worker", str(worker)]
        return subprocess.run(args, capture_output=True, text=True, timeout=300, env=dict(os.environ, ORCD=ORCD))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Clients:
    """Client threads that send requests in a loop until stopped (at most `limit` each, a pause after a failure);
    a `with` block stops and joins them whatever happens inside it."""

    def __init__(self, n, send, limit=2000):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.results = []  # (time, (status, text))

        def loop():
            for _ in range(limit):
                if self.stop.is_set():
                    return
                r = send()
                with self.lock:
                    self.results.append((time.monotonic(), r))
                if r[0] != 200:
                    time.sleep(0.05)

        self.threads = [threading.Thread(target=loop, daemon=True) for _ in range(n)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=120)
        return False


class FleetTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fleet = Fleet()

    @classmethod
    def tearDownClass(cls):
        cls.fleet.stop()
        # Nothing is left behind: no worker and no HAProxy of this fleet.
        left = subprocess.run(["pgrep", "-f", cls.fleet.state], capture_output=True, text=True).stdout.strip()
        assert not left, f"processes left running: {left}"

    def test_1_requests_spread_over_every_worker(self):
        before = self.fleet.served()
        with Clients(6, lambda: completion(self.fleet.port), limit=6) as clients:
            for t in clients.threads:
                t.join(timeout=120)
        results = [r[0] for _, r in clients.results]
        self.assertEqual(results, [200] * 36, clients.results[:3])
        delta = [a - b for a, b in zip(self.fleet.served(), before)]
        self.assertEqual(sum(delta), 36, delta)
        self.assertTrue(all(d > 0 for d in delta), f"a worker got nothing: {delta}")

    def test_2_session_affinity(self):
        for session in ("alice", "bob", "carol"):
            before = self.fleet.served()
            for _ in range(5):
                status, text = completion(self.fleet.port, session=session)
                self.assertEqual(status, 200, text)
            delta = [a - b for a, b in zip(self.fleet.served(), before)]
            self.assertEqual(sorted(delta), [0, 0, 5], f"session {session} moved between workers: {delta}")

    def test_3_rolling_restart_fails_nothing(self):
        with Clients(2, lambda: completion(self.fleet.port, max_tokens=8)) as clients:
            r = self.fleet.restart()
            time.sleep(0.5)
        results = [x for _, x in clients.results]
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for i in range(WORKERS):
            self.assertIn(f"worker {i}: back in rotation", r.stderr)
        failed = [x for x in results if x[0] != 200]
        self.assertGreater(len(results), 10)
        self.assertEqual(failed, [], f"{len(failed)} of {len(results)} failed during the rolling restart")

    def test_4_killed_worker_loses_no_unstarted_request(self):
        with Clients(6, lambda: completion(self.fleet.port, max_tokens=64)) as clients:
            time.sleep(1.5)
            with open(os.path.join(self.fleet.state, "worker1.pid")) as f:
                pid = int(f.read())
            os.kill(pid, signal.SIGKILL)
            killed_at = time.monotonic()
            time.sleep(4)
        results = clients.results
        failed = [(t, r) for t, r in results if r[0] != 200]
        # Only requests that worker 1 was running when it died may fail (at most one per client), and they fail
        # with a clear error, not silently.
        self.assertLessEqual(len(failed), 6, failed)
        for t, (status, text) in failed:
            self.assertLess(t - killed_at, 2.0, "a request failed long after the kill")
            self.assertTrue(status == 502 and "stopped before it finished" in text or status == 0, (status, text))
        after = [r for t, r in results if t > killed_at + 1.0]
        self.assertGreater(len(after), 6)
        self.assertTrue(all(r[0] == 200 for r in after), "requests after the kill failed")
        # Bring it back for the other tests.
        r = self.fleet.restart(worker=1)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    if not os.path.exists(VOCAB):
        print(f"SKIP: {VOCAB} is absent (../shared)")
        sys.exit(0)
    if subprocess.run(["which", "haproxy"], capture_output=True).returncode != 0:
        print("SKIP: haproxy is not installed (scripts/setup.sh installs it)")
        sys.exit(0)
    subprocess.run([ORCD, "synth", "--preset", "qwen2.5-tiny", "--type", "Q8_0", "--vocab", VOCAB, "-o", MODEL],
                   check=True, capture_output=True, timeout=120)
    unittest.main(argv=[sys.argv[0], "-v"])
