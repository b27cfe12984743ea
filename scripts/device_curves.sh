#!/usr/bin/env bash
# Device step `curves`: the data behind the guide's plots and the serving table, in one call.
#   1. decode tokens/s against context depth: `orcd bench -p 0 -n 128 -d D` for D in $DEPTHS, per preset
#      -> $OUT/depth.jsonl
#   2. serving: `orcd serve --device cuda` on the Qwen2.5-0.5B shape, driven by bench/serve_load.py (100-token
#      prompts, 128 new tokens, greedy, streamed /v1/completions, closed loop) at $CLIENTS -> $OUT/serve.json
# Then scripts/plot_bench.py (here, where matplotlib is) draws them.
#   PRESETS="qwen2.5-0.5b phi3-mini-4k"  DEPTHS="0 1024 2048 4096 8192"  CLIENTS=1,4,16  REQUESTS=4
set -uo pipefail
orcd=${ORCD:-build-dev/src/cli/orcd}
OUT=${OUT:-/tmp}; mkdir -p "$OUT"
PRESETS=${PRESETS:-"qwen2.5-0.5b phi3-mini-4k"}
DEPTHS=${DEPTHS:-"0 1024 2048 4096 8192"}
CLIENTS=${CLIENTS:-1,4,16}
REQUESTS=${REQUESTS:-4}
vocab_dir=$(cd .. && pwd)/shared/models/vocab
[ -d "$vocab_dir" ] || vocab_dir=.carry/shared/models/vocab
m=/tmp/orcd-bench-models; mkdir -p "$m"
: > "$OUT/depth.jsonl"
for preset in $PRESETS; do
  case $preset in qwen*) vocab=ggml-vocab-qwen2.5.gguf ;; phi3*) vocab=ggml-vocab-phi-3.gguf ;; *) vocab=ggml-vocab-llama-spm.gguf ;; esac
  f=$m/$preset-Q4_K_M.gguf
  [ -f "$f" ] || $orcd synth --preset "$preset" --type Q4_K_M --vocab "$vocab_dir/$vocab" --ctx 8448 -o "$f" >/dev/null
  for d in $DEPTHS; do
    $orcd bench -m "$f" --device cuda -p 0 -n 128 -d "$d" -r 2 --json >> "$OUT/depth.jsonl" || echo "bench $preset d$d failed"
  done
  python3 - "$OUT/depth.jsonl" "$preset" <<'PY'
import json, sys
text = open(sys.argv[1]).read(); dec = json.JSONDecoder(); i = 0
while i < len(text):
    while i < len(text) and text[i].isspace(): i += 1
    if i >= len(text): break
    o, i = dec.raw_decode(text, i)
    if sys.argv[2] not in o.get("model", ""): continue
    print(f"{o.get('model_name')}: tg128 @ d{o.get('tg_depth')}: {o['tg']['tokens_per_s_mean']:.1f} tok/s")
PY
done

f=$m/qwen2.5-0.5b-Q4_K_M.gguf
log=/tmp/orcd-serve-curves.log
$orcd serve -m "$f" --device cuda --port 0 2>"$log" &
pid=$!
for _ in $(seq 1 240); do grep -q " ready " "$log" && break; sleep 0.25; done
url=$(grep -o 'http://[^ ]*' "$log" | head -1)
echo "serving at $url"
python3 bench/serve_load.py --url "$url" --clients "$CLIENTS" --prompt-tokens 100 --max-tokens 128 \
  --requests-per-client "$REQUESTS" --json > "$OUT/serve.json" || echo "serve_load failed"
python3 bench/serve_load.py --url "$url" --clients 1 --prompt-tokens 100 --max-tokens 128 --requests-per-client 2 || true
kill -TERM $pid; wait $pid || true
python3 - "$OUT/serve.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for p in r["phases"]:
    print(f"clients {p['clients']}: {p['output_tok_per_s']:.0f} tok/s, TTFT p50 {p['ttft_ms']['p50']:.0f} ms p90 {p['ttft_ms']['p90']:.0f} ms, errors {p['errors']}")
PY
