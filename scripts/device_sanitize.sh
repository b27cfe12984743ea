#!/usr/bin/env bash
# Device step `sanitize`: compute-sanitizer memcheck (with leak check), racecheck, initcheck and synccheck on a short
# greedy `orcd generate --device cuda` (prefill + decode + graph capture and replay) on tiny synth models of each
# architecture. Any reported error fails the step. Log: $OUT/sanitize.txt.
#   PRESETS="qwen2.5-tiny phi3-tiny llama-tiny"  TYPES="F32 Q4_K_M"  TOOLS="memcheck racecheck initcheck synccheck"
#   BATCHED=1: the batched step instead (`orcd bench --batch 1,3,8`: prompt chunks, then decode steps of 3 and 8
#   sequences at once through the paged pool); racecheck, which replays every shared-memory access, takes one short
#   batch of 8 (the tensor-core matvec's fewest columns): 4 prompt tokens each, then 2 decode steps
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/out}; mkdir -p "$OUT"
ORCD=${ORCD:-build-dev/src/cli/orcd}
PRESETS=${PRESETS:-"qwen2.5-tiny phi3-tiny llama-tiny"}
TYPES=${TYPES:-"Q4_K_M"}
TOOLS=${TOOLS:-"memcheck racecheck initcheck synccheck"}
MODELS=${MODELS:-/tmp/orcd-sanitize-models}
shared=$(cd .. && pwd)/shared
[[ -d $shared/models/vocab ]] || shared=$PWD/.carry/shared
cs=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
mkdir -p "$MODELS"
status=0
for preset in $PRESETS; do
  case $preset in qwen*) vocab=qwen2.5 ;; phi3*) vocab=phi-3 ;; *) vocab=llama-spm ;; esac
  for type in $TYPES; do
    model=$MODELS/$preset-$type.gguf
    "$ORCD" synth --preset "$preset" --type "$type" --vocab "$shared/models/vocab/ggml-vocab-$vocab.gguf" -o "$model" >/dev/null
    for tool in $TOOLS; do
      extra=(); [[ $tool == memcheck ]] && extra=(--leak-check full)
      log=$MODELS/$preset-$type-$tool.log
      if [[ ${BATCHED:-0} == 1 ]]; then
        cmd=("$ORCD" bench -m "$model" --device cuda --batch 1,3,8 -p 20 -n 6 -r 1)
        [[ $tool == racecheck ]] && cmd=("$ORCD" bench -m "$model" --device cuda --batch 8 -p 4 -n 2 -r 1)
      else
        cmd=("$ORCD" generate -m "$model" --device cuda
             -p "The quick brown fox jumps over the lazy dog. Once upon a time" -n 12 --temp 0)
      fi
      "$cs" --tool "$tool" "${extra[@]}" --error-exitcode 3 "${cmd[@]}" >"$log" 2>&1
      rc=$?
      summary=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY|LEAK SUMMARY" "$log" | tr '\n' ' ')
      echo "$preset $type $tool: exit $rc; ${summary:-no summary line}" | tee -a "$OUT/sanitize.txt"
      if [[ $rc -ne 0 ]]; then status=1; grep -m 20 -E "=========" "$log" | tee -a "$OUT/sanitize.txt"; fi
    done
  done
done
exit $status
