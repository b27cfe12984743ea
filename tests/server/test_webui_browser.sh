#!/usr/bin/env bash
# The chat page in headless Chromium against a real `orcd serve --device cpu` (tiny synth model): send a message,
# see it stream, stop a second answer. The screenshot is kept next to the test's build files (a CI artifact).
# usage: test_webui_browser.sh ORCD SHARED_DIR OUT_DIR
set -uo pipefail
orcd=$1 shared=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$shared/models/vocab/ggml-vocab-qwen2.5.gguf" ] || { echo "SKIP: $shared is absent"; exit 0; }
[ -d "$here/node_modules/puppeteer-core" ] || { echo "SKIP: puppeteer-core is not installed (scripts/setup.sh)"; exit 0; }
mkdir -p "$out"
model=$out/tiny.gguf
"$orcd" synth --preset qwen2.5-tiny --type Q8_0 --vocab "$shared/models/vocab/ggml-vocab-qwen2.5.gguf" -o "$model" >/dev/null || exit 1
log=$out/serve.log
"$orcd" serve -m "$model" --device cpu --port 0 -t 2 2>"$log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 1 200); do grep -q " ready " "$log" && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$log" | head -1)
[ -n "$url" ] || { echo "the worker did not start:"; cat "$log"; exit 1; }
# The policy headers come with the page.
headers=$(curl -s -D - -o /dev/null "$url/")
grep -qi "^content-security-policy: default-src 'none'" <<<"$headers" || { echo "no CSP header:"; echo "$headers"; exit 1; }
timeout 180 node "$here/webui_browser.mjs" "$url" "$out/webui.png"
