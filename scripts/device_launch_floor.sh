#!/usr/bin/env bash
# Device step `launch_floor` (issue 19): what a dependent kernel costs on this GPU when it does next to nothing
# (bench/cuda/dependent_launch.cu): first in the run (graphs of 256 kernels, with and without programmatic dependent
# launch), then each kernel alone under ncu, measured as scripts/device_token_profile.sh measures the decode's
# kernels (warm L2, clocks as in a run), so that a kernel's time there can be split into this floor and its own work.
# Results: $OUT/launch-floor.csv (ncu) and the tables on stdout.
set -euo pipefail
bin=${BUILD:-build-dev}/bench/cuda/cuda_dependent_launch
OUT=${OUT:-/tmp}; mkdir -p "$OUT"
$bin
csv=$OUT/launch-floor.csv
ncu --csv --cache-control none --clock-control none --metrics gpu__time_duration.sum "$bin" --profile > "$csv" 2>/dev/null || true
PYTHONPATH=$(cd "$(dirname "$0")" && pwd) python3 - "$csv" <<'PY'
import sys, collections
from ncu_csv import rows as ncu_rows, kernel_name, number
rows = ncu_rows(sys.argv[1])
h = rows[0]
name, grid, metric, value = (h.index(k) for k in ("Kernel Name", "Grid Size", "Metric Name", "Metric Value"))
times = collections.defaultdict(list)
for r in rows[1:]:
    if r[metric] == "gpu__time_duration.sum":
        times[(kernel_name(r[name]), r[grid])].append(number(r[value]) / 1e3)
print(f"\n{'kernel alone (ncu)':28} {'grid':>14} {'launches':>8} {'us mean':>8} {'us min':>8}")
for (n, g), t in times.items():
    print(f"{n:28} {g:>14} {len(t):8d} {sum(t) / len(t):8.2f} {min(t):8.2f}")
PY
