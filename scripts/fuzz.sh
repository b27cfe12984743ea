#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a bounded time on a seed corpus: the vocab GGUFs in
# ../shared/models/vocab and small files written by `orcd synth`. Any crash fails (exit non-zero).
# Usage: scripts/fuzz.sh [seconds-per-target]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shared=${ORCD_SHARED_DIR:-$(cd .. && pwd)/shared}
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DORCD_FUZZ=ON -DORCD_CUDA=OFF -DORCD_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=$(sed -n 's/^orcd_add_fuzzer(\([a-z_]*\) .*/\1/p' fuzz/CMakeLists.txt)
cmake --build build-fuzz -j2 --target $targets
# Seed models come from the regular build's orcd (scripts/test.sh builds it); the fuzz build compiles only what the
# targets fuzz.
orcd=${ORCD_BIN:-build/src/cli/orcd}
[ -x "$orcd" ] || { cmake --build build-fuzz -j2 --target orcd; orcd=build-fuzz/src/cli/orcd; }

corpus=build-fuzz/corpus
rm -rf "$corpus"; mkdir -p "$corpus/gguf" "$corpus/tokenizer"
cp "$shared"/models/vocab/*.gguf "$corpus/gguf/"
for preset in qwen2.5-tiny phi3-tiny llama-tiny; do
  "$orcd" synth --preset "$preset" --n-vocab 512 --type Q4_K_M --layers 1 -o "$corpus/gguf/$preset.gguf" >/dev/null
done
for f in "$shared"/models/vocab/*.inp; do cp "$f" "$corpus/tokenizer/"; done
# Grammar seeds: hand-written GBNF, and the schemas of the corpus (taken out of their test-case wrappers).
mkdir -p "$corpus/gbnf" "$corpus/json_schema"
cp fuzz/seeds/gbnf/*.gbnf "$corpus/gbnf/"
python3 -c 'import json,pathlib,sys
for p in pathlib.Path("tests/grammar/schemas").glob("*.json"):
    (pathlib.Path(sys.argv[1]) / p.name).write_text(json.dumps(json.loads(p.read_text())["schema"]))' "$corpus/json_schema"

for t in $targets; do
  case $t in
    fuzz_gguf) c=$corpus/gguf ;;
    fuzz_gbnf) c=$corpus/gbnf ;;
    fuzz_json_schema) c=$corpus/json_schema ;;
    *) c=$corpus/tokenizer ;;
  esac
  echo "fuzz: $t for ${seconds}s on $(ls "$c" | wc -l) seeds"
  # -rss_limit_mb guards against inputs that make a target allocate without bound; such an input is a bug too.
  ./build-fuzz/fuzz/$t "$c" -max_total_time="$seconds" -rss_limit_mb=4096 -max_len=262144 -print_final_stats=1 \
    -artifact_prefix=build-fuzz/ 2>&1 | tail -n 12
done
echo "fuzz: no crashes"
