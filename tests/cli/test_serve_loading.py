#!/usr/bin/env python3
"""`orcd serve` answers while its model loads: the port is bound before the load, GET /health is 503 with state
"loading" and the load's percentage (never past 100, never going back), every other request is 503 LOADING with
Retry-After, and the real server then takes the same port over and says "ready". SIGTERM during the load exits 0 once
it is done; a second SIGINT exits 130 at once.

The load is held at its start through the ORCD_TEST_LOAD_GATE seam (a FIFO the worker reads before loading), so that
the checks do not depend on how fast the machine loads. Standard library only.

usage: test_serve_loading.py ORCD_BINARY SHARED_DIR"""
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

from cli_setup import ORCD, require_vocab, scratch, synth

TMP = scratch("serve-loading")
MODEL = os.path.join(TMP, "tiny.gguf")


def get(url, method="GET", body=None):
    """(status, headers, parsed JSON body) of one request."""
    req = urllib.request.Request(url, method=method, data=body,
                                 headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read() or b"null")


class ServeLoadingTest(unittest.TestCase):
    def setUp(self):
        self.gate = os.path.join(TMP, f"gate-{self._testMethodName}")
        os.mkfifo(self.gate)
        env = dict(os.environ, ORCD_TEST_LOAD_GATE=self.gate)
        self.proc = subprocess.Popen([ORCD, "serve", "-m", MODEL, "--device", "cpu", "-t", "2", "--port", "0",
                                      "--host", "127.0.0.1"], env=env, stderr=subprocess.PIPE)
        self.log = ""

    def tearDown(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc.stderr.close()

    def read_log_until(self, pattern, timeout=60):
        """Reads the worker's stderr until `pattern` matches; returns the match."""
        deadline = time.monotonic() + timeout
        while not (m := re.search(pattern, self.log)):
            left = deadline - time.monotonic()
            self.assertGreater(left, 0, f"no /{pattern}/ within {timeout} s:\n{self.log}")
            # os.read, not readline: a buffered reader would hold lines that select() no longer sees.
            if select.select([self.proc.stderr], [], [], left)[0]:
                data = os.read(self.proc.stderr.fileno(), 65536)
                self.assertTrue(data, f"the worker exited before /{pattern}/:\n{self.log}")
                self.log += data.decode("utf-8", "replace")
        return m

    def open_gate(self):
        with open(self.gate, "w"):
            pass

    def test_health_reports_loading_until_ready(self):
        port = int(self.read_log_until(r"listening on http://127\.0\.0\.1:(\d+)").group(1))
        base = f"http://127.0.0.1:{port}"

        status, headers, body = get(base + "/health")
        self.assertEqual(status, 503, body)
        self.assertEqual(body["state"], "loading")
        self.assertEqual(body["status"], "loading")
        self.assertEqual(body["loading"]["percent"], 0)
        self.assertEqual(body["loading"]["stage"], "start")
        self.assertEqual(body["model_path"], MODEL)
        self.assertFalse(body["accepting_jobs"])
        self.assertEqual(headers["Retry-After"], "1")

        # Everything else: 503 in the endpoint's own error shape, never a hang or a refused connection.
        status, headers, body = get(base + "/v1/models")
        self.assertEqual(status, 503)
        self.assertEqual(body["error"]["code"], "loading")
        self.assertIn("still loading", body["error"]["message"])
        self.assertEqual(headers["Retry-After"], "1")
        status, _, body = get(base + "/execute", "POST", b'{"prompt": "hi"}')
        self.assertEqual(status, 503)
        self.assertEqual(body["error"]["code"], "LOADING")
        self.assertNotIn("ready", self.log)

        self.open_gate()
        percents = []
        deadline = time.monotonic() + 60
        while True:
            self.assertLess(time.monotonic(), deadline, self.log)
            status, _, body = get(base + "/health")
            if status == 200:
                break
            self.assertEqual(status, 503, body)
            self.assertEqual(body["state"], "loading", body)
            self.assertIn(body["loading"]["stage"], ("start", "read", "upload", "init"))
            percents.append(body["loading"]["percent"])
        self.assertEqual(body["state"], "ready")
        self.assertTrue(all(0 <= p <= 100 for p in percents), percents)
        self.assertEqual(percents, sorted(percents), "the percentage went back")

        # The real server took the same port over.
        ready = self.read_log_until(r"orcd serve: ready .* address=http://127\.0\.0\.1:(\d+)")
        self.assertEqual(int(ready.group(1)), port)
        status, _, body = get(base + "/v1/models")
        self.assertEqual(status, 200, body)
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(timeout=30), 0)

    def test_second_sigint_while_loading_exits_at_once(self):
        port = int(self.read_log_until(r"listening on http://127\.0\.0\.1:(\d+)").group(1))
        self.assertEqual(get(f"http://127.0.0.1:{port}/health")[0], 503)
        self.proc.send_signal(signal.SIGINT)
        self.read_log_until(r"SIGINT received; shutting down")  # taken: the next one is a second press
        self.proc.send_signal(signal.SIGINT)
        # The load is still held at the gate: only the second press can end the process.
        self.assertEqual(self.proc.wait(timeout=30), 130)
        self.read_log_until(r"interrupted twice: exiting now")

    def test_sigterm_while_loading_exits_cleanly(self):
        port = int(self.read_log_until(r"listening on http://127\.0\.0\.1:(\d+)").group(1))
        self.assertEqual(get(f"http://127.0.0.1:{port}/health")[0], 503)
        self.proc.send_signal(signal.SIGTERM)
        self.open_gate()
        self.assertEqual(self.proc.wait(timeout=60), 0)
        self.read_log_until(r"interrupted during the load; exiting")
        self.assertNotIn("orcd serve: ready", self.log)


if __name__ == "__main__":
    require_vocab()
    synth(MODEL)
    unittest.main(argv=[sys.argv[0], "-v"])
