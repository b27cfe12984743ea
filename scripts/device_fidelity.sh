#!/usr/bin/env bash
# Device step `fidelity`: the CUDA backend against the CPU reference at full size. `orcd perplexity --json` on synth
# models of both reference shapes (Q4_K_M, real tokenizers) with --device cpu and --device cuda over the same text;
# then per-position argmax agreement (goal >= 99%) and the relative difference of the mean NLL (goal <= 0.1%).
# MODE=f32|int8 (default f32): both devices run with --activations $MODE (the same numeric definition on both), so
# the comparison isolates the backend; random-weight models have top-2 logit margins so small that mixing modes alone
# flips ~5-8% of the argmaxes (INT8=1 adds cpu-int8 vs cpu-f32 to the log, for the record). Both use an f16 KV cache.
# Logs under $OUT: fidelity.txt (the summary) and the raw JSON.
#   PRESETS="qwen2.5-0.5b phi3-mini-4k"  TYPE=Q4_K_M  CHARS=4000 (text length per model)  WEIGHTS=quantized|f16
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/out}; mkdir -p "$OUT"
ORCD=${ORCD:-build-dev/src/cli/orcd}
PRESETS=${PRESETS:-"qwen2.5-0.5b phi3-mini-4k"}
TYPE=${TYPE:-Q4_K_M}
MODE=${MODE:-f32}
CHARS=${CHARS:-4000}
MODELS=${MODELS:-/tmp/orcd-fidelity-models}
WEIGHTS_ARG=${WEIGHTS:+--weights $WEIGHTS}   # cuda only; set WEIGHTS=f16 to check the dequantize-on-load mode
shared=$(cd .. && pwd)/shared
[[ -d $shared/models/vocab ]] || shared=$PWD/.carry/shared
mkdir -p "$MODELS"
# The text: this repository's own prose (README + design notes), identical on both devices.
text=$MODELS/text.txt
cat README.md docs/*.md | head -c "$CHARS" > "$text"
status=0
for preset in $PRESETS; do
  case $preset in qwen*) vocab=qwen2.5 ;; phi3*) vocab=phi-3 ;; *) vocab=llama-spm ;; esac
  model=$MODELS/$preset-$TYPE.gguf
  [[ -f $model ]] || "$ORCD" synth --preset "$preset" --type "$TYPE" --vocab "$shared/models/vocab/ggml-vocab-$vocab.gguf" \
                       -o "$model" >/dev/null || { echo "synth $preset failed"; status=1; continue; }
  runs=("cpu --activations $MODE" "cuda --activations $MODE")
  [[ -n ${INT8:-} && $MODE == f32 ]] && runs+=("cpu --activations int8")
  for r in "${runs[@]}"; do
    name=$(echo "$r" | tr -d ' -'); read -r dev extra <<<"$r"
    w=""; [[ $dev == cuda ]] && w=$WEIGHTS_ARG
    /usr/bin/time -f "$preset $r: %e s wall" "$ORCD" perplexity -m "$model" -f "$text" --device $dev $extra $w --json \
      > "$OUT/ppl-$preset-$name.json" 2> >(tee -a "$OUT/fidelity.txt" >&2) || { echo "perplexity $preset $r failed"; status=1; }
  done
  [[ -n ${INT8:-} && $MODE == f32 ]] && python3 - "$OUT/ppl-$preset-cpuactivationsf32.json" "$OUT/ppl-$preset-cpuactivationsint8.json" "$preset $TYPE cpu-int8 vs cpu-f32 (for the record)" <<'PY' | tee -a "$OUT/fidelity.txt"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
n = len(a["argmax"]); agree = sum(x == y for x, y in zip(a["argmax"], b["argmax"])) / n
print(f"{sys.argv[3]}: argmax agreement {agree:.4%}, mean NLL {a['nll_mean']:.6f} vs {b['nll_mean']:.6f}")
PY
  python3 - "$OUT/ppl-$preset-cpuactivations$MODE.json" "$OUT/ppl-$preset-cudaactivations$MODE.json" "$preset $TYPE cuda vs cpu ($MODE activations)" <<'PY' | tee -a "$OUT/fidelity.txt" || status=1
import json, sys
cpu, cuda = (json.load(open(p)) for p in sys.argv[1:3])
assert cpu["tokens"] == cuda["tokens"], "different tokenization"
n = len(cpu["argmax"])
agree = sum(a == b for a, b in zip(cpu["argmax"], cuda["argmax"])) / n
rel = abs(cuda["nll_mean"] - cpu["nll_mean"]) / cpu["nll_mean"]
worst = max(abs(a - b) for a, b in zip(cpu["nll"], cuda["nll"]))
ok = agree >= 0.99 and rel <= 0.001
print(f"{sys.argv[3]}: {len(cpu['tokens'])} tokens, {n} scored; argmax agreement {agree:.4%} (goal >= 99%); "
      f"mean NLL cpu {cpu['nll_mean']:.6f} cuda {cuda['nll_mean']:.6f}, relative diff {rel:.3e} (goal <= 1e-3); "
      f"worst per-position |dNLL| {worst:.4f}; {'PASS' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
PY
done
exit $status
