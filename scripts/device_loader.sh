#!/usr/bin/env bash
# The VRAM loader on the GPU machine: build, run the `gpu` tests, then time loads of synthetic models of both reference
# shapes (Q4_K_M) with a warm and a cold page cache, next to the pinned host-to-device bandwidth measured by the same
# binary. Everything is logged under $OUT (default ./out); the summary table is $OUT/loader_table.md.
#
#   scripts/device_loader.sh                 # build + gpu tests + timings
#   SKIP_TIMINGS=1 scripts/device_loader.sh  # build + gpu tests only
#   SKIP_TESTS=1 scripts/device_loader.sh    # timings only (the build is incremental)
#   CHUNKS="256 64" THREADS="0 8" REPS=5 scripts/device_loader.sh
#   VARIANTS="read/huge/2 mapping/hostalloc/2 mapping/huge/2/32" scripts/device_loader.sh   # gather/staging/buffers[/slice MiB]
# VARIANTS are `orcd load --gather G --staging S --buffers B` (G = direct: --direct, no staging; G = mapping: the
# default non-temporal gather stores; G = mapping-plain: --plain-stores); mapping/hostalloc/2 is the loader before huge-page staging (2026-11-23 runs). COLD_VARIANTS (default: the first two VARIANTS) are also timed on a cold page cache.
set -euo pipefail

OUT=${OUT:-$PWD/out}
BUILD=${BUILD:-build-device}
MODELS=${MODELS:-/tmp/orcd-models}
CHUNKS=${CHUNKS:-"256 64"}
THREADS=${THREADS:-"0"}     # gather threads (0 = the default: all cores up to 16)
VARIANTS=${VARIANTS:-"mapping/huge/2 mapping-plain/huge/2 mapping/hostalloc/2 read/huge/2"}
read -r -a _v <<<"$VARIANTS"
COLD_VARIANTS=${COLD_VARIANTS:-"${_v[0]} ${_v[1]:-}"}
REPS=${REPS:-3}
JOBS=${JOBS:-$(nproc)}
DEVICE=${DEVICE:-cuda}     # host: a dry run of this script without a GPU (tiny presets, e.g. PRESETS=qwen2.5-tiny)
PRESETS=${PRESETS:-"qwen2.5-0.5b phi3-mini-4k"}
CTX=${CTX:-4096}           # KV cache reserved by each load
mkdir -p "$OUT" "$MODELS"
log() { echo "== $*" | tee -a "$OUT/device_loader.log"; }

log "$(date -u) on $(hostname)"
if [[ $DEVICE == cuda ]]; then
  nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv | tee "$OUT/nvidia-smi.csv"
fi

if [[ -x "$BUILD/src/cli/orcd" && -n "${PREBUILT:-}" ]]; then
  log "using the prebuilt $BUILD (scripts/device_build.sh, carried)"
else
  # Building on the device needs the Debian libraries' headers there; the usual route is PREBUILT=1 via device.sh.
  log "configure + build ($BUILD)"
  cmake -S . -B "$BUILD" -G Ninja -DORCD_BENCH=OFF -DCMAKE_BUILD_TYPE=Release >"$OUT/configure.log" 2>&1 ||
    { tail -50 "$OUT/configure.log"; exit 1; }
  TARGETS=(orcd test_model test_loader test_c_api c_api_fixtures)
  [[ $DEVICE == cuda ]] && TARGETS+=(test_loader_gpu)
  ninja -C "$BUILD" -j"$JOBS" "${TARGETS[@]}" >"$OUT/build.log" 2>&1 ||
    { grep -E "error|FAILED" "$OUT/build.log" | head -50; exit 1; }
fi
ORCD="$BUILD/src/cli/orcd"

if [[ -z "${SKIP_TESTS:-}" ]]; then
  log "ctest -L gpu"
  # The gpu label: test_loader_gpu (the loader suite on GPU 0) and c_api_gpu (the C test on GPU 0).
  # A failing test is reported, not fatal: the timings still run (and the log says so at the end).
  ctest --test-dir "$BUILD" -L gpu -R "^gpu[.]LoaderSuite[.]|^c_api" --output-on-failure 2>&1 | tee "$OUT/ctest_gpu.log" | tail -15 ||
    log "gpu tests FAILED (see $OUT/ctest_gpu.log)"
  log "loader/model/C API host tests (same build)"
  ctest --test-dir "$BUILD" -LE gpu -R "^(Config|Weights|Registry|Plan|Checksum|CopyPool|HostDevice|LoaderSuite)[.]|c_api" \
    2>&1 | tee "$OUT/ctest_host.log" | tail -5 || log "host tests FAILED (see $OUT/ctest_host.log)"
