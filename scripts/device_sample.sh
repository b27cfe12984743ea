#!/usr/bin/env bash
# Device step `sample`: decode tok/s with sampling through the host chain (logits copied back) and through
# decode_sample (the chain on the device), next to plain decode and decode_greedy, on the Qwen2.5-0.5B Q4_K_M synth model.
#   SLICE_MINS="4096 16384" (optional): the device sampler's "sampler share" lines again with each ORCD_SAMPLE_SLICE_MIN
#   (docs/PERF.md, tuning overrides), in the same call, for choosing the default.
set -euo pipefail
ORCD_BENCH_FUSED_LIMITS=- build-dev/bench/cuda/cuda_decode_speed qwen2.5-0.5b Q4_K_M 256
for m in ${SLICE_MINS:-}; do
  echo "--- ORCD_SAMPLE_SLICE_MIN=$m"
  ORCD_SAMPLE_SLICE_MIN=$m ORCD_BENCH_FUSED_LIMITS=- build-dev/bench/cuda/cuda_decode_speed qwen2.5-0.5b Q4_K_M 256 |
    grep -E 'sampler share' || true
done
