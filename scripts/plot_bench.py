#!/usr/bin/python3
"""Plots for docs/GUIDE.md and docs/PERF.md from benchmark JSON (Debian's python3-matplotlib):
  - decode tokens/s against context depth, from `orcd bench --json` objects (one per line or concatenated);
  - aggregate output tokens/s and time to first token against concurrent clients, from `bench/serve_load.py --json`.
usage: plot_bench.py --depth BENCH.jsonl --serve SERVE.json [--title-suffix TEXT] -o OUTDIR"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_objects(path):
    """Every JSON object in a file of objects, one after another (pretty-printed or one per line)."""
    text = open(path).read()
    dec = json.JSONDecoder()
    i, out = 0, []
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        obj, i = dec.raw_decode(text, i)
        out.append(obj)
    return out


def plot_depth(objs, out, suffix):
    series = {}
    for o in objs:
        tg = o.get("tg") or {}
        depth = o.get("tg_depth")  # the depth decode ran at: -d plus the prompt
        if depth is None or not tg.get("tokens_per_s_mean"):
            continue
        name = o.get("model_name") or os.path.basename(o.get("model", "model"))
        series.setdefault(name, []).append((depth, tg["tokens_per_s_mean"], tg.get("tokens_per_s_stddev", 0)))
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, pts in sorted(series.items()):
        pts.sort()
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o", capsize=3,
                    label=name)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("tokens already in the KV cache (depth)")
    ax.set_ylabel("decode tokens/s (one sequence)")
    ax.set_title("Single-stream decode against context depth" + suffix)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "decode_vs_depth.png"), dpi=110)


def plot_serve(objs, out, suffix):
    rows = []
    for o in objs:
        for r in o.get("phases", [o]):
            if "clients" in r and r.get("output_tok_per_s"):
                rows.append(r)
    rows.sort(key=lambda r: r["clients"])
    fig, ax1 = plt.subplots(figsize=(7, 4))
    c = [r["clients"] for r in rows]
    ax1.plot(c, [r["output_tok_per_s"] for r in rows], marker="o", color="tab:blue", label="aggregate tok/s")
    ax1.set_xscale("log", base=2)
    ax1.set_xticks(c)
    ax1.set_xticklabels([str(x) for x in c])
    ax1.set_ylim(bottom=0)
    ax1.set_xlabel("concurrent clients (closed loop)")
    ax1.set_ylabel("aggregate output tokens/s", color="tab:blue")
    ax2 = ax1.twinx()
    ax2.plot(c, [r["ttft_ms"]["p50"] for r in rows], marker="s", color="tab:red", label="TTFT p50")
    ax2.set_ylabel("time to first token, median (ms)", color="tab:red")
    ax2.set_ylim(bottom=0)
    ax1.set_title("Serving throughput against concurrent clients" + suffix)
    ax1.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "serve_vs_clients.png"), dpi=110)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth")
    ap.add_argument("--serve")
    ap.add_argument("--title-suffix", default="")
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.depth:
        plot_depth(read_objects(a.depth), a.out, a.title_suffix)
    if a.serve:
        plot_serve(read_objects(a.serve), a.out, a.title_suffix)


if __name__ == "__main__":
    main()
