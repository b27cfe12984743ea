#!/usr/bin/env bash
# Device step `q8nc`: the q8 matvec's column group width (ORCD_Q8_MAX_NC, 8 or 16) on the batched decode.
#   1. the batch-invariance and fidelity tests that cover the q8 matvec, with both widths (the nc16.* copies set 16)
#   2. the copy ceilings, then `orcd bench --batch` on synth Q4_K_M files of PRESETS: 1,8,16,64 at the default width,
#      16,64 at 16 columns (batches of 8 and fewer run the same kernels at both)
# Logs and the bench JSON go under $OUT.
set -uo pipefail
orcd=${ORCD:-build-dev/src/cli/orcd}
OUT=${OUT:-/tmp}; mkdir -p "$OUT"
PRESETS=${PRESETS:-"qwen2.5-0.5b phi3-mini-4k"}
TESTS=${TESTS:-"CudaBatch|CudaQ8Matvec|CudaBackendE2E"}
vocab_dir=$(cd .. && pwd)/shared/models/vocab
[ -d "$vocab_dir" ] || vocab_dir=.carry/shared/models/vocab
m=/tmp/orcd-batching-models; mkdir -p "$m"
status=0

src=$(cat .carry/build-dev/.source_dir 2>/dev/null || pwd)
bname=$(cat .carry/build-dev/.build_name 2>/dev/null || echo build-dev)
echo "--- gpu tests matching $TESTS (and their nc16. copies)"
(cd "$src" && ctest --test-dir "$bname" -L gpu -R "$TESTS" --output-on-failure 2>&1) > "$OUT/q8nc-tests.log"
[ $? -eq 0 ] || status=1
grep -E "tests passed|Failed|FAILED|\*\*\*" "$OUT/q8nc-tests.log" | tail -n 20

echo "--- copy ceilings"; $orcd bench --h2d
for preset in $PRESETS; do
  case $preset in qwen*) vocab=ggml-vocab-qwen2.5.gguf ;; phi3*) vocab=ggml-vocab-phi-3.gguf ;; *) vocab=ggml-vocab-llama-spm.gguf ;; esac
  f=$m/$preset-Q4_K_M.gguf
  [ -f "$f" ] || $orcd synth --preset "$preset" --type Q4_K_M --vocab "$vocab_dir/$vocab" -o "$f" >/dev/null
  echo "--- $preset Q4_K_M: default width, --batch 1,8,16,64"
  $orcd bench -m "$f" --device cuda --batch 1,8,16,64 -p 100 -n 128 -r 2 --json | tee "$OUT/batch-$preset.json"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  echo "--- $preset Q4_K_M: ORCD_Q8_MAX_NC=16, --batch 16,64"
  ORCD_Q8_MAX_NC=16 $orcd bench -m "$f" --device cuda --batch 16,64 -p 100 -n 128 -r 2 --json \
    | tee "$OUT/batch-$preset-nc16.json"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
exit $status
