#!/usr/bin/env bash
# Device step `bench`: the issue's performance table with `orcd bench --device cuda` on synth models of the reference
# shapes (Q4_K_M, llama.cpp's type mix): pp512 / tg128 (-r 5), then pp4096 and tg128 at depth 4096 (llama-bench
# -p 4096 -n 128 -d 4096), each next to the copy ceilings the same binary measures (`orcd bench --h2d`); then a smoke
# check that `orcd serve --device cuda` reports the backend's memory and residency on /health and /metrics.
# Every JSON result is appended to $OUT/bench.jsonl (pretty-printed objects, one after another).
#   PRESETS="qwen2.5-0.5b phi3-mini-4k"  REPS=5  DEPTH=4096  WEIGHTS="quantized f16" (when --weights exists)
set -euo pipefail
orcd=${ORCD:-build-dev/src/cli/orcd}
OUT=${OUT:-/tmp}; mkdir -p "$OUT"
PRESETS=${PRESETS:-"qwen2.5-0.5b phi3-mini-4k"}
REPS=${REPS:-5}
DEPTH=${DEPTH:-4096}
WEIGHTS=${WEIGHTS:-quantized}
vocab_dir=$(cd .. && pwd)/shared/models/vocab
[ -d "$vocab_dir" ] || vocab_dir=.carry/shared/models/vocab
m=/tmp/orcd-bench-models; mkdir -p "$m"
jsonl=$OUT/bench.jsonl; : > "$jsonl"
echo "--- copy ceilings"
$orcd bench --h2d
$orcd bench --h2d --json >> "$jsonl"
for preset in $PRESETS; do
  case $preset in qwen*) vocab=ggml-vocab-qwen2.5.gguf ;; phi3*) vocab=ggml-vocab-phi-3.gguf ;; *) vocab=ggml-vocab-llama-spm.gguf ;; esac
  f=$m/$preset-Q4_K_M.gguf
  # Context: depth + 4096 prompt tokens + 128 (Phi-3-mini-4k's own is 4096; llama-bench also runs past it).
  [ -f "$f" ] || $orcd synth --preset "$preset" --type Q4_K_M --vocab "$vocab_dir/$vocab" --ctx $((DEPTH + 4096 + 256)) \
                   -o "$f" >/dev/null
  for w in $WEIGHTS; do
    wa=(); [ "$w" = quantized ] || wa=(--weights "$w")
    echo "--- $preset Q4_K_M ($w weights): pp512 / tg128, -r $REPS"
    $orcd bench -m "$f" --device cuda "${wa[@]}" -p 512 -n 128 -r "$REPS" --json >> "$jsonl"
    $orcd bench -m "$f" --device cuda "${wa[@]}" -p 512 -n 128 -r "$REPS"
  done
  echo "--- $preset Q4_K_M: pp4096 @ d$DEPTH and tg128 @ d$DEPTH, -r 2"
  $orcd bench -m "$f" --device cuda -p 4096 -n 0 -d "$DEPTH" -r 2 --json >> "$jsonl"
  $orcd bench -m "$f" --device cuda -p 4096 -n 0 -d "$DEPTH" -r 2 | grep -E "^(pp|tg|load|vram|decode|copy)" || true
  $orcd bench -m "$f" --device cuda -p 0 -n 128 -d "$DEPTH" -r 2 --json >> "$jsonl"
  $orcd bench -m "$f" --device cuda -p 0 -n 128 -d "$DEPTH" -r 2 | grep -E "^(pp|tg|load|vram|decode|copy)" || true
done

echo "--- serve: /health and /metrics on cuda"
f=$m/qwen2.5-0.5b-Q4_K_M.gguf
log=/tmp/orcd-serve-bench.log
$orcd serve -m "$f" --device cuda --gpu 0 --port 0 --residency-interval 1 2>"$log" &
pid=$!
for _ in $(seq 1 120); do grep -q "ready" "$log" && break; sleep 0.5; done
grep "ready" "$log"
url=$(grep -o 'http://[^ ]*' "$log" | head -1)
curl -s "$url/health"; echo
curl -s -N "$url/execute" -H 'Content-Type: application/json' -d '{"job_id":"a","prompt":"hi","max_tokens":4}' >/dev/null
curl -s "$url/health"; echo
curl -s "$url/metrics" | grep worker_vram_bytes
kill -TERM $pid; wait $pid || true
