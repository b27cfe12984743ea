#!/usr/bin/env bash
# Device step `bench`: `orcd bench --device cuda` (llama-bench style pp/tg, load time, VRAM, decode's effective
# bandwidth vs the device-to-device copy bandwidth) on synth models of the reference shapes, then a smoke check that
# `orcd serve --device cuda` reports the backend's memory and residency on /health and /metrics.
set -euo pipefail
orcd=build-dev/src/cli/orcd
vocab_dir=$(cd .. && pwd)/shared/models/vocab
[ -d "$vocab_dir" ] || vocab_dir=.carry/shared/models/vocab
m=/tmp/orcd-bench-models; mkdir -p "$m"
synth() {  # preset type vocab-file
  [ -f "$m/$1-$2.gguf" ] || $orcd synth --preset "$1" --type "$2" --vocab "$vocab_dir/$3" -o "$m/$1-$2.gguf" >/dev/null
}
synth qwen2.5-0.5b Q8_0 ggml-vocab-qwen2.5.gguf
synth qwen2.5-0.5b Q4_K_M ggml-vocab-qwen2.5.gguf
synth phi3-mini-4k Q4_K_M ggml-vocab-phi-3.gguf
for f in qwen2.5-0.5b-Q8_0 qwen2.5-0.5b-Q4_K_M phi3-mini-4k-Q4_K_M; do
  echo "--- $f"
  $orcd bench -m "$m/$f.gguf" --device cuda -p 512 -n 128 -r 3
  $orcd bench -m "$m/$f.gguf" --device cuda -p 512 -n 128 -r 3 --json > "${OUT:-/tmp}/bench-$f.json"
done
echo "--- qwen2.5-0.5b-Q8_0 at depth 3072"
$orcd bench -m "$m/qwen2.5-0.5b-Q8_0.gguf" --device cuda -p 512 -n 128 -d 3072 -r 2

echo "--- serve: /health and /metrics on cuda"
log=/tmp/orcd-serve-bench.log
$orcd serve -m "$m/qwen2.5-0.5b-Q8_0.gguf" --device cuda --gpu 0 --port 0 --residency-interval 1 2>"$log" &
pid=$!
for _ in $(seq 1 120); do grep -q "ready" "$log" && break; sleep 0.5; done
grep "ready" "$log"
url=$(grep -o 'http://[^ ]*' "$log" | head -1)
curl -s "$url/health"; echo
curl -s -N "$url/execute" -H 'Content-Type: application/json' -d '{"job_id":"a","prompt":"hi","max_tokens":4}' >/dev/null
curl -s "$url/health"; echo
curl -s "$url/metrics" | grep worker_vram_bytes
kill -TERM $pid; wait $pid || true
