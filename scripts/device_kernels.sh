#!/usr/bin/env bash
# Device step `kernels`: bandwidth of each CUDA matvec kernel (staged tiles, and the fused decode kernel) next to the
# device-to-device copy ceiling; then the fused kernel at each forced warps-per-row count (ORCD_MATVEC_WPR) and the
# tiled kernel at other tile sizes (ORCD_TILES, default none).
set -euo pipefail
bench=build-dev/bench/cuda/cuda_matvec_bandwidth
$bench
for wpr in ${ORCD_WPRS:-1 2 4 8}; do
  echo "--- fused with $wpr warps per row"
  ORCD_MATVEC_WPR=$wpr $bench | tail -n +3 | sed 's/^\(.\{60\}\).*|/\1 |/'
done
for tile in ${ORCD_TILES:-}; do
  echo "--- tile $tile bytes"
  ORCD_MATVEC_TILE_BYTES=$tile $bench | tail -n +3
done
