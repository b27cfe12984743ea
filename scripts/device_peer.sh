#!/usr/bin/env bash
# Device step `peer`: llama.cpp's llama-server (and llama-batched-bench) measured on the same synth file, GPU and call
# as `scripts/device_batching.sh`, so the continuous-batching figures have their peer beside them.
# llama.cpp comes either prebuilt (.peer/bin.txz: llama-server, llama-batched-bench and their ggml libraries, built
# here for sm_90 with the commands of the build part and a libcuda stub to link against), or as a source tarball
# (.peer/llama.cpp.tgz, `git archive` of a llama.cpp snapshot) built on the device into .peer/build. Both are
# git-ignored and carried with the call.
#   PEER_PARTS="build serve bench" (default: all)   PEER_CLIENTS=1,16,64   PEER_PRESET=qwen2.5-0.5b
#   build   configure + build llama-server and llama-batched-bench (skipped when already built)
#   serve   llama-server -np P -fa, driven by bench/serve_load.py with the workload (as the batching step)
#   bench   llama-batched-bench -npp 100 -ntg 128 -npl 1,8,16,64 (llama.cpp's counterpart of `orcd bench --batch`)
set -uo pipefail
orcd=${ORCD:-build-dev/src/cli/orcd}
OUT=${OUT:-/tmp}; mkdir -p "$OUT"
PEER_PARTS=${PEER_PARTS:-"build serve bench"}
PEER_CLIENTS=${PEER_CLIENTS:-1,16,64}
PEER_PRESET=${PEER_PRESET:-qwen2.5-0.5b}
has() { [[ " $PEER_PARTS " == *" $1 "* ]]; }
bin=.peer/build/bin
if [ -f .peer/bin.txz ]; then
  tar xJf .peer/bin.txz -C .peer && bin=.peer/bin
fi
export LD_LIBRARY_PATH="$PWD/$bin:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

if has build && [ ! -x $bin/llama-server ]; then
  [ -f .peer/llama.cpp.tgz ] || { echo "no .peer/llama.cpp.tgz: carry it"; exit 1; }
  rm -rf .peer/src; mkdir -p .peer/src; tar xzf .peer/llama.cpp.tgz -C .peer/src
  cmake -S .peer/src -B .peer/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF > "$OUT/peer-cmake.log" 2>&1 || { tail -30 "$OUT/peer-cmake.log"; exit 1; }
  start=$SECONDS
  nice -n 10 cmake --build .peer/build -j"$(nproc)" --target llama-server llama-batched-bench > "$OUT/peer-build.log" 2>&1 ||
    { tail -30 "$OUT/peer-build.log"; exit 1; }
  echo "llama.cpp built in $((SECONDS - start)) s"
fi

echo "--- llama.cpp: $($bin/llama-server --version 2>&1 | grep -m1 -i version)"

# The synth file of the batching step (same preset, same vocabulary, same path).
vocab_dir=$(cd .. && pwd)/shared/models/vocab
[ -d "$vocab_dir" ] || vocab_dir=.carry/shared/models/vocab
m=/tmp/orcd-batching-models; mkdir -p "$m"
f=$m/$PEER_PRESET-Q4_K_M.gguf
case $PEER_PRESET in qwen*) vocab=ggml-vocab-qwen2.5.gguf ;; phi3*) vocab=ggml-vocab-phi-3.gguf ;; *) vocab=ggml-vocab-llama-spm.gguf ;; esac
[ -f "$f" ] || $orcd synth --preset "$PEER_PRESET" --type Q4_K_M --vocab "$vocab_dir/$vocab" -o "$f" >/dev/null

if has serve; then
  par=$(echo "$PEER_CLIENTS" | tr ',' '\n' | sort -n | tail -1)
  port=18931
  # -c is the whole KV cache, split evenly over the -np slots: 512 positions per slot fits 100 + 128.
  echo "--- llama-server -np $par -c $((par * 512)) -fa -ngl 99, serve_load clients $PEER_CLIENTS"
  $bin/llama-server -m "$f" -ngl 99 -fa -np "$par" -c $((par * 512)) --port $port > "$OUT/peer-server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
  python3 bench/serve_load.py --url "http://127.0.0.1:$port" --clients "$PEER_CLIENTS" --prompt-tokens 100 \
    --max-tokens 128 --requests-per-client 4 --request-timeout 120
  kill -TERM $pid; wait $pid 2>/dev/null
fi

if has bench; then
  echo "--- llama-batched-bench -npp 100 -ntg 128 -npl 1,8,16,64 -fa"
  $bin/llama-batched-bench -m "$f" -ngl 99 -fa -c 16384 -b 2048 -ub 512 -npp 100 -ntg 128 -npl 1,8,16,64 2>&1 |
    grep -E '^\|' || true
fi
