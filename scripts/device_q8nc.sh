#!/usr/bin/env bash
# Device step `q8nc`: the q8 matvec's batched kernels on the batched decode.
#   1. the batch-invariance and fidelity tests that cover the q8 matvec (TESTS; set it empty to skip them; the nc16.*
#      copies run the dp4a kernel with 16-column groups), including CudaQ8MatvecMma (the tensor-core kernel bit for
#      bit against the dp4a kernel, every split of its work)
#   2. the copy ceilings of the same binary (`orcd bench --h2d`)
#   3. `orcd bench --batch` (table output) on synth Q4_K_M files of PRESETS, the same binary several times: with
#      ORCD_Q8_MMA_MIN_COLS=1000000 (the dp4a kernel at every batch: the baseline) on DP4A_BATCHES, then for each of
#      MMA_VARIANTS with ORCD_Q8_MMA_MIN_COLS=MMA_MIN (default 1: tensor cores at every batch) on MMA_BATCHES.
#      A variant is LABEL or LABEL:VAR=VALUE,VAR=VALUE (e.g. w4:ORCD_Q8_MMA_WARPS=4); ROUNDS rounds each.
#      MMA_VARIANTS="old:ORCD_Q8_MMA_STAGE=0 staged" compares the kernel without and with its shared-memory staging.
#   4. with SHAPES=1, bench/cuda's cuda_q8_mma_shapes: each matrix of both shapes timed alone under each staging
#      variant and the dp4a kernel (what q8_mma_shape's staging rule is chosen from).
# Logs go under $OUT.
set -uo pipefail
orcd=${ORCD:-build-dev/src/cli/orcd}
OUT=${OUT:-/tmp}; mkdir -p "$OUT"
PRESETS=${PRESETS:-"qwen2.5-0.5b phi3-mini-4k"}
TESTS=${TESTS-"CudaBatch|CudaQ8Matvec|CudaBackendE2E"}
DP4A_BATCHES=${DP4A_BATCHES:-1,8,16,64}
MMA_BATCHES=${MMA_BATCHES:-8,16,64}
MMA_MIN=${MMA_MIN:-1}
MMA_VARIANTS=${MMA_VARIANTS:-auto}
ROUNDS=${ROUNDS:-2}
vocab_dir=$(cd .. && pwd)/shared/models/vocab
[ -d "$vocab_dir" ] || vocab_dir=.carry/shared/models/vocab
m=/tmp/orcd-batching-models; mkdir -p "$m"
status=0

src=$(cat .carry/build-dev/.source_dir 2>/dev/null || pwd)
bname=$(cat .carry/build-dev/.build_name 2>/dev/null || echo build-dev)
if [ -n "$TESTS" ]; then
  echo "--- gpu tests matching $TESTS"
  (cd "$src" && ctest --test-dir "$bname" -L gpu -R "$TESTS" -j4 --timeout 180 --output-on-failure 2>&1) \
    > "$OUT/q8nc-tests.log"
  [ $? -eq 0 ] || status=1
  grep -E "tests passed|Failed|FAILED|\*\*\*|differ|Passed" "$OUT/q8nc-tests.log" | head -n 60
fi
echo "--- copy ceilings"; $orcd bench --h2d 2>&1 | tail -n 4
# The table rows of one bench run (B, pp, tg all, tg each, KV).
rows() { grep -E '^\| +[0-9]+ \|'; }
for preset in $PRESETS; do
  case $preset in qwen*) vocab=ggml-vocab-qwen2.5.gguf ;; phi3*) vocab=ggml-vocab-phi-3.gguf ;; *) vocab=ggml-vocab-llama-spm.gguf ;; esac
  f=$m/$preset-Q4_K_M.gguf
  [ -f "$f" ] || $orcd synth --preset "$preset" --type Q4_K_M --vocab "$vocab_dir/$vocab" -o "$f" >/dev/null
  echo "--- $preset Q4_K_M: dp4a kernel only (ORCD_Q8_MMA_MIN_COLS=1000000), --batch $DP4A_BATCHES"
  ORCD_Q8_MMA_MIN_COLS=1000000 $orcd bench -m "$f" --device cuda --batch "$DP4A_BATCHES" -p 100 -n 128 -r "$ROUNDS" \
    > "$OUT/batch-$preset-dp4a.txt" 2>&1 || status=1
  rows < "$OUT/batch-$preset-dp4a.txt"
  for v in $MMA_VARIANTS; do
    label=${v%%:*}; vars=(); [ "$label" = "$v" ] || IFS=, read -r -a vars <<< "${v#*:}"
    echo "--- $preset Q4_K_M: mma $label (ORCD_Q8_MMA_MIN_COLS=$MMA_MIN ${vars[*]}), --batch $MMA_BATCHES"
    env ORCD_Q8_MMA_MIN_COLS="$MMA_MIN" "${vars[@]}" $orcd bench -m "$f" --device cuda --batch "$MMA_BATCHES" -p 100 \
      -n 128 -r "$ROUNDS" > "$OUT/batch-$preset-mma-$label.txt" 2>&1 || status=1
    rows < "$OUT/batch-$preset-mma-$label.txt"
  done
done
if [ "${SHAPES:-0}" = 1 ]; then
  echo "--- per-matrix times (cuda_q8_mma_shapes)"
  "${BUILD:-build-dev}/bench/cuda/cuda_q8_mma_shapes" > "$OUT/q8-shapes.txt" 2>&1 || status=1
  cat "$OUT/q8-shapes.txt"
fi
exit $status
