#!/usr/bin/env bash
# Run ON THE DEVICE MACHINE (via the device tool, carry [".carry"]), in the repo root of the copy sent there, after
# scripts/device_build.sh ran here. Recreates the development machine's absolute paths (the ctest files name them) with
# symbolic links, then runs the requested steps, writing logs under $OUT.
#   steps: info gpu-tests [more steps added by scripts/device_*.sh: see the case below]
set -uo pipefail
root=$(pwd)
OUT=${OUT:-$root/out}; mkdir -p "$OUT"
src=$(cat .carry/build-dev/.source_dir)
mkdir -p "$(dirname "$src")"
[ "$src" = "$root" ] || ln -sfn "$root" "$src"
ln -sfn "$root/.carry/shared" "$(dirname "$src")/shared"
ln -sfn "$root/.carry/build-dev" "$root/build-dev"
bname=$(cat .carry/build-dev/.build_name 2>/dev/null || echo build-dev)
[ "$bname" = build-dev ] || { rm -rf "${root:?}/$bname"; ln -sfn "$root/.carry/build-dev" "$root/$bname"; }
export LD_LIBRARY_PATH="$root/.carry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export ORCD=$root/build-dev/src/cli/orcd BUILD=build-dev PREBUILT=1 OUT
steps=("$@"); [ ${#steps[@]} -gt 0 ] || steps=(info gpu-tests)
status=0
for step in "${steps[@]}"; do
  echo "=== $step"
  case $step in
    info) nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv | tee "$OUT/info.txt"
          nproc; python3 -c 'import torch, transformers, tokenizers, jinja2; print(torch.__version__, transformers.__version__, tokenizers.__version__, jinja2.__version__)' ;;
    gpu-tests) (cd "$src" && scripts/ctest_clean.sh "$bname" -L gpu --output-on-failure 2>&1) | tee "$OUT/gpu-tests.log" | tail -n 40
               [ "${PIPESTATUS[0]}" -eq 0 ] || status=1 ;;
    all-tests) (cd "$src" && scripts/ctest_clean.sh "$bname" --output-on-failure -j8 2>&1) | tee "$OUT/all-tests.log" | tail -n 40
               [ "${PIPESTATUS[0]}" -eq 0 ] || status=1 ;;
    *) if [ -x "scripts/device_$step.sh" ]; then "scripts/device_$step.sh" 2>&1 | tee "$OUT/$step.log" | tail -n 60
         [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
       else echo "unknown step '$step'"; status=1; fi ;;
  esac
done
exit $status
