#!/usr/bin/env bash
# Device step `prefill`: the prefill tests' measured error bounds; batched prefill tokens/s (pp512, pp4096 at depth
# 4096) on synth models of the reference shapes (Q4_K_M), the token-by-token "before", `--weights f16` decode tok/s
# and VRAM; then the per-phase device times (ORCD_PREFILL_PROFILE=1), the micro-batch size sweep, and a smoke run of
# `orcd generate|perplexity --weights f16`.
set -euo pipefail
echo "--- measured errors of the prefill tests"
build-dev/tests/backend_cuda/test_cuda_prefill 2>&1 | grep -E "relative error|worst|PASSED|FAILED" || true
bench=build-dev/bench/cuda/cuda_prefill_speed
$bench qwen2.5-0.5b Q4_K_M
$bench phi3-mini-4k Q4_K_M
echo "--- per-phase device time (events between phases; adds a little overhead)"
ORCD_PREFILL_PROFILE=1 ORCD_BENCH_QUICK=1 $bench qwen2.5-0.5b Q4_K_M
ORCD_PREFILL_PROFILE=1 ORCD_BENCH_QUICK=1 $bench phi3-mini-4k Q4_K_M
echo "--- micro-batch size"
for ub in 512 2048; do
  ORCD_PREFILL_UBATCH=$ub ORCD_BENCH_QUICK=1 $bench qwen2.5-0.5b Q4_K_M
  ORCD_PREFILL_UBATCH=$ub ORCD_BENCH_QUICK=1 $bench phi3-mini-4k Q4_K_M
done
if [ -x build-dev/src/cli/orcd ]; then
  vocab=$(cd .. && pwd)/shared/models/vocab/ggml-vocab-qwen2.5.gguf
  [ -f "$vocab" ] || vocab=.carry/shared/models/vocab/ggml-vocab-qwen2.5.gguf
  if build-dev/src/cli/orcd synth --preset qwen2.5-tiny --type Q4_K_M --vocab "$vocab" -o /tmp/qt.gguf >/dev/null; then
    for w in quantized f16; do
      echo "--- orcd generate --weights $w"
      build-dev/src/cli/orcd generate -m /tmp/qt.gguf --weights $w -p "Hello there, how are you" -n 16 --temp 0 \
        --json 2>&1 | head -c 500 || echo "(failed)"
      echo
    done
    printf 'The quick brown fox jumps over the lazy dog. %.0s' {1..40} > /tmp/ppl.txt
    for w in quantized f16; do
      echo "--- orcd perplexity --weights $w"
      build-dev/src/cli/orcd perplexity -m /tmp/qt.gguf --weights $w -c 128 -f /tmp/ppl.txt 2>&1 | tail -n 2 || echo "(failed)"
    done
    echo "--- orcd generate --device cpu --weights f16 (must refuse)"
    build-dev/src/cli/orcd generate -m /tmp/qt.gguf --device cpu --weights f16 -p "Hi" -n 2 2>&1 | tail -n 1 || true
  fi
fi
