#!/usr/bin/env bash
# Device step `compare`: `orcd bench` of two binaries in the same call, interleaved (before, after, before, after) so
# that drift of the machine falls on both: the check that a refactor changed no speed. The copy ceiling of the same run
# comes first. Results: $OUT/compare.jsonl (one JSON object per run, with "binary" added) and a table on stdout.
#   ORCD_BEFORE=path (required)  ORCD=path (after; default build-dev's)  PRESETS="qwen2.5-0.5b phi3-mini-4k"  ROUNDS=2
#   EXTRA="name=ENV=VALUE[,ENV=VALUE...] ..." (optional): more runs of the after binary with the environment settings
#   of each (tuning overrides, docs/PERF.md), interleaved after the two, each compared with "before" in its own rows.
#   BINARIES="name=path ..." (optional): more binaries (a variant of the after one, built with one change), run in the
#   same rounds and compared with "before" the same way.
set -euo pipefail
after=${ORCD:-build-dev/src/cli/orcd}
before=${ORCD_BEFORE:?ORCD_BEFORE names the binary to compare with}
EXTRA=${EXTRA:-}
BINARIES=${BINARIES:-}
declare -A binary_of=()
for b in $BINARIES; do binary_of[${b%%=*}]=${b#*=}; done
OUT=${OUT:-/tmp}; mkdir -p "$OUT"
PRESETS=${PRESETS:-"qwen2.5-0.5b phi3-mini-4k"}
ROUNDS=${ROUNDS:-2}
# shellcheck source=scripts/device_bench_model.sh
. "$(dirname "$0")/device_bench_model.sh"
jsonl=$OUT/compare.jsonl; : > "$jsonl"
$after bench --h2d | grep -E "device-to-device|pinned" || true
for preset in $PRESETS; do
  f=$(bench_model "$after" "$preset")
  for round in $(seq 1 "$ROUNDS"); do
    for which in before after $EXTRA ${!binary_of[@]}; do
      bin=$before; env=()
      [ $which = before ] || bin=${binary_of[$which]:-$after}
      case $which in *=*) IFS=, read -r -a env <<< "${which#*=}"; which=${which%%=*} ;; esac
      for args in "-p 512 -n 128 -r 3" "-p 0 -n 128 -d 4096 -r 2"; do
        # shellcheck disable=SC2086
        env "${env[@]}" $bin bench -m "$f" --device cuda $args --json |
          python3 -c "import json,sys; j=json.load(sys.stdin); j['binary']='$which'; j['preset']='$preset'; j['args']='$args'; print(json.dumps(j))" >> "$jsonl"
      done
    done
  done
done
python3 - "$jsonl" <<'PY'
import json, sys, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    j = json.loads(line)
    for k, v in j.items():
        if isinstance(v, dict) and v.get("tokens_per_s_mean", 0) > 0:
            rows[(j["preset"], j["args"], k, j["binary"])].append(v["tokens_per_s_mean"])
keys = sorted({k[:3] for k in rows})
names = ["after"] + sorted({k[3] for k in rows} - {"before", "after"})
print(f"{'preset':14} {'args':26} {'test':8} {'binary':8} {'before tok/s':>22} {'tok/s':>22} {'x/before':>9}")
for p, a, t in keys:
    b = rows.get((p, a, t, "before"), [])
    for n in names:
        f = rows.get((p, a, t, n), [])
        if not b or not f: continue
        mb, mf = sum(b) / len(b), sum(f) / len(f)
        print(f"{p:14} {a:26} {t:8} {n:8} {' '.join(f'{x:.1f}' for x in b):>22} {' '.join(f'{x:.1f}' for x in f):>22} {mf/mb:9.3f}")
PY
