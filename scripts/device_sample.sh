#!/usr/bin/env bash
# Device step `sample`: decode tok/s with sampling through the host chain (logits copied back) and through
# decode_sample (the chain on the device), next to plain decode and decode_greedy, on the Qwen2.5-0.5B Q4_K_M synth model.
#   SLICE_MINS="4096 16384" (optional): the device sampler's "sampler share" lines again with each ORCD_SAMPLE_SLICE_MIN
#   (docs/PERF.md, tuning overrides), in the same call, for choosing the default.
#   NCU_SAMPLER=1 (optional): ncu over the sampler kernel's launches of a short int8 run, from the 91st on (the
#   first 90 are B = 1 rows: NCU_SKIP changes it), so that both B = 1 and B = 16 are caught, told apart by the
#   grid: time, SM activity, instructions and warp stall reasons ($OUT/ncu-sampler.csv and a summary per grid).
#   SAMPLER_BINARIES="name=path ..." (optional): first, an A/B of the "sampler share" lines (int8) of other
#   cuda_decode_speed builds (each a variant with one change) against this build's, interleaved over ROUNDS (2).
set -euo pipefail
if [ -n "${SAMPLER_BINARIES:-}" ]; then
  for round in $(seq 1 "${ROUNDS:-2}"); do
    for b in "this=build-dev/bench/cuda/cuda_decode_speed" $SAMPLER_BINARIES; do
      echo "--- ${b%%=*}, round $round"
      ORCD_BENCH_ACTIVATIONS=int8 ORCD_BENCH_FUSED_LIMITS=- "${b#*=}" qwen2.5-0.5b Q4_K_M 256 | grep -E 'sampler share' |
        sed -E 's/ qwen2.5-0.5b Q4_K_M \[int8\] \[fused max -\]: step with device sampling//'
    done
  done
fi
ORCD_BENCH_FUSED_LIMITS=- build-dev/bench/cuda/cuda_decode_speed qwen2.5-0.5b Q4_K_M 256
for m in ${SLICE_MINS:-}; do
  echo "--- ORCD_SAMPLE_SLICE_MIN=$m"
  ORCD_SAMPLE_SLICE_MIN=$m ORCD_BENCH_FUSED_LIMITS=- build-dev/bench/cuda/cuda_decode_speed qwen2.5-0.5b Q4_K_M 256 |
    grep -E 'sampler share' || true
done
if [ "${NCU_SAMPLER:-0}" = 1 ]; then
  echo "--- ncu: the sampler kernel (int8, 16 decode steps)"
  stalls=smsp__average_warp_latency_issue_stalled
  ORCD_BENCH_ACTIVATIONS=int8 ORCD_BENCH_FUSED_LIMITS=- ncu --csv --cache-control none --clock-control none \
    --kernel-name regex:sample_rows --launch-skip "${NCU_SKIP:-90}" --launch-count 60 --section SpeedOfLight \
    --section LaunchStats --metrics "smsp__inst_executed.sum,lts__t_requests_op_atom.sum,${stalls}_barrier.ratio,\
${stalls}_long_scoreboard.ratio,${stalls}_short_scoreboard.ratio,${stalls}_lg_throttle.ratio,${stalls}_membar.ratio" \
    "$(pwd)/build-dev/bench/cuda/cuda_decode_speed" qwen2.5-0.5b Q4_K_M 16 \
    > "$OUT/ncu-sampler.csv" 2> "$OUT/ncu-sampler.err" || echo "ncu exit $? (see ncu-sampler.err)"
  python3 - "$OUT/ncu-sampler.csv" <<'PY'
import csv, collections, sys
rows = [r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"'))]
head, body = rows[0], rows[1:]
col = {n: i for i, n in enumerate(head)}
by = collections.defaultdict(lambda: collections.defaultdict(list))
for r in body:
    by[r[col["Grid Size"]]][(r[col["Metric Name"]], r[col["Metric Unit"]])].append(r[col["Metric Value"]])
for grid, metrics in by.items():
    print(f"grid {grid}:")
    for (name, unit), vals in metrics.items():
        try:
            nums = [float(v.replace(",", "")) for v in vals]
            print(f"  {name:68} {sum(nums) / len(nums):14.2f} {unit} (n {len(nums)})")
        except ValueError:
            pass
PY
fi
