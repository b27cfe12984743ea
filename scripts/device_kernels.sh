#!/usr/bin/env bash
# Device step `kernels`: bandwidth of each CUDA matvec kernel (staged tiles, the fused decode kernel, and the
# int8-activation dp4a kernel) next to the device-to-device copy ceiling; then the dp4a kernel at each forced
# threads-per-row count (ORCD_Q8_TPRS), the fused kernel at each forced warps-per-row count (ORCD_WPRS, default none
# now), and the tiled kernel at other tile sizes (ORCD_TILES, default none).
set -euo pipefail
bench=build-dev/bench/cuda/cuda_matvec_bandwidth
$bench
for tpr in ${ORCD_Q8_TPRS:-16 32 64 128}; do
  echo "--- q8 with $tpr threads per row"
  ORCD_Q8_TPR=$tpr $bench | tail -n +3
done
for wpr in ${ORCD_WPRS:-}; do
  echo "--- fused with $wpr warps per row"
  ORCD_MATVEC_WPR=$wpr $bench | tail -n +3 | sed 's/^\(.\{60\}\).*|/\1 |/'
done
for tile in ${ORCD_TILES:-}; do
  echo "--- tile $tile bytes"
  ORCD_MATVEC_TILE_BYTES=$tile $bench | tail -n +3
done
