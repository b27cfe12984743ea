#!/usr/bin/env bash
# Device step `kernels`: bandwidth of each CUDA matvec kernel next to the device-to-device copy ceiling, at the default
# tile size and at the other tile sizes worth comparing (ORCD_MATVEC_TILE_BYTES: bytes of weights staged per block).
set -euo pipefail
bench=build-dev/bench/cuda/cuda_matvec_bandwidth
$bench
for tile in ${ORCD_TILES:-8192 22528}; do
  echo "--- tile $tile bytes"
  ORCD_MATVEC_TILE_BYTES=$tile $bench | tail -n +3
done
