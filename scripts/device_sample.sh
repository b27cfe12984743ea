#!/usr/bin/env bash
# Device step `sample`: decode tok/s with sampling through the host chain (logits copied back) and through
# decode_sample (the chain on the device), next to plain decode and decode_greedy, on the Qwen2.5-0.5B Q4_K_M synth model.
set -euo pipefail
ORCD_BENCH_FUSED_LIMITS=- build-dev/bench/cuda/cuda_decode_speed qwen2.5-0.5b Q4_K_M 256
