// Issue 17's end-to-end check: every schema of the corpus (tests/grammar/schemas) through /v1/chat/completions
// response_format with the official OpenAI client, against `orcd serve --schema-max-string N` on a random-weight
// synth model; each reply must be complete (finish_reason "stop"), parse, and validate with Debian's
// python3-jsonschema (tests/grammar/schema_validation.py, Draft 2020-12 with its format checker). Random weights are
// the hard case: nothing in the model helps.
// Usage: node openai_schema_corpus.mjs BASE_URL MODEL_ID PYTHON SCHEMA_DIR [SEEDS]
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';

const [baseURL, model, python, schemaDir, seedsArg = '1'] = process.argv.slice(2);
if (!baseURL || !model || !python || !schemaDir) {
  console.error('usage: node openai_schema_corpus.mjs BASE_URL MODEL_ID PYTHON SCHEMA_DIR [SEEDS]');
  process.exit(2);
}
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: 'none', maxRetries: 0, timeout: 300_000 });
const validatorDir = path.join(path.dirname(schemaDir), '.');

// All replies of a schema validated in one Python process.
function invalidReplies(schema, texts) {
  const code = 'import json, sys\n' +
               `sys.path.insert(0, ${JSON.stringify(validatorDir)})\n` +
               'from schema_validation import validator\n' +
               'd = json.load(sys.stdin)\n' +
               'v = validator(d["schema"])\n' +
               'bad = []\n' +
               'for t in d["texts"]:\n' +
               '    try:\n' +
               '        errs = list(v.iter_errors(json.loads(t)))\n' +
               '        if errs: bad.append(t + ": " + errs[0].message)\n' +
               '    except ValueError as e:\n' +
               '        bad.append(t + ": not JSON: " + str(e))\n' +
               'print(json.dumps(bad))\n';
  const p = spawnSync(python, ['-c', code], { input: JSON.stringify({ schema, texts }), encoding: 'utf8' });
  assert.equal(p.status, 0, p.stderr);
  return JSON.parse(p.stdout);
}

let runs = 0, failures = 0;
for (const file of readdirSync(schemaDir).filter((f) => f.endsWith('.json')).sort()) {
  const c = JSON.parse(readFileSync(path.join(schemaDir, file), 'utf8'));
  const texts = [];
  for (let seed = 1; seed <= Number(seedsArg); ++seed) {
    ++runs;
    // Random weights nest schema-free arrays and objects without end: logit_bias favours ']' (60) and '}' (92) of
    // the Qwen vocabulary, the same for every schema, so that such structures close within max_tokens. +4 was
    // enough until the CPU kernels' rounding changed (2026-12-04): json_object seed 2 then ran to 384 tokens still
    // open; +6 closes every corpus schema with replies still nested several levels deep.
    const r = await client.chat.completions.create({
      model, max_tokens: 384, temperature: 1, seed, logit_bias: { 60: 6, 92: 6 },
      messages: [{ role: 'user', content: `Answer in JSON: ${c.description}` }],
      response_format: { type: 'json_schema', json_schema: { name: 'corpus', schema: c.schema, strict: true } },
    });
    const choice = r.choices[0];
    if (choice.finish_reason !== 'stop') {
      ++failures;
      console.error(`FAIL ${file} seed ${seed}: incomplete (${choice.finish_reason}): ${JSON.stringify(choice.message.content)}`);
      continue;
    }
    texts.push(choice.message.content);
  }
  const bad = invalidReplies(c.schema, texts);
  failures += bad.length;
  for (const b of bad) console.error(`FAIL ${file}: ${b}`);
  if (bad.length === 0) console.log(`ok   ${file}: ${texts.map((t) => JSON.stringify(t).slice(0, 60)).join(' | ')}`);
}
console.log(`${runs} runs, ${failures} failures`);
process.exit(failures || runs === 0 ? 1 : 0);
