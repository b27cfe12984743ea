#!/usr/bin/env python3
"""`orcd chat` driven through a pseudo-terminal, as a person types: line editing, history, the slash commands,
Ctrl-C stopping an answer, a second Ctrl-C exiting, Ctrl-D leaving. Standard library only; every wait is bounded.

usage: test_chat_pty.py ORCD_BINARY SHARED_DIR"""
import json
import os
import re
import select
import subprocess
import sys
import time
import unittest

from cli_setup import ORCD, require_vocab, scratch, synth
from pty_session import PtySession

TMP = scratch("chat")
MODEL = os.path.join(TMP, "tiny.gguf")


class Chat(PtySession):
    """One `orcd chat` process on a pseudo-terminal."""

    def __init__(self, *extra):
        super().__init__([ORCD, "chat", "-m", MODEL, "--device", "cpu", "-t", "2", "--temp", "0", *extra])


class ChatTest(unittest.TestCase):
    def test_conversation_commands_and_keys(self):
        c = Chat("-n", "6")
        c.expect(r"ready: \d+ tokens of context")
        c.expect(r"> ")
        # Line editing: type "helo", move left once, insert "l" -> "hello"; the answer is printed with its stats.
        c.type("helo\x1b[Dl\r")
        c.expect(r"\[6 tokens, [\d.]+ tok/s, prompt (\d+) tokens\]")
        c.expect(r"> ")
        path = os.path.join(TMP, "conv.json")
        c.type(f"/save {path}\r")
        c.expect(r"\(saved 2 messages to ")
        with open(path) as f:
            saved = json.load(f)
        self.assertEqual(saved["messages"][0], {"role": "user", "content": "hello"})
        self.assertEqual(saved["messages"][1]["role"], "assistant")
        # History: the up arrow brings back the last line typed (the /save command), Ctrl-U clears it.
        c.type("\x1b[A")
        c.expect(re.escape(f"/save {path}"))
        c.type("\x15/reset\r")
        c.expect(r"\(conversation cleared\)")
        c.type(f"/load {path}\r")
        c.expect(r"\(loaded 2 messages from ")
        # The loaded conversation is rendered again: the prompt now holds both turns and the new one.
        c.type("again\r")
        m = c.expect(r"\[6 tokens, [\d.]+ tok/s, prompt (\d+) tokens\]")
        self.assertGreater(int(m.group(1)), 20)
        c.type("/system be brief\r")
        c.expect(r"\(system message set; conversation cleared\)")
        c.type("/load /nonexistent/file.json\r")
        c.expect(r"error: cannot read a conversation from /nonexistent/file.json")
        # A JSON file of another shape is named as such (a "format" of another type once escaped as a JSON library
        # exception).
        odd = os.path.join(TMP, "odd.json")
        with open(odd, "w") as f:
            json.dump({"format": 5, "version": 1, "messages": []}, f)
        c.type(f"/load {odd}\r")
        c.expect(r"odd.json: not a conversation saved by /save: expected an object with \"format\": \"orcd-chat\"")
        c.type("/bogus\r")
        c.expect(r"unknown command /bogus")
        # Ctrl-C at the prompt drops the line and asks again; the program stays.
        c.type("half a line\x03")
        c.expect(r"\^C")
        c.expect(r"> ")
        # Ctrl-D on an empty line leaves. libedit redrawing the prompt after ^C may flush a key typed meanwhile (CI saw
        # the Ctrl-D vanish), so it is typed until the program exits.
        self.assertEqual(c.leave_with_ctrl_d(), 0)

    def test_ctrl_c_stops_the_answer_and_a_second_exits(self):
        c = Chat("-n", "100000")
        c.expect(r"> ")
        c.type("write forever\r")
        # Keys typed before the line reader takes the terminal are echoed twice (by the terminal, then by the reader),
        # so 24 bytes may still be echo: 256 are the answer streaming whichever way the line was read.
        c.wait_more(256)
        c.type("\x03")
        c.expect(r"\[stopped after \d+ tokens")
        c.expect(r"> ")
        c.type("and again\r")
        c.wait_more(256)
        c.type("\x03")
        time.sleep(0.05)
        c.type("\x03")
        # Both presses land while the answer streams (exit 130 at once), or the first ends the answer within a step
        # and the second finds the prompt (the program stays; Ctrl-D then leaves). Nothing else may happen.
        deadline = time.monotonic() + 10
        while "interrupted twice" not in c.screen and c.screen.count("stopped after") < 2:
            self.assertLess(time.monotonic(), deadline, c.screen[-2000:])
            if select.select([c.fd], [], [], 0.2)[0]:
                try:
                    c.screen += os.read(c.fd, 65536).decode("utf-8", "replace")
                except OSError:
                    break
        if "interrupted twice" in c.screen:
            self.assertEqual(c.wait_exit(), 130)
        else:
            self.assertEqual(c.leave_with_ctrl_d(), 0)

    def test_piped_input_without_terminal(self):
        p = subprocess.run([ORCD, "chat", "-m", MODEL, "--device", "cpu", "-t", "2", "--temp", "0", "-n", "4"],
                           input="hello\n/exit\n", capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stderr, r"\[4 tokens, [\d.]+ tok/s, prompt \d+ tokens\]")

    def test_errors_before_loading(self):
        p = subprocess.run([ORCD, "chat", "-m", MODEL, "--device", "cpu", "--gpu", "1"], capture_output=True,
                           text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--gpu", p.stderr)


if __name__ == "__main__":
    require_vocab()
    synth(MODEL)
    unittest.main(argv=[sys.argv[0], "-v"])
