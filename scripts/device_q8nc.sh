#!/usr/bin/env bash
# Device step `q8nc`: the q8 matvec's batched kernels on the batched decode.
#   1. the batch-invariance and fidelity tests that cover the q8 matvec (TESTS; the nc16.* copies run the dp4a kernel
#      with 16-column groups), including CudaQ8MatvecMma (the tensor-core kernel bit for bit against the dp4a kernel)
#   2. the copy ceilings, then `orcd bench --batch` on synth Q4_K_M files of PRESETS: 1,8,16,64 by default (batches of
#      16 and more on tensor cores), 16,64 with ORCD_Q8_MMA_MIN_COLS=1000000 (the dp4a kernel alone: the baseline in
#      the same call), and 8 with ORCD_Q8_MMA_MIN_COLS=8 (whether the threshold should be lower)
# Logs and the bench JSON go under $OUT.
set -uo pipefail
orcd=${ORCD:-build-dev/src/cli/orcd}
OUT=${OUT:-/tmp}; mkdir -p "$OUT"
PRESETS=${PRESETS:-"qwen2.5-0.5b phi3-mini-4k"}
TESTS=${TESTS-"CudaBatch|CudaQ8Matvec|CudaBackendE2E"}  # set empty to skip the tests
vocab_dir=$(cd .. && pwd)/shared/models/vocab
[ -d "$vocab_dir" ] || vocab_dir=.carry/shared/models/vocab
m=/tmp/orcd-batching-models; mkdir -p "$m"
status=0

src=$(cat .carry/build-dev/.source_dir 2>/dev/null || pwd)
bname=$(cat .carry/build-dev/.build_name 2>/dev/null || echo build-dev)
if [ -n "$TESTS" ]; then
  echo "--- gpu tests matching $TESTS"
  (cd "$src" && ctest --test-dir "$bname" -L gpu -R "$TESTS" --output-on-failure 2>&1) > "$OUT/q8nc-tests.log"
  [ $? -eq 0 ] || status=1
  grep -E "tests passed|Failed|FAILED|\*\*\*|differ" "$OUT/q8nc-tests.log" | head -n 40
  echo "--- copy ceilings"; $orcd bench --h2d
fi
for preset in $PRESETS; do
  case $preset in qwen*) vocab=ggml-vocab-qwen2.5.gguf ;; phi3*) vocab=ggml-vocab-phi-3.gguf ;; *) vocab=ggml-vocab-llama-spm.gguf ;; esac
  f=$m/$preset-Q4_K_M.gguf
  [ -f "$f" ] || $orcd synth --preset "$preset" --type Q4_K_M --vocab "$vocab_dir/$vocab" -o "$f" >/dev/null
  echo "--- $preset Q4_K_M: dp4a only (ORCD_Q8_MMA_MIN_COLS=1000000), --batch 16,64"
  ORCD_Q8_MMA_MIN_COLS=1000000 $orcd bench -m "$f" --device cuda --batch 16,64 -p 100 -n 128 -r 2 --json \
    | tee "$OUT/batch-$preset-dp4a.json"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  echo "--- $preset Q4_K_M: default (tensor cores from 16 columns), --batch 1,8,16,64"
  $orcd bench -m "$f" --device cuda --batch 1,8,16,64 -p 100 -n 128 -r 2 --json | tee "$OUT/batch-$preset.json"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  echo "--- $preset Q4_K_M: ORCD_Q8_MMA_MIN_COLS=8, --batch 8"
  ORCD_Q8_MMA_MIN_COLS=8 $orcd bench -m "$f" --device cuda --batch 8 -p 100 -n 128 -r 2 --json \
    | tee "$OUT/batch-$preset-mma8.json"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
exit $status
