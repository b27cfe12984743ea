#!/usr/bin/python3
"""The guide's plots: scripts/plot_bench.py draws every image from the data in docs/img/data, every number in that
data is one docs/PERF.md reports (the images show the record's figures, not others), and the guide shows every image.
Needs Debian's python3-matplotlib (hence /usr/bin/python3)."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "docs/img/data")
BATCH = os.path.join(DATA, "batch_2026-12-04.json")
SERVE = os.path.join(DATA, "serve_2026-12-04.json")


def objects(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def perf_numbers():
    """Every number written in docs/PERF.md, thousands separators removed."""
    with open(os.path.join(ROOT, "docs/PERF.md")) as f:
        text = f.read()
    return {float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*\.?\d*", text)}


class PlotsTest(unittest.TestCase):
    def test_plot_bench_draws_every_image_from_the_data(self):
        out = tempfile.mkdtemp(prefix="orcd-plots-")
        self.addCleanup(shutil.rmtree, out, ignore_errors=True)
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/plot_bench.py"), "--batch", BATCH, "--serve",
                        SERVE, "-o", out], check=True, timeout=120)
        for name in ("decode_vs_batch.png", "serve_vs_clients.png"):
            path = os.path.join(out, name)
            with open(path, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", name)
            self.assertGreater(os.path.getsize(path), 10000, name)

    def test_every_plotted_number_is_in_perf_md(self):
        known = perf_numbers()
        values = []
        for o in objects(BATCH):
            values += [r["tg"]["tokens_per_s_mean"] for r in o["batch"]]
        for o in objects(SERVE):
            for p in o["phases"]:
                values += [p["output_tok_per_s"], p["ttft_ms"]["p50"], p["ttft_ms"]["p90"], p["ttft_ms"]["p99"]]
        self.assertGreater(len(values), 20)
        missing = [v for v in values if v not in known]
        self.assertEqual(missing, [], "plotted figures that docs/PERF.md does not report")

    def test_the_guide_shows_every_committed_image(self):
        with open(os.path.join(ROOT, "docs/GUIDE.md")) as f:
            guide = f.read()
        images = [n for n in os.listdir(os.path.join(ROOT, "docs/img")) if n.endswith(".png")]
        self.assertGreaterEqual(len(images), 3)
        for name in images:
            self.assertTrue(f"](img/{name})" in guide, f"docs/GUIDE.md does not show img/{name}")


if __name__ == "__main__":
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("SKIP: python3-matplotlib is not installed")
        sys.exit(0)
    unittest.main(argv=[sys.argv[0], "-v"])
