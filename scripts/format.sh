#!/usr/bin/env bash
# Formats every C++/CUDA source the repository tracks with the tree's .clang-format (clang-format 14).
#   scripts/format.sh           rewrite the files in place
#   scripts/format.sh --check   change nothing; list the files that differ and fail if there are any (CI runs this)
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac
clang_format=$(command -v clang-format-14 || command -v clang-format || true)
[[ -n "$clang_format" ]] || { echo "format.sh: clang-format (14) not found; scripts/setup.sh installs it" >&2; exit 1; }

mapfile -d '' files < <(git ls-files -z -- '*.cpp' '*.h' '*.hpp' '*.cu' '*.cuh')
if (( check == 0 )); then
  printf '%s\0' "${files[@]}" | xargs -0 -n 32 -P "$(nproc)" "$clang_format" -i --style=file
  exit 0
fi
unformatted=()
for f in "${files[@]}"; do
  "$clang_format" --style=file "$f" | cmp -s - "$f" || unformatted+=("$f")
done
if (( ${#unformatted[@]} > 0 )); then
  echo "format.sh --check: ${#unformatted[@]} file(s) differ from .clang-format (run scripts/format.sh):" >&2
  printf '  %s\n' "${unformatted[@]}" >&2
  exit 1
fi
echo "format.sh --check: ${#files[@]} files formatted"
