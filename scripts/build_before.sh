#!/usr/bin/env bash
# Run HERE before a device call that compares speed with an older commit (scripts/device_compare.sh): builds that
# commit's `orcd` (CUDA, Release, x86-64-v3, sm_90 as the build's default) in a git worktree outside the checkout and
# puts it at .carry/before/orcd, with the Debian libraries it links that the device lacks in .carry/lib (device.sh
# puts that folder on LD_LIBRARY_PATH; a later scripts/device_build.sh copies them again). Then on the device:
# ORCD_BEFORE=.carry/before/orcd scripts/device.sh compare.
# Usage: scripts/build_before.sh [COMMIT]   (default 93ee4a6, the architecture refactor's "before", docs/PERF.md)
# Older trees serve HTTP through cpp-httplib (libcpp-httplib-dev), which setup.sh no longer installs: it is added here.
# A cold build takes about 30 minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
commit=${1:-93ee4a6}
export PATH="/usr/local/cuda/bin:$PATH"
if ! dpkg -s libcpp-httplib-dev >/dev/null 2>&1; then
  apt-get install -y libcpp-httplib-dev >/dev/null || { apt-get update >/dev/null && apt-get install -y libcpp-httplib-dev >/dev/null; }
fi
tree=$(cd .. && pwd)/orcd-before-$commit
[ -d "$tree" ] || git worktree add -f "$tree" "$commit" >/dev/null
CCACHE_BASEDIR=$tree cmake -S "$tree" -B "$tree/build" -G Ninja -DORCD_CUDA=ON -DORCD_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=Release -DORCD_CPU_ARCH=x86-64-v3 >/dev/null
CCACHE_BASEDIR=$tree cmake --build "$tree/build" -j"$(nproc)" --target orcd
mkdir -p .carry/before .carry/lib
cp "$tree/build/src/cli/orcd" .carry/before/orcd
strip --strip-debug .carry/before/orcd
# shellcheck source=scripts/carry_libs.sh
. scripts/carry_libs.sh
carry_libs .carry/before/orcd
echo "before: $(.carry/before/orcd --version | head -2 | tr '\n' ' ')"
