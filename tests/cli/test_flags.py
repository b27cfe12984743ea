#!/usr/bin/env python3
"""One flag vocabulary across commands (llama.cpp's names): for every command, the new spellings parse and run, and
the old ones (a positional model, --ctx, --device host) still work for one release with a deprecation note on stderr.
Also `--device cuda` without a usable GPU: the error names the cause and `--device cpu`.

usage: test_flags.py ORCD_BINARY SHARED_DIR CUDA_BUILD(ON|OFF)"""
import json
import os
import subprocess
import sys
import unittest

from cli_setup import ORCD, require_vocab, scratch, synth

CUDA_BUILD = (sys.argv[3] if len(sys.argv) > 3 else "OFF") == "ON"
GUIDE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../docs/GUIDE.md")
TMP = scratch("flags")
MODEL = os.path.join(TMP, "tiny.gguf")
TEXT = os.path.join(TMP, "text.txt")
CPU = ["--device", "cpu", "-t", "2"]


def orcd(*args, stdin=None, env=None):
    full_env = dict(os.environ)
    full_env.pop("ORCD_DEVICE", None)
    full_env.update(env or {})
    return subprocess.run([ORCD, *args], input=stdin, capture_output=True, text=True, timeout=120, env=full_env)


class FlagTest(unittest.TestCase):
    def ok(self, *args, stdin=None):
        """Runs, expects success and no deprecation note; returns the result."""
        p = orcd(*args, stdin=stdin)
        self.assertEqual(p.returncode, 0, f"orcd {' '.join(args)}\n{p.stderr}")
        self.assertNotIn("deprecated", p.stderr)
        return p

    def warns(self, old, new, *args, rc=0, stdin=None):
        """Runs with an old spelling: still does the job (exit `rc`), and stderr names the old and the new spelling."""
        p = orcd(*args, stdin=stdin)
        self.assertEqual(p.returncode, rc, f"orcd {' '.join(args)}\n{p.stderr}")
        self.assertIn(f"warning: {old} is deprecated and will be removed in the next release; use {new}", p.stderr)
        return p

    def test_generate(self):
        p = self.ok("generate", "-m", MODEL, "-p", "hi", "-n", "3", "-c", "64", "-s", "7", "--temp", "0.5",
                    "--top-k", "5", "--top-p", "0.9", "--min-p", "0.01", "--json", *CPU)
        j = json.loads(p.stdout)
        self.assertEqual((len(j["tokens"]), j["seed"]), (3, 7))
        self.warns("--ctx", "-c/--ctx-size", "generate", "-m", MODEL, "-p", "hi", "-n", "2", "--ctx", "64", *CPU)

    def test_perplexity(self):
        self.ok("perplexity", "-m", MODEL, "-f", TEXT, "-c", "16", *CPU)
        self.warns("--ctx", "-c/--ctx-size", "perplexity", "-m", MODEL, "-f", TEXT, "--ctx", "16", *CPU)

    def test_bench(self):
        self.ok("bench", "-m", MODEL, "-p", "8", "-n", "2", "-r", "1", *CPU)
        self.warns("--device host", "--device cpu", "bench", "-m", MODEL, "-p", "8", "-n", "2", "-r", "1",
                   "--device", "host", "-t", "2")

    def test_serve_parses_before_validating(self):
        # An out-of-range port fails validation, after the flags parsed and before any load.
        p = orcd("serve", "-m", MODEL, "-c", "64", *CPU, "--port", "70000")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("--port 70000: expected 0..65535", p.stderr)
        self.assertNotIn("deprecated", p.stderr)
        self.warns("--ctx", "-c/--ctx-size", "serve", "-m", MODEL, "--ctx", "64", *CPU, "--port", "70000", rc=1)

    def test_load(self):
        p = self.ok("load", "-m", MODEL, "-c", "64", *CPU, "--brief")
        self.assertIn("resident  yes", p.stdout)
        p = self.warns("the positional MODEL", "-m/--model MODEL", "load", MODEL, "--ctx", "64", "--device", "host",
                       "--brief")
        self.assertIn("--ctx is deprecated", p.stderr)
        self.assertIn("--device host is deprecated", p.stderr)
        self.assertIn("resident  yes", p.stdout)
        p = orcd("load", "--device", "cpu")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("-m/--model MODEL is required", p.stderr)
        p = orcd("load", MODEL, "-m", MODEL, "--device", "cpu")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("excludes", p.stderr)

    def test_chat(self):
        self.ok("chat", "-m", MODEL, "-c", "64", "-n", "2", "-s", "1", "--temp", "0", *CPU, stdin="hi\n/exit\n")
        self.warns("--ctx", "-c/--ctx-size", "chat", "-m", MODEL, "--ctx", "64", "-n", "2", *CPU,
                   stdin="hi\n/exit\n")

    def test_tokenize(self):
        p = self.ok("tokenize", "-m", MODEL, "--ids", "hello")
        self.assertTrue(json.loads(p.stdout))

    def test_inspect(self):
        self.assertIn("architecture:  qwen2", self.ok("inspect", "-m", MODEL).stdout)
        p = self.warns("the positional MODEL", "-m/--model MODEL", "inspect", MODEL)
        self.assertIn("architecture:  qwen2", p.stdout)

    def test_synth(self):
        out = os.path.join(TMP, "s.gguf")
        args = ["synth", "--preset", "qwen2.5-tiny", "--n-vocab", "64", "-o", out]
        self.ok(*args, "-s", "3", "-c", "128", "-t", "2")
        with open(out, "rb") as f:
            new = f.read()
        self.warns("--ctx", "-c/--ctx-size", *args, "-s", "3", "--ctx", "128", "-t", "2")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), new)  # the old spelling means the same thing

    def test_reference_lists_only_the_new_spellings(self):
        p = self.ok("reference", "flags")
        for cmd in ("generate", "perplexity", "bench", "serve", "load", "chat", "synth"):
            section = p.stdout.split(f"### `orcd {cmd}`")[1].split("### ")[0]
            self.assertIn("`-c,--ctx-size`" if cmd != "bench" else "`-m,--model`", section, cmd)
            self.assertNotIn("`--ctx`", section, cmd)
        self.assertNotIn("MODEL", p.stdout.split("### `orcd load`")[1].split("### ")[0])

    def test_device_cuda_without_a_gpu(self):
        count = orcd("load", "-m", MODEL, "--device", "cuda", "--brief")
        if CUDA_BUILD and count.returncode == 0:
            self.skipTest("SKIP: this machine has a GPU")
        for args in (["generate", "-m", MODEL, "-p", "hi", "-n", "1"], ["load", "-m", MODEL, "--brief"],
                     ["serve", "-m", MODEL], ["bench", "-m", MODEL, "-n", "1"]):
            p = orcd(*args, "--device", "cuda")
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("error [NO_DEVICE]", p.stderr)
            self.assertIn("--device cpu", p.stderr)
            self.assertNotIn("driver version is insufficient for CUDA runtime version;", p.stderr)
            if CUDA_BUILD:
                self.assertIn("no NVIDIA GPU or driver was found", p.stderr, args)
            else:
                self.assertRegex(p.stderr, r"no CUDA backend in this build|CUDA was not compiled into this build")
            # The guide's troubleshooting entry quotes this very line (its words, joined over the guide's line breaks).
            if not CUDA_BUILD and args[0] == "generate":
                with open(GUIDE) as f:
                    guide = " ".join(f.read().split())
                self.assertIn(p.stderr.strip().splitlines()[-1], guide)
        # $ORCD_DEVICE picks the device the same way.
        p = orcd("generate", "-m", MODEL, "-p", "hi", "-n", "1", env={"ORCD_DEVICE": "cuda"})
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("--device cpu", p.stderr)


if __name__ == "__main__":
    require_vocab()
    synth(MODEL)
    with open(TEXT, "w") as f:
        f.write("The quick brown fox jumps over the lazy dog. " * 20)
    unittest.main(argv=[sys.argv[0], "-v"])