fi

if [[ -n "${SKIP_TIMINGS:-}" ]]; then
  log "done (SKIP_TIMINGS); logs in $OUT"
  exit 0
fi

log "synthesise models"
declare -A MODEL_FILES VOCAB=([qwen2.5-0.5b]=151936 [phi3-mini-4k]=32064)
for preset in $PRESETS; do
  MODEL_FILES[$preset]="$MODELS/$preset-q4_k_m.gguf"
  f=${MODEL_FILES[$preset]}
  [[ -s "$f" ]] || "$ORCD" synth --preset "$preset" --type Q4_K_M --n-vocab "${VOCAB[$preset]:-32000}" --seed 1 -o "$f" |
    tee -a "$OUT/synth.log"
done
ls -l "$MODELS" | tee -a "$OUT/device_loader.log"

log "pinned / pageable host-to-device bandwidth (same binary)"
FIRST=(${PRESETS})
"$ORCD" load "${MODEL_FILES[${FIRST[0]}]}" --device "$DEVICE" --bench-h2d --bench-mb 256 --json >"$OUT/h2d.json"
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
PINNED=$(jget "$OUT/h2d.json" 'round(d["h2d"]["pinned_gbps"], 2)')
PAGEABLE=$(jget "$OUT/h2d.json" 'round(d["h2d"]["pageable_gbps"], 2)')
log "pinned ${PINNED} GB/s, pageable ${PAGEABLE} GB/s"

drop_cache() {  # cold page cache for one file, as the issue asks: posix_fadvise(POSIX_FADV_DONTNEED)
  python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fdatasync(fd); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED); os.close(fd)' "$1"
}
warm_cache() { cat "$1" >/dev/null; }

log "--verify on both shapes"
for preset in $PRESETS; do
  "$ORCD" load "${MODEL_FILES[$preset]}" --device "$DEVICE" --verify --ctx "$CTX" 2>"$OUT/verify_$preset.progress.log" | tee "$OUT/verify_$preset.log" | tail -6
done

RESULTS="$OUT/loads.jsonl"
: >"$RESULTS"
run_load() {  # preset cache chunk threads rep variant
  local preset=$1 cache=$2 chunk=$3 threads=$4 rep=$5 variant=$6 f=${MODEL_FILES[$1]}
  local gather staging buffers slice
  IFS=/ read -r gather staging buffers slice <<<"$variant"
  local extra=()
  [[ -n $slice ]] && extra+=(--dma-slice-mb "$slice")
  [[ $gather == direct ]] && { extra+=(--direct); gather=mapping; }
  [[ $gather == mapping-plain ]] && { extra+=(--plain-stores); gather=mapping; }
  if [[ $cache == cold ]]; then drop_cache "$f"; else warm_cache "$f"; fi
  local t0 t1
  t0=$(date +%s%N)
  timeout 60 "$ORCD" load "$f" --device "$DEVICE" --ctx "$CTX" --chunk-mb "$chunk" --threads "$threads" \
    --gather "$gather" --staging "$staging" --buffers "$buffers" "${extra[@]}" --json >"$OUT/load.json"
  t1=$(date +%s%N)
  python3 - "$OUT/load.json" "$preset" "$cache" "$chunk" "$rep" "$(( (t1 - t0) / 1000 ))" "$variant" >>"$RESULTS" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t = d["transfer"]
print(json.dumps({"preset": sys.argv[2], "variant": sys.argv[7],
                  "gather_used": "direct" if t.get("direct") else t.get("gather") + ("" if t.get("streaming_stores") else "-plain"), "register_s": t.get("register_seconds", 0), "cache": sys.argv[3], "chunk_mb": int(sys.argv[4]), "rep": int(sys.argv[5]),
                  "wall_s": int(sys.argv[6]) / 1e6, "threads": d["transfer"]["copy_threads"], "start_to_resident_s": d["timings"].get("process_start_to_resident_s"),
                  "load_s": d["timings"]["load_s"], "transfer_s": d["transfer"]["seconds"], "gbps": d["transfer"]["gbps"],
                  "gather_s": d["transfer"]["gather_seconds"], "wait_s": d["transfer"]["wait_seconds"],
                  "setup_s": d["transfer"]["setup_seconds"], "alloc_s": d["timings"]["alloc_s"],
                  "bytes": d["transfer"]["bytes"], "resident": d["resident"], "vram_eq_plan": d["vram"]["weights_equal_plan"]}))
PY
}

