#!/usr/bin/env bash
# ctest over BUILD_DIR with a TMPDIR of the tests' own, which must be empty when they end: a test leaves no scratch
# file, model or socket behind (a test that did filled CI's disk once). The exit status is ctest's, or 1 when files
# were left. Usage: scripts/ctest_clean.sh BUILD_DIR [CTEST_ARGS...]
set -uo pipefail
build=$1
shift
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orcd-ctest-XXXXXX")
TMPDIR=$tmp ctest --test-dir "$build" "$@"
status=$?
if [ -n "$(ls -A "$tmp")" ]; then
  echo "FAIL: the tests left files behind in their TMPDIR ($tmp):"
  find "$tmp" -maxdepth 2 | head -n 40
  status=1
fi
rm -rf "$tmp"
exit $status
