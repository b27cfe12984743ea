#!/usr/bin/env bash
# Device step `grammar` (issue 17): what constrained decoding costs a server. `orcd serve --device cuda` on the Qwen2.5
# 0.5B synth (Q4_K_M, random weights, the Qwen vocabulary), driven by bench/serve_load.py (100-token prompts, 128 new
# tokens, greedy, streamed /v1/completions, closed loop) at 1 and 16 concurrent streams: first unconstrained, then
# every request constrained by bench/grammar_load_schema.json (response_format json_schema, strict; an array of at
# least 40 nested order objects, so no reply completes the grammar within 128 tokens and every stream runs as long
# as an unconstrained one). The goal (issue 17): constrained aggregate tok/s within 5 % of unconstrained.
#   CLIENTS (default 1,16)  REQUESTS (measured requests per client, default 4)  SCHEMA_MAX_STRING (default unset)
#   DEVICE (default cuda), PRESET (default qwen2.5-0.5b), CTX (default 4096): DEVICE=cpu PRESET=qwen2.5-tiny CTX=2048
#   CLIENTS=1,2 smoke-tests the script on a machine without a GPU.
# Writes $OUT/grammar.json (the serve_load reports and the ratios) and $OUT/grammar-summary.txt (a table); the
# server's log goes to $OUT/grammar-serve.log. About a minute when the synth model is already there.
set -uo pipefail
orcd=${ORCD:-build-dev/src/cli/orcd}
OUT=${OUT:-/tmp}; mkdir -p "$OUT"
CLIENTS=${CLIENTS:-1,16}
REQUESTS=${REQUESTS:-4}
DEVICE=${DEVICE:-cuda}
PRESET=${PRESET:-qwen2.5-0.5b}
CTX=${CTX:-4096}
vocab_dir=$(cd .. && pwd)/shared/models/vocab
[ -d "$vocab_dir" ] || vocab_dir=.carry/shared/models/vocab
m=/tmp/orcd-batching-models; mkdir -p "$m"  # shared with device_batching.sh: one synth per device session
f=$m/$PRESET-Q4_K_M.gguf
[ -f "$f" ] || $orcd synth --preset "$PRESET" --type Q4_K_M --vocab "$vocab_dir/ggml-vocab-qwen2.5.gguf" -o "$f" >/dev/null \
  || { echo "synth failed"; exit 1; }
par=$(echo "$CLIENTS" | tr ',' '\n' | sort -n | tail -1)

log=$OUT/grammar-serve.log
# Strings without maxLength are unbounded (one stack head each) unless SCHEMA_MAX_STRING=N bounds them to N
# characters (N heads each, every one a first-time trie walk: docs/PERF.md).
$orcd serve -m "$f" --device "$DEVICE" --port 0 --parallel "$par" -c "$CTX" ${SCHEMA_MAX_STRING:+--schema-max-string $SCHEMA_MAX_STRING} 2> "$log" > /dev/null &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
port=""
for _ in $(seq 1 600); do
  port=$(grep -o 'address=http://127.0.0.1:[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
  [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  port=""; kill -0 $pid 2>/dev/null || break; sleep 0.1
done
[ -n "$port" ] || { cat "$log"; echo "orcd serve did not start"; exit 1; }

load() {  # serve_load's JSON report on stdout; extra arguments appended
  python3 bench/serve_load.py --url "http://127.0.0.1:$port" --clients "$CLIENTS" --prompt-tokens 100 \
    --max-tokens 128 --requests-per-client "$REQUESTS" --request-timeout 60 --json "$@"
}
echo "--- unconstrained, clients $CLIENTS"
load > "$OUT/grammar-free.json" || { echo "serve_load (unconstrained) failed"; exit 1; }
# Twice: the first pass meets most stack heads of the grammar for the first time (each costs one walk of the
# vocabulary trie, docs/PERF.md), the second finds their token splits cached, as a server does once the grammar is
# in use.
for pass in cold warm; do
  echo "--- constrained (bench/grammar_load_schema.json), clients $CLIENTS, split cache $pass"
  load --json-schema bench/grammar_load_schema.json > "$OUT/grammar-constrained-$pass.json" \
    || { echo "serve_load (constrained, $pass) failed"; exit 1; }
done

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
[ -n "$gpu" ] || gpu="no GPU ($DEVICE)"
python3 - "$OUT" "$gpu" "$PRESET" <<'PY'
import datetime, json, sys
out, gpu, preset = sys.argv[1], sys.argv[2], sys.argv[3]
free = json.load(open(f"{out}/grammar-free.json"))
cons = {p: json.load(open(f"{out}/grammar-constrained-{p}.json")) for p in ("cold", "warm")}
rows = []
for p in ("cold", "warm"):
    for a, b in zip(free["phases"], cons[p]["phases"]):
        ratio = b["output_tok_per_s"] / a["output_tok_per_s"] if a["output_tok_per_s"] else None
        rows.append({"clients": a["clients"], "split_cache": p, "free_tok_per_s": a["output_tok_per_s"],
                     "constrained_tok_per_s": b["output_tok_per_s"], "ratio": ratio,
                     "free_tpot_ms_p50": a["tpot_ms"]["p50"], "constrained_tpot_ms_p50": b["tpot_ms"]["p50"],
                     "free_errors": a["errors"], "constrained_errors": b["errors"],
                     "free_output_tokens": a["output_tokens"], "constrained_output_tokens": b["output_tokens"]})
report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "gpu": gpu,
          "model": f"{preset} synth Q4_K_M", "goal": "constrained >= 0.95 x unconstrained aggregate tok/s",
          "rows": rows, "unconstrained": free, "constrained_cold": cons["cold"], "constrained_warm": cons["warm"]}
json.dump(report, open(f"{out}/grammar.json", "w"), indent=1)
lines = [f"grammar step, {report['date']}, {gpu}, {report['model']}, 100-token prompts, 128 new tokens, greedy",
         f"{'clients':>7} {'cache':>5} {'free tok/s':>11} {'constr tok/s':>13} {'ratio':>6} {'free TPOT':>10} "
         f"{'constr TPOT':>12} {'errors':>7}"]
for r in rows:
    ratio = f"{r['ratio']:.3f}" if r["ratio"] is not None else "-"
    tp = lambda v: f"{v:.2f} ms" if v is not None else "-"
    lines.append(f"{r['clients']:>7} {r['split_cache']:>5} {r['free_tok_per_s']:>11.1f} "
                 f"{r['constrained_tok_per_s']:>13.1f} {ratio:>6} {tp(r['free_tpot_ms_p50']):>10} "
                 f"{tp(r['constrained_tpot_ms_p50']):>12} {r['free_errors'] + r['constrained_errors']:>7}")
open(f"{out}/grammar-summary.txt", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
