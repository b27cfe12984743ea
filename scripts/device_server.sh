#!/usr/bin/env bash
# Device step `server`: `orcd serve --device cuda` on a synth model of each reference shape, driven by the same
# end-to-end client tests as CI (tests/server/test_serve: curl, raw sockets, the openai npm client, the Prometheus
# parser), then stopped by those tests. Logs under $OUT (5 files + device.sh's: within the device tool's 8).
#
# Here (development machine):  scripts/device_build.sh orcd test_serve
# Device (via the device tool, carry [".carry"] — add "tests/server/node_modules" to run the OpenAI client too):
#   scripts/device.sh server
# Also usable without device.sh: ORCD=path/to/orcd TEST_SERVE=path/to/test_serve scripts/device_server.sh
#
#   PRESETS="qwen2.5-0.5b phi3-mini-4k"  TYPE=Q4_K_M  DEVICE=cuda (cpu: a dry run of this script without a GPU)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
ORCD=${ORCD:-build-dev/src/cli/orcd}
TEST_SERVE=${TEST_SERVE:-$(dirname "$(dirname "$(dirname "$ORCD")")")/tests/server/test_serve}
PRESETS=${PRESETS:-"qwen2.5-0.5b phi3-mini-4k"}
TYPE=${TYPE:-Q4_K_M}
DEVICE=${DEVICE:-cuda}
MODELS=${MODELS:-/tmp/orcd-server-models}
shared=$(cd .. && pwd)/shared
[[ -d $shared/models/vocab ]] || shared=$PWD/.carry/shared
mkdir -p "$MODELS"
log() { echo "== $*" | tee -a "$OUT/server_summary.txt"; }

for f in "$ORCD" "$TEST_SERVE"; do
  [[ -x $f ]] || { log "missing executable $f (run scripts/device_build.sh orcd test_serve first)"; exit 1; }
done
log "$(date -u) on $(hostname); device $DEVICE; presets: $PRESETS ($TYPE)"
if [[ $DEVICE == cuda ]]; then
  nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv | tee -a "$OUT/server_summary.txt"
fi

# Client tests that need tools this machine may lack are left out, and the summary says so: never a silent pass.
filter='*'
exclude=()
if ! command -v curl >/dev/null; then
  log "NOT RUN: every test (curl is missing)"; exit 1
fi
if ! command -v node >/dev/null || [[ ! -f tests/server/node_modules/openai/package.json ]]; then
  exclude+=("ServeOpenAi.*")
  log "NOT RUN: ServeOpenAi (needs node and tests/server/node_modules: carry it from the development machine)"
fi
PY=${ORCD_TEST_PYTHON:-/usr/bin/python3}
if ! "$PY" -c 'import prometheus_client' 2>/dev/null; then
  for p in python3 /usr/bin/python3; do
    if "$p" -c 'import prometheus_client' 2>/dev/null; then PY=$(command -v "$p"); break; fi
  done
fi
if ! "$PY" -c 'import prometheus_client' 2>/dev/null; then
  # /metrics is still fetched and checked by the other tests' curl calls; only the reference parser is missing.
  exclude+=("ServeMetrics.*" "ServeExecute.ValidatesEveryField" "ServeCancel.ClientDisconnectCancelsItsJob"
            "ServeLoad.*")
  log "NOT RUN: tests that parse /metrics with prometheus_client (no Python with it here)"
fi
[[ ${#exclude[@]} -gt 0 ]] && filter="*-$(IFS=:; echo "${exclude[*]}")"

status=0
for preset in $PRESETS; do
  case $preset in
    qwen2.5*) vocab=ggml-vocab-qwen2.5.gguf ;;
    phi3*) vocab=ggml-vocab-phi-3.gguf ;;
    llama*) vocab=ggml-vocab-llama-spm.gguf ;;
    *) log "unknown preset $preset"; status=1; continue ;;
  esac
  model=$MODELS/$preset-$TYPE.gguf
  if [[ ! -f $model ]]; then
    "$ORCD" synth --preset "$preset" --type "$TYPE" --vocab "$shared/models/vocab/$vocab" -o "$model" \
      >"$MODELS/synth.log" 2>&1 ||
      { log "$preset: synth failed: $(tail -3 "$MODELS/synth.log")"; status=1; continue; }
  fi
  # A quick start/stop first, so that a server that cannot start on this device says why in one line.
  "$ORCD" serve -m "$model" --device "$DEVICE" --port 0 >"$OUT/serve_$preset.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do  # up to 60 s for the load
    grep -q "orcd serve: ready" "$OUT/serve_$preset.log" && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q "orcd serve: ready" "$OUT/serve_$preset.log"; then
    kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
    log "$preset: the server did not start: $(grep -m1 error "$OUT/serve_$preset.log")"
    status=1; continue
  fi
  log "$preset: $(grep -o 'ready.*' "$OUT/serve_$preset.log")"
  kill -TERM $pid; wait $pid; rc=$?
  log "$preset: SIGTERM -> exit $rc"
  [[ $rc -eq 0 ]] || status=1

  log "$preset: client tests (filter $filter)"
  ORCD_TEST_MODEL=$model ORCD_TEST_DEVICE=$DEVICE ORCD_TEST_PYTHON=$PY timeout 900 "$TEST_SERVE" \
    --gtest_filter="$filter" >"$OUT/test_serve_$preset.log" 2>&1
  rc=$?
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |cancel latency|refused with 503" "$OUT/test_serve_$preset.log" |
    tee -a "$OUT/server_summary.txt"
  log "$preset: test_serve exit $rc"
  [[ $rc -eq 0 ]] || status=1
done
log "done: status $status"
exit $status
