#!/usr/bin/env bash
# Runs clang-tidy 14 (checks: .clang-tidy) over every C++ file in src/ with a configured build's compile database and
# fails on any finding. CUDA sources (.cu) are left to nvcc's warnings: clang-tidy would need clang's CUDA frontend.
#   scripts/tidy.sh [BUILD_DIR]     (default build/, built already: generated sources must exist; CI runs it after
#                                    scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
tidy=$(command -v clang-tidy-14 || command -v clang-tidy || true)
runner=$(command -v run-clang-tidy-14 || command -v run-clang-tidy || true)
[[ -n "$tidy" && -n "$runner" ]] || { echo "tidy.sh: clang-tidy (14) not found; scripts/setup.sh installs it" >&2; exit 1; }
[[ -f "$build/compile_commands.json" ]] || { echo "tidy.sh: no $build/compile_commands.json; build $build first" >&2; exit 1; }
log=$(mktemp); trap 'rm -f "$log"' EXIT
# run-clang-tidy's exit status is unreliable in version 14: the findings are counted in its output instead.
"$runner" -quiet -clang-tidy-binary "$tidy" -p "$build" -j "$(nproc)" "$PWD/src/.*\.cpp\$" >"$log" 2>&1 || true
sed -i 's/\x1b\[[0-9;]*m//g' "$log"  # run-clang-tidy colours its output
# A finding in a header is reported once per file that includes it: each place is listed once.
findings=$(grep -E '^/.*: (warning|error): ' "$log" | sort -u || true)
if [[ -n "$findings" ]]; then
  echo "$findings" >&2
  echo "tidy.sh: $(echo "$findings" | wc -l) finding(s) in src/ (a file's context: rerun clang-tidy-14 -p $build FILE)" >&2
  exit 1
fi
echo "tidy.sh: src/ clean ($(grep -c "\"file\": \"$PWD/src/.*\.cpp\"" "$build/compile_commands.json" || true) files)"
