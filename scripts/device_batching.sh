#!/usr/bin/env bash
# Device step `batching` (issue 15): the batched engine on synth models of the reference shapes (Q4_K_M).
#   PARTS="bench serve prefix latency profile" (default: bench serve prefix)
#   bench    `orcd bench --batch 1,8,16,64` (aggregate and per-sequence decode tok/s) + the copy ceilings
#   serve    `orcd serve --device cuda --parallel P` driven by bench/serve_load.py: the issue's workload (100-token
#            prompts, 128 new tokens, greedy, streamed /v1/completions, closed loop) at CLIENTS clients
#   prefix   time to first token of a prompt behind a shared 1,000-token prefix, with and without the prefix cache
#   latency  the fixed cost of one request: the prefill step alone (`orcd bench`, 16/100/512-token prompts) against
#            the time to first token of the same prompts through `orcd serve` (1 client, max_tokens 1 and 2), on a new
#            connection per request and on kept-alive connections
#   profile  per-kernel device time of a few batched decode steps (ncu, B = PROFILE_BATCH)
#   SERVE_ENVS="- ORCD_PDL=0": the serve part once per entry, each under that one environment setting ("-": none), in
#   this order, so that an A/B of a tuning override (docs/PERF.md) shares the call
# Everything is printed; the servers' logs go to $OUT/serve.log, the bench and serve JSON to $OUT/batch-*.json and
# $OUT/serve-*.json (the plots' data).
set -uo pipefail
orcd=${ORCD:-build-dev/src/cli/orcd}
OUT=${OUT:-/tmp}; mkdir -p "$OUT"
PARTS=${PARTS:-"bench serve prefix"}
PRESETS=${PRESETS:-"qwen2.5-0.5b phi3-mini-4k"}
CLIENTS_qwen=${CLIENTS_qwen:-1,16,64}
CLIENTS_phi3=${CLIENTS_phi3:-16}
PROFILE_BATCH=${PROFILE_BATCH:-16}
vocab_dir=$(cd .. && pwd)/shared/models/vocab
[ -d "$vocab_dir" ] || vocab_dir=.carry/shared/models/vocab
m=/tmp/orcd-batching-models; mkdir -p "$m"
has() { [[ " $PARTS " == *" $1 "* ]]; }

model_for() {
  local preset=$1 vocab
  case $preset in qwen*) vocab=ggml-vocab-qwen2.5.gguf ;; phi3*) vocab=ggml-vocab-phi-3.gguf ;; *) vocab=ggml-vocab-llama-spm.gguf ;; esac
  local f=$m/$preset-Q4_K_M.gguf
  [ -f "$f" ] || $orcd synth --preset "$preset" --type Q4_K_M --vocab "$vocab_dir/$vocab" -o "$f" >/dev/null
  echo "$f"
}

