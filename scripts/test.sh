#!/usr/bin/env bash
# The whole test suite: installs what is missing, configures build/ (CUDA where nvcc is found, CPU otherwise), builds,
# and runs every test. GPU tests (ctest label `gpu`) print SKIP on a machine without a GPU. The tests run with a
# TMPDIR of their own, which must be empty when they end (scripts/ctest_clean.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j"$(nproc)"
exec ./scripts/ctest_clean.sh build --output-on-failure -j"$(nproc)" "$@"
