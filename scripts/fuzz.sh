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
# The server's seeds: a few well-formed and malformed requests and bodies (the fuzzer mutates from there).
mkdir -p "$corpus/http" "$corpus/json"
printf 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >"$corpus/http/get"
printf 'POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}GET / HTTP/1.1\r\n\r\n' >"$corpus/http/pipelined"
printf 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n' \
  >"$corpus/http/chunked"
printf 'POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' >"$corpus/http/smuggle"
printf '{"job_id":"a-1","prompt":"hi","max_tokens":4,"temperature":0.5,"stop":["x"],"seed":7}' >"$corpus/json/execute"
printf '{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"stream":true}' \
  >"$corpus/json/chat"
printf '{"model":"m","prompt":["a"],"max_tokens":1e400,"top_p":[[[[0]]]]}' >"$corpus/json/odd"
# Tool-call seeds: a call in each format (model output, mutated from there).
mkdir -p "$corpus/toolcall"
printf 'Hi <tool_call>\n{"name": "f", "arguments": {"a": [1, "}"]}}\n</tool_call>' >"$corpus/toolcall/hermes"
printf '<|python_tag|>{"name": "f", "parameters": {}}; {"name": "g", "parameters": {"x": null}}' >"$corpus/toolcall/llama"
printf '[TOOL_CALLS][{"name": "f", "arguments": {}, "id": "abcdefghi"}]' >"$corpus/toolcall/mistral"
printf '[TOOL_CALLS]f[ARGS]{"q": "\\u00e9"}[TOOL_CALLS]g[ARGS]{}' >"$corpus/toolcall/mistral2"

for t in $targets; do
  case $t in
    fuzz_gguf) c=$corpus/gguf ;;
    fuzz_gbnf) c=$corpus/gbnf ;;
    fuzz_json_schema) c=$corpus/json_schema ;;
    fuzz_http_request) c=$corpus/http ;;
    fuzz_json_request) c=$corpus/json ;;
    fuzz_toolcall) c=$corpus/toolcall ;;
    *) c=$corpus/tokenizer ;;
  esac
  echo "fuzz: $t for ${seconds}s on $(ls "$c" | wc -l) seeds"
  # -rss_limit_mb guards against inputs that make a target allocate without bound; such an input is a bug too.
  ./build-fuzz/fuzz/$t "$c" -max_total_time="$seconds" -rss_limit_mb=4096 -max_len=262144 -print_final_stats=1 \
    -artifact_prefix=build-fuzz/ 2>&1 | tail -n 12
done
echo "fuzz: no crashes"