# Seconds the timed loads may take in all (0: no limit); the table is written from whatever ran. Keeps one device call
# within its limit when the matrix is large.
TIME_BUDGET=${TIME_BUDGET:-0}
t_loads=$SECONDS
log "timed loads: variants [$VARIANTS] (cold: [$COLD_VARIANTS]), chunks [$CHUNKS] MiB, gather threads [$THREADS], $REPS reps"
for chunk in $CHUNKS; do
  for preset in $PRESETS; do
    for threads in $THREADS; do
      for variant in $VARIANTS; do
        for cache in warm cold; do
          [[ $cache == cold && " $COLD_VARIANTS " != *" $variant "* ]] && continue
          if (( TIME_BUDGET > 0 && SECONDS - t_loads > TIME_BUDGET )); then
            log "time budget of ${TIME_BUDGET} s spent: skipping $preset $cache $chunk MiB $variant"; continue
          fi
          for rep in $(seq 1 "$REPS"); do run_load "$preset" "$cache" "$chunk" "$threads" "$rep" "$variant"; done
        done
      done
    done
  done
done

python3 - "$RESULTS" "$PINNED" "$PAGEABLE" >"$OUT/loader_table.md" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
pinned = float(sys.argv[2])
print(f"pinned H2D {pinned:.2f} GB/s, pageable {float(sys.argv[3]):.2f} GB/s (same binary, same run)\n")
print("| shape | cache | chunk MiB | gather/staging/buffers | threads | start→resident s (median) | wall s | load s | transfer s | GB/s | % pinned | gather s | DMA wait s | staging setup s | register s | resident | VRAM==plan |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
key = lambda r: (r["preset"], r["cache"], r["chunk_mb"], r["variant"], r["threads"])
order = {v: i for i, v in enumerate(dict.fromkeys(r["variant"] for r in rows))}
keys = sorted({key(r) for r in rows}, key=lambda k: (k[0], k[1] != "warm", -k[2], order[k[3]], k[4]))
for k in keys:
    g = [r for r in rows if key(r) == k]
    used = {r["gather_used"] for r in g}
    variant = k[3] + ("" if used == {k[3].split("/")[0]} else f" (used {'/'.join(sorted(map(str, used)))})")
    med = lambda f: st.median(r[f] for r in g if r[f] is not None)
    gbps = med("gbps")
    print(f"| {k[0]} | {k[1]} | {k[2]} | {variant} | {k[4]} | {med('start_to_resident_s'):.3f} | {med('wall_s'):.3f} | {med('load_s'):.3f} | "
          f"{med('transfer_s'):.3f} | {gbps:.2f} | {100 * gbps / pinned:.0f}% | {med('gather_s'):.3f} | {med('wait_s'):.3f} | "
          f"{med('setup_s'):.3f} | {med('register_s'):.3f} | {all(r['resident'] for r in g)} | {all(r['vram_eq_plan'] for r in g)} |")
PY
cat "$OUT/loader_table.md"

# Direct DMA from the page cache (--direct / --bench-register): on the H100 VM, registering a 374 MiB mapping did not
# finish in 150 s. Probe small registrations, bounded, to see how the cost grows.
if [[ -n "${PROBE_REGISTER:-}" ]]; then
  for mb in 4 32; do
    warm_cache "${MODEL_FILES[${FIRST[0]}]}"
    log "probe: cudaHostRegister of $mb MiB of the mapping (timeout 20 s)"
    timeout 20 "$ORCD" load "${MODEL_FILES[${FIRST[0]}]}" --device "$DEVICE" --bench-register --bench-mb "$mb" --ctx "$CTX" \
      --brief 2>&1 | grep -E "^register|error" | tee -a "$OUT/device_loader.log" || log "probe $mb MiB: rc ${PIPESTATUS[0]}"
  done
fi
log "done; logs in $OUT"
