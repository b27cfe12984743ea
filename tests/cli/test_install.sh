#!/bin/sh
# `cmake --install` into a temporary prefix, then the installed `orcd --version`: the binary, the C API header and
# library land under the prefix, and the version text names the project version, the commit and the CUDA build.
# Usage: test_install.sh BUILD_DIR PROJECT_VERSION SOURCE_DIR CUDA(ON|OFF)
set -eu
build=$1 version=$2 source=$3 cuda=$4
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/orcd include/orcd.h; do
  [ -f "$prefix/$f" ] || { echo "FAIL: $prefix/$f not installed"; exit 1; }
done
lib=$(find "$prefix" -name 'liborcd.so' | head -n 1)
[ -n "$lib" ] || { echo "FAIL: liborcd.so not installed under $prefix"; exit 1; }
out=$("$prefix/bin/orcd" --version)
echo "$out"
echo "$out" | head -n 1 | grep -qx "orcd $version" || { echo "FAIL: first line is not 'orcd $version'"; exit 1; }
if commit=$(git -C "$source" rev-parse --short=12 HEAD 2>/dev/null); then
  echo "$out" | grep -q "^commit: *$commit" || { echo "FAIL: commit $commit not reported"; exit 1; }
fi
if [ "$cuda" = ON ]; then
  echo "$out" | grep -q "^cuda: *toolkit [0-9]" || { echo "FAIL: no CUDA toolkit version"; exit 1; }
  echo "$out" | grep -q "^cuda architectures: *[0-9]" || { echo "FAIL: no CUDA architectures"; exit 1; }
else
  echo "$out" | grep -q "^cuda: *none" || { echo "FAIL: a CPU build must say cuda: none"; exit 1; }
  echo "$out" | grep -q "^cuda architectures: *none" || { echo "FAIL: a CPU build has no CUDA architectures"; exit 1; }
fi
echo "PASS"
