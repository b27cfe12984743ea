#!/usr/bin/env bash
# Run HERE (the development machine) before a device call: builds the CUDA configuration in build-dev/ for the device
# (x86-64-v3, sm_90, Release), then packs what the device needs into .carry/ (git-ignored):
#   .carry/build-dev  — executables + the ctest files (no object files), so `ctest` runs there unchanged
#   .carry/shared     — the shared vocab/tokenizer files the tests and scripts read
# Then call the device with carry [".carry"] and the command `scripts/device.sh STEP...`.
# Usage: scripts/device_build.sh [TARGET...]   (default: every target)
#        BUILD_DIR=build scripts/device_build.sh   packs an existing CUDA build (Release, x86-64-v3) instead
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/cuda/bin:$PATH"
shared=$(cd .. && pwd)/shared
bdir=${BUILD_DIR:-build-dev}
if [ "$bdir" = build-dev ]; then
  cmake -S . -B build-dev -G Ninja -DORCD_CUDA=ON -DORCD_BENCH=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build-dev -j"$(nproc)" ${1:+--target "$@"}
fi

rm -rf .carry/build-dev .carry/shared
mkdir -p .carry/shared/models
# Keep the tree's layout: ctest and the gtest discovery files name absolute paths under build-dev/.
mkdir -p .carry/build-dev
(cd "$bdir" && find . \( -name CTestTestfile.cmake -o -name '*_include.cmake' -o -name '*_tests.cmake' \) -print0 |
  xargs -0 -I{} cp --parents {} ../.carry/build-dev/)
(cd "$bdir" && find . -type f \( -executable -o -name '*.so*' \) ! -path '*/CMakeFiles/*' -print0 |
  xargs -0 -I{} cp --parents {} ../.carry/build-dev/)
find .carry/build-dev -type f -executable -exec strip --strip-debug {} + 2>/dev/null || true
# Debian libraries the device's Ubuntu image lacks, for this tree's orcd and for an older binary that
# scripts/build_before.sh put in .carry/before.
# shellcheck source=scripts/carry_libs.sh
. "$(dirname "$0")/carry_libs.sh"
rm -rf .carry/lib; mkdir -p .carry/lib
for bin in "$bdir/src/cli/orcd" .carry/before/orcd; do
  if [ -x "$bin" ]; then carry_libs "$bin"; fi
done
cp -r "$shared/models/vocab" "$shared/models/tokenizers" .carry/shared/models/
cp -r "$shared/templates" .carry/shared/
echo "$(pwd)" > .carry/build-dev/.source_dir   # the absolute source path the ctest files were generated with
echo "$bdir" > .carry/build-dev/.build_name    # the build folder's name they were generated with
du -sh .carry/build-dev .carry/shared
