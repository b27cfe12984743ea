#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install what is missing, build, write a Qwen2.5-0.5B-shaped Q4_K_M model
# with random weights (`orcd synth`; no network needed), and generate text from it through the chat template.
# Runs on the GPU when one is present (--device cuda), otherwise says so and uses --device cpu.
# Usage: scripts/quickstart.sh [PROMPT]
set -euo pipefail
cd "$(dirname "$0")/.."
prompt=${1:-"Write a haiku about GPUs."}
shared=${ORCD_SHARED_DIR:-$(cd .. && pwd)/shared}
./scripts/setup.sh
cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j"$(nproc)"
mkdir -p models
model=models/qwen2.5-0.5b-q4_k_m.gguf
[ -s "$model" ] || ./build/src/cli/orcd synth --preset qwen2.5-0.5b --type Q4_K_M \
  --vocab "$shared/models/vocab/ggml-vocab-qwen2.5.gguf" -o "$model"
device=cpu
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 && grep -q 'ORCD_CUDA:BOOL=ON' build/CMakeCache.txt; then
  device=cuda
else
  echo "quickstart: no GPU here (or a CPU-only build): generating with --device cpu" >&2
fi
# The weights are random, so the text is too: this shows the whole path, not a trained model's answer.
./build/src/cli/orcd generate -m "$model" --chat -p "$prompt" -n 48 --temp 0.7 --seed 1 --device "$device"
