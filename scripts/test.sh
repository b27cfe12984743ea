#!/usr/bin/env bash
# The whole test suite: installs what is missing, configures build/ (CUDA where nvcc is found, CPU otherwise), builds,
# and runs every test. GPU tests (ctest label `gpu`) print SKIP on a machine without a GPU. The tests run with a
# TMPDIR of their own, which must be empty when they end: a test leaves no scratch file, model or socket behind.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j"$(nproc)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orcd-ctest-XXXXXX")
status=0
TMPDIR=$tmp ctest --test-dir build --output-on-failure -j"$(nproc)" "$@" || status=$?
if [ -n "$(ls -A "$tmp")" ]; then
  echo "FAIL: the tests left files behind in their TMPDIR ($tmp):"
  find "$tmp" -maxdepth 2 | head -n 40
  status=1
fi
rm -rf "$tmp"
exit $status
