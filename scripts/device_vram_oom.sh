#!/usr/bin/env bash
# Device step `vram_oom`: a real out-of-memory in the middle of serving, end to end. `orcd serve --device cuda` on a
# synth Qwen2.5-0.5B (its KV cache is allocated by the first job); another process (torch) then takes nearly all free
# VRAM; a job must end with exactly one `error` event VRAM_OOM, the worker must stay healthy, and after the other
# process lets go the next job must complete. Finally SIGTERM must exit 0. Log: $OUT/vram_oom.log (via device.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
ORCD=${ORCD:-build-dev/src/cli/orcd}
vocab=$(cd .. && pwd)/shared/models/vocab/ggml-vocab-qwen2.5.gguf
[[ -f $vocab ]] || vocab=.carry/shared/models/vocab/ggml-vocab-qwen2.5.gguf
m=/tmp/orcd-oom; mkdir -p "$m"; rm -f "$m/release" "$m/hogging"
f=$m/qwen2.5-0.5b-Q4_K_M.gguf
[[ -f $f ]] || "$ORCD" synth --preset qwen2.5-0.5b --type Q4_K_M --vocab "$vocab" -o "$f" >/dev/null
fail() { echo "FAIL: $*"; kill -TERM "$pid" 2>/dev/null; [[ -n ${hog:-} ]] && kill "$hog" 2>/dev/null; exit 1; }

"$ORCD" serve -m "$f" --device cuda --port 0 -c 32768 2>"$m/serve.log" &
pid=$!
for _ in $(seq 1 120); do grep -q "ready" "$m/serve.log" && break; sleep 0.5; done
url=$(grep -o 'http://[^ ]*' "$m/serve.log" | head -1)
[[ -n $url ]] || fail "server did not become ready: $(tail -5 "$m/serve.log")"
echo "server ready at $url; /health: $(curl -s "$url/health" | head -c 300)"

python3 - "$m" <<'PY' &
import os, sys, time, torch
d = sys.argv[1]
free, total = torch.cuda.mem_get_info()
hog = torch.empty(free - (48 << 20), dtype=torch.uint8, device="cuda")   # leave 48 MiB: less than any KV cache here
print(f"hog: took {hog.numel() / 2**30:.2f} GiB of {free / 2**30:.2f} GiB free", flush=True)
open(os.path.join(d, "hogging"), "w").close()
while not os.path.exists(os.path.join(d, "release")):
    time.sleep(0.1)
del hog
torch.cuda.empty_cache()
print("hog: released", flush=True)
PY
hog=$!
for _ in $(seq 1 200); do [[ -f $m/hogging ]] && break; sleep 0.2; done
[[ -f $m/hogging ]] || fail "the VRAM hog did not start"

job() {  # job_id -> the SSE stream
  curl -s -N "$url/execute" -H 'Content-Type: application/json' \
    -d "{\"job_id\":\"$1\",\"prompt\":\"The quick brown fox jumps over the lazy dog\",\"max_tokens\":8,\"temperature\":0}"
}
s1=$(job oom-1)
echo "--- job under memory pressure:"; echo "$s1" | grep -E '^event:' | tr '\n' ' '; echo
echo "$s1" | grep -A1 '^event: error' | head -2
[[ $(echo "$s1" | grep -c '^event: error') -eq 1 ]] || fail "expected exactly one error event"
echo "$s1" | grep -q '"code":"VRAM_OOM"' || fail "expected code VRAM_OOM"
echo "$s1" | grep -q '^event: end' && fail "an end event after the error"
h=$(curl -s -o /dev/null -w '%{http_code}' "$url/health")
[[ $h == 200 ]] || fail "/health answered $h after the OOM"
echo "/health after the OOM: 200 $(curl -s "$url/health" | head -c 200)"

touch "$m/release"; wait "$hog"
s2=$(job ok-2)
echo "--- job after the memory came back:"; echo "$s2" | grep -E '^event:' | tr '\n' ' '; echo
echo "$s2" | grep -q '^event: end' || fail "the job after the release did not end normally: $(echo "$s2" | tail -3)"
curl -s "$url/metrics" | grep -E '^worker_requests_total' 
kill -TERM "$pid"; wait "$pid"; rc=$?
[[ $rc -eq 0 ]] || fail "SIGTERM exit code $rc"
echo "PASS: VRAM_OOM ended the job, the worker stayed healthy, the next job completed, SIGTERM exit 0"
