# Sourced by the device steps that bench the reference shapes (device_compare.sh, device_token_profile.sh):
# bench_model ORCD PRESET prints the path of PRESET's Q4_K_M synth file (context 8448, so that a 4096-token depth and
# a 128-token run fit), writing it with ORCD's `synth` the first time, under /tmp/orcd-bench-models, from the shared
# vocabularies (../shared beside the checkout, or .carry/shared on the device machine).
bench_model() {
  local orcd=$1 preset=$2 vocab vocab_dir
  vocab_dir=$(cd .. && pwd)/shared/models/vocab
  [ -d "$vocab_dir" ] || vocab_dir=.carry/shared/models/vocab
  case $preset in qwen*) vocab=ggml-vocab-qwen2.5.gguf ;; phi3*) vocab=ggml-vocab-phi-3.gguf ;; *) vocab=ggml-vocab-llama-spm.gguf ;; esac
  local m=/tmp/orcd-bench-models f
  mkdir -p "$m"
  f=$m/$preset-Q4_K_M.gguf
  [ -f "$f" ] || "$orcd" synth --preset "$preset" --type Q4_K_M --vocab "$vocab_dir/$vocab" --ctx-size 8448 -o "$f" >/dev/null
  echo "$f"
}
