#!/usr/bin/env bash
# Device step `kernels`: bandwidth of each CUDA matvec kernel next to the device-to-device copy ceiling.
set -euo pipefail
build-dev/bench/cuda/cuda_matvec_bandwidth
