#!/usr/bin/env python3
"""Progress bars and interrupts as a terminal user sees them: `synth` and the load inside `chat`, `serve`, `generate`
and `bench` draw a bar on a terminal (plain lines when piped, never past 100 %); in `generate`, `perplexity` and
`bench` a first Ctrl-C stops the work cleanly (and says so) and a second one exits 130 at once.

No sleep stands in for synchronisation: a press is sent once the bar shows that the command's work has begun (its
interrupt handler is in place before the load), the second once the first has been announced.

usage: test_progress_pty.py ORCD_BINARY SHARED_DIR"""
import os
import re
import signal
import subprocess
import sys
import unittest

from cli_setup import ORCD, require_vocab, scratch, synth
from pty_session import PtySession

TMP = scratch("progress")
MODEL = os.path.join(TMP, "tiny.gguf")
# Real 0.5B shapes (4 blocks): its prefill of a long prompt, or one 512-token window, takes long enough for a second
# press to land while the first is still draining.
SLOW_MODEL = os.path.join(TMP, "slow.gguf")
LONG_PROMPT = "the quick brown fox jumps over the lazy dog " * 250
CPU = ["--device", "cpu", "-t", "2"]
PERCENT = re.compile(r"(\d+)%")
SYNTH = ["synth", "--preset", "qwen2.5-0.5b", "--layers", "2", "--type", "Q8_0", "--n-vocab", "4096"]


def percentages(text, label):
    """Every percentage printed on `label`'s bar or lines."""
    return [int(p) for seg in re.findall(label + r": [^\r\n]*", text) for p in PERCENT.findall(seg)[:1]]


class ProgressTest(unittest.TestCase):
    def assert_bar(self, screen, label):
        """A bar redrawn in place that reaches 100 % and never passes it."""
        self.assertIn(f"\r{label}: [", screen)
        got = percentages(screen, re.escape(label))
        self.assertTrue(got, screen[-2000:])
        self.assertEqual(max(got), 100, got)
        self.assertEqual(got, sorted(got), "the bar went backwards")

    def test_synth_bar_on_a_terminal(self):
        s = PtySession([ORCD, *SYNTH, "-o", os.path.join(TMP, "bar.gguf")])
        s.expect(r"wrote .*bar\.gguf")
        self.assertEqual(s.wait_exit(), 0)
        self.assert_bar(s.screen, "synth")
        self.assertIn("##############################] 100%", s.screen)

    def test_synth_plain_lines_when_piped(self):
        p = subprocess.run([ORCD, *SYNTH, "-o", os.path.join(TMP, "plain.gguf")], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("\r", p.stderr)
        lines = [line for line in p.stderr.splitlines() if line.startswith("synth:")]
        got = [int(PERCENT.search(line).group(1)) for line in lines]
        self.assertGreaterEqual(len(got), 2, p.stderr)
        self.assertLessEqual(len(got), 11, "at most one line per tenth")
        self.assertEqual(got[-1], 100)
        self.assertEqual(got, sorted(set(got)))

    def test_chat_load_bar(self):
        s = PtySession([ORCD, "chat", "-m", MODEL, *CPU])
        s.expect(r"ready: \d+ tokens of context")
        s.expect(r"> ")
        self.assert_bar(s.screen, "read")
        self.assertEqual(s.leave_with_ctrl_d(), 0)

    def test_serve_load_bar(self):
        s = PtySession([ORCD, "serve", "-m", MODEL, *CPU, "--port", "0", "--host", "127.0.0.1"])
        s.expect(r"orcd serve: ready ")
        self.assert_bar(s.screen, "orcd serve: read")
        os.kill(s.pid, signal.SIGTERM)
        self.assertEqual(s.wait_exit(), 0)

    def test_generate_first_ctrl_c_stops_cleanly(self):
        s = PtySession([ORCD, "generate", "-m", MODEL, "-p", "Once upon a time", "-n", "2000", "--temp", "1", *CPU])
        s.wait_more(48)
        s.type("\x03")
        s.expect(r"generated tokens: \d+ \(cancelled\)")
        self.assertEqual(s.wait_exit(), 0)

    def press_twice(self, s):
        """Ctrl-C once the load's bar is drawn, and again once the first press is announced (two presses in one
        write would reach the process as one signal)."""
        s.expect(r"read: \[")
        s.type("\x03")
        s.expect(r"interrupted: stopping \(press Ctrl-C again to exit now\)")
        s.type("\x03")
        self.assertEqual(s.wait_exit(timeout=5), 130)
        self.assertIn("interrupted twice: exiting", s.screen)

    def test_generate_load_bar(self):
        s = PtySession([ORCD, "generate", "-m", MODEL, "-p", "Hi", "-n", "2", *CPU])
        s.expect(r"generated tokens: \d+")
        self.assertEqual(s.wait_exit(), 0)
        self.assert_bar(s.screen, "read")

    def test_generate_second_ctrl_c_exits_during_a_long_prefill(self):
        s = PtySession([ORCD, "generate", "-m", SLOW_MODEL, "-p", LONG_PROMPT, "-n", "4", *CPU])
        self.press_twice(s)
        self.assertNotIn("generated tokens:", s.screen)

    def test_perplexity_first_ctrl_c_stops_after_the_window(self):
        text = os.path.join(TMP, "long.txt")
        with open(text, "w") as f:
            f.write("The quick brown fox jumps over the lazy dog. " * 6000)
        s = PtySession([ORCD, "perplexity", "-m", MODEL, "-f", text, "-c", "16", *CPU])
        s.expect(r"\[3/\d+\] PPL so far")
        s.type("\x03")
        s.expect(r"interrupted after window \d+ of \d+: PPL so far [\d.]+ \(no final estimate\)")
        self.assertEqual(s.wait_exit(), 130)

    def test_perplexity_second_ctrl_c_exits_during_a_window(self):
        text = os.path.join(TMP, "medium.txt")
        with open(text, "w") as f:
            f.write("The quick brown fox jumps over the lazy dog. " * 300)
        s = PtySession([ORCD, "perplexity", "-m", SLOW_MODEL, "-f", text, "-c", "1024", *CPU])
        self.press_twice(s)
        self.assertNotIn("PPL so far", s.screen)

    def test_bench_first_ctrl_c_stops_before_the_next_repetition(self):
        # Warm-up plus 50 repetitions of a 256-token prefill on the 4-block 0.5B shapes: far longer than a press takes.
        s = PtySession([ORCD, "bench", "-m", SLOW_MODEL, "-p", "256", "-n", "0", "-r", "50", *CPU])
        s.expect(r"read: \[")
        s.type("\x03")
        s.expect(r"interrupted: stopping \(press Ctrl-C again to exit now\)")
        s.expect(r"benchmark interrupted: no figures", timeout=120)
        self.assertEqual(s.wait_exit(), 130)
        self.assertNotIn("t/s", s.screen)

    def test_bench_second_ctrl_c_exits_during_a_repetition(self):
        s = PtySession([ORCD, "bench", "-m", SLOW_MODEL, "-p", "1024", "-n", "0", "-r", "50", *CPU])
        self.press_twice(s)
        self.assertNotIn("benchmark interrupted", s.screen)


if __name__ == "__main__":
    require_vocab()
    synth(MODEL)
    synth(SLOW_MODEL, "qwen2.5-0.5b", "--layers", "4")
    unittest.main(argv=[sys.argv[0], "-v"])
