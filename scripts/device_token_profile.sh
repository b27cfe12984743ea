#!/usr/bin/env bash
# Device step `token_profile` (issue 19): where one single-stream decode token's time goes. For each preset, `orcd
# bench` measures tg128 (the token time with every kernel overlapping as in a run), then ncu times each kernel of
# TOKENS decode tokens alone (`--cache-control none --clock-control none`: warm L2, clocks as in a run; ncu serializes
# the kernels, so programmatic dependent launch hides nothing there) with the DRAM bytes each moves. The table per
# kernel gives launches, time and bytes per token and the time those bytes take at the device-to-device copy rate of
# the same call: what is left above that floor is each kernel's latency, not its traffic.
#   PRESETS="qwen2.5-0.5b phi3-mini-4k"  TOKENS=4
# Results: $OUT/token-profile-PRESET.csv (ncu) and the tables on stdout.
set -euo pipefail
ORCD=${ORCD:-build-dev/src/cli/orcd}
OUT=${OUT:-/tmp}; mkdir -p "$OUT"
PRESETS=${PRESETS:-"qwen2.5-0.5b phi3-mini-4k"}
TOKENS=${TOKENS:-4}
# shellcheck source=scripts/device_bench_model.sh
. "$(dirname "$0")/device_bench_model.sh"
ceiling=$($ORCD bench --h2d | tee /dev/stderr | awk '/device-to-device/ {for (i = 1; i <= NF; ++i) if ($i == "GB/s") print $(i - 1)}' | head -1)
echo "copy ceiling: ${ceiling} GB/s"
for preset in $PRESETS; do
  f=$(bench_model "$ORCD" "$preset")
  tg=$($ORCD bench -m "$f" --device cuda -p 0 -n 128 -r 3 --json | python3 -c "import json,sys; print(json.load(sys.stdin)['tg']['tokens_per_s_mean'])")
  csv=$OUT/token-profile-$preset.csv
  ncu --csv --cache-control none --clock-control none \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \
    "$ORCD" bench -m "$f" --device cuda -p 0 -n "$TOKENS" -r 1 > "$csv" 2>/dev/null || true
  python3 - "$csv" "$preset" "$tg" "$ceiling" "$TOKENS" <<'PY'
import csv, sys, collections
path, preset, tg, ceiling, tokens = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
rows = [r for r in csv.reader(open(path)) if len(r) > 10]
h = rows[0]
iid, name, metric, value = h.index("ID"), h.index("Kernel Name"), h.index("Metric Name"), h.index("Metric Value")
per = collections.defaultdict(dict)
for r in rows[1:]:
    try:
        per[r[iid]][r[metric]] = float(r[value].replace(",", ""))
        per[r[iid]]["name"] = r[name].split("(")[0].replace("void ", "").replace("(anonymous namespace)::", "")[:58]
    except ValueError:
        pass
# bench -r 1 runs a warm-up pass and one measured pass of `tokens` decode steps each: per token = total / (2 tokens).
steps = 2 * tokens
agg = collections.defaultdict(lambda: [0, 0.0, 0.0])
for d in per.values():
    a = agg[d["name"]]
    a[0] += 1
    a[1] += d.get("gpu__time_duration.sum", 0) / 1e3
    a[2] += d.get("dram__bytes_read.sum", 0) + d.get("dram__bytes_write.sum", 0)
token_us = 1e6 / tg
print(f"\n{preset}: tg128 {tg:.1f} tok/s = {token_us:.1f} us a token (bench, kernels overlapping)")
print(f"{'kernel':58} {'launches':>8} {'us':>9} {'MB':>8} {'floor us':>9} {'over':>8}")
tot = [0, 0.0, 0.0, 0.0]
for n, (c, t, b) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
    floor = b / steps / (ceiling * 1e3)
    print(f"{n:58} {c / steps:8.1f} {t / steps:9.1f} {b / steps / 1e6:8.2f} {floor:9.1f} {t / steps - floor:8.1f}")
    tot[0] += c / steps; tot[1] += t / steps; tot[2] += b / steps / 1e6; tot[3] += floor
print(f"{'all kernels (alone, serialized by ncu)':58} {tot[0]:8.1f} {tot[1]:9.1f} {tot[2]:8.2f} {tot[3]:9.1f} {tot[1] - tot[3]:8.1f}")
print(f"token in the run minus the kernels alone: {token_us - tot[1]:+.1f} us "
      f"(negative: overlap that programmatic dependent launch wins; positive: gaps between kernels)")
PY
done
