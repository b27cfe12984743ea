#!/usr/bin/python3
"""Plots for docs/GUIDE.md and docs/PERF.md from benchmark JSON (Debian's python3-matplotlib), each file holding JSON
objects one after another (one per line or pretty-printed):
  - decode tokens/s against context depth, from `orcd bench --json` objects  -> decode_vs_depth.png
  - decode tokens/s against batch size, from `orcd bench --batch ... --json`  -> decode_vs_batch.png
  - output tokens/s and time to first token against concurrent clients, from `bench/serve_load.py --json`, one line
    per server and model                                                      -> serve_vs_clients.png
The data behind the committed images is in docs/img/data/ (its README says where each number comes from).
usage: plot_bench.py [--depth F] [--batch F] [--serve F] [--title-suffix TEXT] -o OUTDIR"""
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


def plot_batch(objs, out, suffix):
    """Aggregate and per-sequence decode tokens/s against the batch size, one line per model."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    sizes = set()
    for o in sorted(objs, key=lambda o: o.get("model_name", "")):
        rows = sorted((r for r in o.get("batch", []) if (r.get("tg") or {}).get("tokens_per_s_mean")),
                      key=lambda r: r["batch"])
        if not rows:
            continue
        name = o.get("model_name") or os.path.basename(o.get("model", "model"))
        b = [r["batch"] for r in rows]
        sizes.update(b)
        ax1.plot(b, [r["tg"]["tokens_per_s_mean"] for r in rows], marker="o", label=name)
        ax2.plot(b, [r.get("tg_per_sequence_tokens_per_s", r["tg"]["tokens_per_s_mean"] / r["batch"]) for r in rows],
                 marker="o", label=name)
    for ax, what in ((ax1, "decode tokens/s, all sequences"), (ax2, "decode tokens/s, each sequence")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(sizes))
        ax.set_xticklabels([str(x) for x in sorted(sizes)])
        ax.set_ylim(bottom=0)
        ax.set_xlabel("sequences decoding together (batch size)")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    fig.suptitle("Batched decode against batch size" + suffix)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "decode_vs_batch.png"), dpi=110)


def plot_serve(objs, out, suffix):
    """Aggregate output tokens/s and time to first token (p90) against concurrent clients, one line per server and
    model (bench/serve_load.py --json objects; setup.server_kind and setup.model name the line)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    clients = set()
    markers = iter(["o", "D", "^", "s", "v", "P"] * 4)  # distinct, since two lines may share a point
    for o in objs:
        setup = o.get("setup", {})
        rows = sorted((r for r in o.get("phases", [o]) if "clients" in r and r.get("output_tok_per_s")),
                      key=lambda r: r["clients"])
        if not rows:
            continue
        label = f"{setup.get('server_kind', 'server')}, {setup.get('model', 'model')}"
        style = "--" if "llama" in setup.get("server_kind", "") else "-"
        c = [r["clients"] for r in rows]
        clients.update(c)
        marker = next(markers)
        ax1.plot(c, [r["output_tok_per_s"] for r in rows], style, marker=marker, fillstyle="none", label=label)
        ax2.plot(c, [r["ttft_ms"]["p90"] for r in rows], style, marker=marker, fillstyle="none", label=label)
    for ax, what in ((ax1, "aggregate output tokens/s"), (ax2, "time to first token, p90 (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(clients))
        ax.set_xticklabels([str(x) for x in sorted(clients)])
        ax.set_ylim(bottom=0)
        ax.set_xlabel("concurrent clients (closed loop)")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    fig.suptitle("Serving against concurrent clients" + suffix)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "serve_vs_clients.png"), dpi=110)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", help="orcd bench --json objects at several -d")
    ap.add_argument("--batch", help="orcd bench --batch ... --json objects, one per model")
    ap.add_argument("--serve", help="bench/serve_load.py --json objects, one per server and model")
    ap.add_argument("--title-suffix", default="")
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.depth:
        plot_depth(read_objects(a.depth), a.out, a.title_suffix)
    if a.batch:
        plot_batch(read_objects(a.batch), a.out, a.title_suffix)
    if a.serve:
        plot_serve(read_objects(a.serve), a.out, a.title_suffix)


if __name__ == "__main__":
    main()
