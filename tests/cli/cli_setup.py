"""What the CLI test scripts share: the binary and ../shared from the command line (usage: SCRIPT ORCD_BINARY
SHARED_DIR), a scratch folder, the visible SKIP when ../shared is absent, and the tiny synth model most of them run."""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile

ORCD = sys.argv[1] if len(sys.argv) > 1 else "build/src/cli/orcd"
SHARED = sys.argv[2] if len(sys.argv) > 2 else "../shared"
VOCAB = os.path.join(SHARED, "models/vocab/ggml-vocab-qwen2.5.gguf")


def scratch(name):
    """A fresh temporary folder for one script's files, removed when the script exits."""
    path = tempfile.mkdtemp(prefix=f"orcd-{name}-test-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def require_vocab():
    """Ends the script with a visible SKIP (exit 0) when the vocabulary from ../shared is absent."""
    if not os.path.exists(VOCAB):
        print(f"SKIP: {VOCAB} is absent (../shared)")
        sys.exit(0)


def synth(path, preset="qwen2.5-tiny", *extra):
    """Writes a random-weight Q8_0 model with the real Qwen2.5 vocabulary to `path`."""
    subprocess.run([ORCD, "synth", "--preset", preset, "--type", "Q8_0", "--vocab", VOCAB, *extra, "-o", path],
                   check=True, capture_output=True, timeout=120)