# Starts orcd serve on a free port; sets SERVE_PID and PORT.
SERVE_LOG=/tmp/orcd-batching-serve.log
start_serve() {
  local f=$1; shift
  : > "$SERVE_LOG"
  $orcd serve -m "$f" --device cuda --port 0 "$@" 2> "$SERVE_LOG" > /dev/null &
  SERVE_PID=$!
  PORT=""
  for _ in $(seq 1 600); do
    PORT=$(grep -o 'address=http://127.0.0.1:[0-9]*' "$SERVE_LOG" | tail -1 | grep -o '[0-9]*$')
    [ -n "$PORT" ] && curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && return 0
    sleep 0.1
  done
  cat "$SERVE_LOG"; echo "orcd serve did not start"; return 1
}
# start_serve under the serve part's environment setting (env_args: empty, or one VAR=VALUE).
start_serve_env() {
  if [ ${#env_args[@]} -gt 0 ]; then export "${env_args[0]}"; fi
  start_serve "$@"; local rc=$?
  if [ ${#env_args[@]} -gt 0 ]; then unset "${env_args[0]%%=*}"; fi
  return $rc
}
stop_serve() {
  kill -TERM "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null
  { echo "=== orcd serve $*"; cat "$SERVE_LOG"; } >> "$OUT/serve.log"
}

if has bench; then
  echo "--- copy ceilings"; $orcd bench --h2d
  for preset in $PRESETS; do
    f=$(model_for "$preset")
    echo "--- $preset Q4_K_M: orcd bench --batch 1,8,16,64 (prompt 100, 128 decode steps)"
    # JSON, kept for scripts/plot_bench.py --batch (docs/img/data/README.md)
    $orcd bench -m "$f" --device cuda --batch 1,8,16,64 -p 100 -n 128 -r 2 --json | tee "$OUT/batch-$preset.json"
  done
fi

if has serve; then
  for serve_env in ${SERVE_ENVS:--}; do
    env_args=(); [ "$serve_env" = - ] || env_args=("$serve_env")
    for preset in $PRESETS; do
      f=$(model_for "$preset")
      case $preset in qwen*) clients=$CLIENTS_qwen ;; *) clients=$CLIENTS_phi3 ;; esac
      par=$(echo "$clients" | tr ',' '\n' | sort -n | tail -1)
      echo "--- $preset Q4_K_M: orcd serve --parallel $par, serve_load clients $clients, environment: $serve_env"
      start_serve_env "$f" --parallel "$par" -c 4096 || exit 1
      curl -s "http://127.0.0.1:$PORT/health"; echo
      # JSON, kept for scripts/plot_bench.py --serve (docs/img/data/README.md)
      python3 bench/serve_load.py --url "http://127.0.0.1:$PORT" --clients "$clients" --prompt-tokens 100 \
        --max-tokens 128 --requests-per-client 4 --request-timeout 120 --json |
        tee "$OUT/serve-$preset${env_args:+-${serve_env//=/}}.json"
      echo
      curl -s "http://127.0.0.1:$PORT/health"; echo
      curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^worker_(kv_|batch_size_(sum|count)|requests_(running|waiting)|prefix_cache|preemptions)' | head -20
      stop_serve
    done
  done
fi

if has prefix; then
  f=$(model_for qwen2.5-0.5b)
  for cache in on off; do
    extra=(); [ $cache = off ] && extra=(--no-prefix-cache)
    echo "--- prefix cache $cache: 1,000-token shared prefix + 100 distinct tokens, 1 client"
    start_serve "$f" --parallel 4 -c 4096 "${extra[@]}" || exit 1
    python3 bench/serve_load.py --url "http://127.0.0.1:$PORT" --clients 1 --prompt-tokens 1100 \
      --shared-prefix-tokens 1000 --max-tokens 16 --requests-per-client 8 --request-timeout 120
    # How many prompt tokens the prefix cache served (the warm-up request included).
    curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^worker_prefix_cache_(hits|queries)_total'
    stop_serve
  done
fi

if has latency; then
  f=$(model_for qwen2.5-0.5b)
  # TTFT minus the prefill step is the request's path outside the device (HTTP, tokenizer, scheduler, events, SSE).
  echo "--- latency: the prefill step alone, one sequence (pp tok/s; the step is prompt / rate)"
  for p in 16 100 512; do $orcd bench -m "$f" --device cuda -p "$p" -n 1 -r 5 | grep -E '^\| pp'; done
  # The same with every matrix dequantized to f16 once at load: what the prefill's per-call dequantization costs.
  for p in 16 100; do $orcd bench -m "$f" --device cuda --weights f16 -p "$p" -n 1 -r 5 | grep -E '^\| pp'; done
  start_serve "$f" --parallel 4 -c 4096 || exit 1
  seed=0  # every run its own prompts: a repeated prompt would be served from the prefix cache
  for conn in "" --keep-alive; do
    for p in 16 100 512; do
      for mt in 1 2; do
        seed=$((seed + 1))  # here, not inside the pipeline below, whose parts run in subshells
        echo "--- latency: serve, 1 client, prompt $p, max_tokens $mt ${conn:-(a connection per request)}"
        python3 bench/serve_load.py --url "http://127.0.0.1:$PORT" --clients 1 --prompt-tokens "$p" \
          --max-tokens "$mt" --requests-per-client 40 --warmup 3 --request-timeout 60 --seed "$seed" $conn | tail -1
      done
    done
  done
  stop_serve
fi

if has profile; then
  f=$(model_for qwen2.5-0.5b)
  echo "--- ncu: batched decode, B = $PROFILE_BATCH (kernel time summed by name)"
  ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
    $orcd bench -m "$f" --device cuda --batch "$PROFILE_BATCH" -p 16 -n 4 -r 1 > "$OUT/ncu.csv" 2> "$OUT/ncu.err"
  python3 - "$OUT/ncu.csv" <<'EOF'
import csv, collections, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
hdr = rows[0]; name_i = hdr.index("Kernel Name"); val_i = hdr.index("Metric Value")
tot = collections.Counter(); cnt = collections.Counter()
for r in rows[1:]:
    try: v = float(r[val_i].replace(",", ""))
    except ValueError: continue
    k = r[name_i].split("(")[0][:90]; tot[k] += v; cnt[k] += 1
s = sum(tot.values())
for k, v in tot.most_common(25): print(f"{v/1e3:10.1f} us  {100*v/s:5.1f} %  {cnt[k]:6d}x  {k}")
print(f"total {s/1e3:.1f} us over {sum(cnt.values())} kernels")
EOF
fi
