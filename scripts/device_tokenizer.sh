#!/usr/bin/env bash
# Device step `tokenizer`: our tokenizer against the Hugging Face `tokenizers` package on >= 10,000 generated strings,
# and the committed chat-template fixtures re-rendered with the device's jinja2 (they must be byte-identical).
set -uo pipefail
status=0
echo "-- tokenizers comparison (qwen)"
python3 tests/reference/tokenizer_compare.py --orcd build-dev/src/cli/orcd --shared .carry/shared --only qwen \
  --report "$OUT/tok_qwen.json" || status=1
echo "-- tokenizers comparison (llama2 SentencePiece reference file)"
python3 tests/reference/tokenizer_compare.py --orcd build-dev/src/cli/orcd --shared .carry/shared --only llama2 \
  --report "$OUT/tok_llama2.json" || echo "(llama2 reference: see report; the shared file is not Llama 2's vocabulary)"
echo "-- chat templates re-rendered with this machine's jinja2"
python3 -c 'import jinja2; print("jinja2", jinja2.__version__)'
python3 tests/reference/render_chat_templates.py --shared .carry/shared --out /tmp/chat_templates.json &&
  cmp /tmp/chat_templates.json tests/tokenizer/fixtures/chat_templates.json && echo "chat templates: fixtures identical" ||
  { echo "chat templates: fixtures DIFFER"; status=1; }
exit $status
