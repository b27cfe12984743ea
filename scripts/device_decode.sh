#!/usr/bin/env bash
# Device step `decode`: CUDA decode tokens/s on synth models of the reference shapes (Q4_K_M), with the logits copied
# back (decode) and through the device argmax (decode_greedy), for each fused-matvec size limit in
# ORCD_BENCH_FUSED_LIMITS (0 = every matrix on the staged-tile kernel with unfused element-wise ops); then a smoke run of
# `orcd generate --device cuda` on a tiny model with a real vocabulary (needs orcd's shared libraries there).
set -euo pipefail
bench=build-dev/bench/cuda/cuda_decode_speed
# Fused-matvec size limits (f32 mode) to compare on one loaded model ("-": the default, 4 MiB; 0: none fused, the
# unfused path; 100000000000: every matrix fused); "-" only by default since v6 (the int8 mode is the new default).
export ORCD_BENCH_FUSED_LIMITS=${ORCD_BENCH_FUSED_LIMITS:--}
$bench qwen2.5-0.5b Q4_K_M 128
$bench phi3-mini-4k Q4_K_M 128
# (each line tagged [int8] or [f32]: the CudaOptions::activations mode; ORCD_BENCH_ACTIVATIONS picks them)
ORCD_BENCH_FUSED_LIMITS=- ORCD_BENCH_ACTIVATIONS=int8 $bench qwen2.5-0.5b F16 128
if [ -x build-dev/src/cli/orcd ]; then
  vocab=$(cd .. && pwd)/shared/models/vocab/ggml-vocab-qwen2.5.gguf
  [ -f "$vocab" ] || vocab=.carry/shared/models/vocab/ggml-vocab-qwen2.5.gguf
  # (orcd links shared libraries, e.g. libcpp-httplib, that device_build.sh does not carry: skip if it cannot start)
  if ! build-dev/src/cli/orcd synth --preset qwen2.5-tiny --type F32 --vocab "$vocab" -o /tmp/qt.gguf >/dev/null; then
    echo "(orcd did not run on this machine; generate smoke skipped)"
    exit 0
  fi
  for d in cuda cpu; do
    echo "--- orcd generate --device $d"
    build-dev/src/cli/orcd generate -m /tmp/qt.gguf --device $d -p "Hello" -n 24 --temp 0 --json 2>&1 |
      head -c 700 || echo "(generate --device $d failed)"
    echo
  done
fi
