// Tool calling and structured output through the official OpenAI client (npm package `openai`) against a running
// `orcd serve` on a random-weight synth model served with --chat-template-file TEMPLATE.
// Usage: node openai_tools.mjs BASE_URL MODEL_ID FORMAT PYTHON
//   FORMAT: hermes | llama3 | mistral, the tool-call format of the template the server renders.
// Random weights never write a tool call on their own, so the model's reply is scripted: the request carries a GBNF
// `grammar` (llama-server's extension field) that admits exactly one string, which the model must then produce
// token by token. Structured-output replies are validated with Python's jsonschema (PYTHON, Debian's python3).
// Exits 0 when every check passed; otherwise prints what failed and exits 1.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import OpenAI from 'openai';

const [baseURL, model, format, python] = process.argv.slice(2);
if (!baseURL || !model || !['hermes', 'llama3', 'mistral'].includes(format) || !python) {
  console.error('usage: node openai_tools.mjs BASE_URL MODEL_ID hermes|llama3|mistral PYTHON');
  process.exit(2);
}
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: 'none', maxRetries: 0, timeout: 120_000 });

async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${format}: ${name}`);
  } catch (e) {
    console.error(`FAIL ${format}: ${name}: ${e && e.stack ? e.stack : e}`);
    process.exit(1);
  }
}

// A GBNF grammar whose only sentence is `text`: the model's reply, scripted.
function script(text) {
  const esc = text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  return `root ::= "${esc}"`;
}

const tools = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Oslo'] },
                                                days: { type: 'integer' } },
                  required: ['city'] },
  },
}, {
  type: 'function',
  function: { name: 'get_time', description: 'The time now',
              parameters: { type: 'object', properties: {}, additionalProperties: false } },
}];

// The call as each family writes it.
const scriptedCall = {
  hermes: 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}\n</tool_call>',
  llama3: '{"name": "get_weather", "parameters": {"city": "Paris", "days": 2}}',
  mistral: '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}]',
}[format];
const expectedContent = format === 'hermes' ? 'Let me check.' : null;
const user = { role: 'user', content: 'What is the weather in Paris for two days?' };

function checkCall(call) {
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris', days: 2 });
  assert.ok(typeof call.id === 'string' && call.id.length > 0, `id: ${call.id}`);
  if (format === 'mistral') assert.match(call.id, /^[a-zA-Z0-9]{9}$/, 'Mistral templates need 9-character ids');
}

let firstCall;
await check('a scripted call comes back as tool_calls', async () => {
  const r = await client.chat.completions.create({ model, messages: [user], tools, max_tokens: 200,
                                                   grammar: script(scriptedCall) });
  const choice = r.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.role, 'assistant');
  assert.equal(choice.message.content, expectedContent);
  assert.equal(choice.message.tool_calls.length, 1);
  checkCall(choice.message.tool_calls[0]);
  firstCall = choice.message.tool_calls[0];
});

await check('the same call streamed', async () => {
  const stream = await client.chat.completions.create({ model, messages: [user], tools, max_tokens: 200, stream: true,
                                                        grammar: script(scriptedCall) });
  let content = '';
  const calls = [];
  let finish = null;
  for await (const chunk of stream) {
    const ch = chunk.choices[0];
    if (!ch) continue;
    if (ch.delta.content) content += ch.delta.content;
    for (const tc of ch.delta.tool_calls ?? []) {
      calls[tc.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } };
      const c = calls[tc.index];
      if (tc.id) c.id = tc.id;
      if (tc.function?.name) c.function.name += tc.function.name;
      if (tc.function?.arguments) c.function.arguments += tc.function.arguments;
    }
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(content.trim(), expectedContent ?? '');
  assert.equal(calls.length, 1);
  checkCall(calls[0]);
});

await check('the tool result goes back through the template and the reply is content', async () => {
  const messages = [user, { role: 'assistant', content: null, tool_calls: [firstCall] },
                    { role: 'tool', tool_call_id: firstCall.id, content: '{"temperature": 21}' }];
  const r = await client.chat.completions.create({ model, messages, tools, max_tokens: 50,
                                                   grammar: script('It is 21 degrees in Paris.') });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.choices[0].message.content, 'It is 21 degrees in Paris.');
  assert.equal(r.choices[0].message.tool_calls, undefined);
});

await check('a call that does not parse is returned as content', async () => {
  const broken = { hermes: '<tool_call>\n{"name": "get_weather", "arguments": {"city": }\n</tool_call>',
                   llama3: '{"name": "get_weather", "parameters": {"city": "Paris"',
                   mistral: '[TOOL_CALLS][{"name": "get_weather", "arguments": ' }[format];
  const r = await client.chat.completions.create({ model, messages: [user], tools, max_tokens: 200,
                                                   grammar: script(broken) });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.choices[0].message.content, broken);
  assert.equal(r.choices[0].message.tool_calls, undefined);
});

await check('tool_choice "required" and a named function constrain the reply to a valid call', async () => {
  for (const tool_choice of ['required', { type: 'function', function: { name: 'get_weather' } }]) {
    for (let seed = 1; seed <= 3; ++seed) {
      const r = await client.chat.completions.create({ model, messages: [user], tools, tool_choice, max_tokens: 300,
                                                       temperature: 1, seed });
      const choice = r.choices[0];
      assert.equal(choice.finish_reason, 'tool_calls', JSON.stringify(choice));
      const call = choice.message.tool_calls[0];
      if (typeof tool_choice === 'object') assert.equal(call.function.name, 'get_weather');
      const args = JSON.parse(call.function.arguments);
      if (call.function.name === 'get_weather') {
        assert.ok(['Paris', 'Oslo'].includes(args.city), `city ${args.city}`);
        if ('days' in args) assert.ok(Number.isInteger(args.days), `days ${args.days}`);
      } else {
        assert.equal(call.function.name, 'get_time');
        assert.deepEqual(args, {});
      }
    }
  }
});

await check('tool_choice "none" leaves the reply as content', async () => {
  const r = await client.chat.completions.create({ model, messages: [user], tools, tool_choice: 'none',
                                                   max_tokens: 200, grammar: script(scriptedCall) });
  assert.equal(r.choices[0].message.content, scriptedCall);
  assert.equal(r.choices[0].finish_reason, 'stop');
});

// Structured output: schemas through response_format, random sampling; each reply must parse and validate.
const schemas = [
  { type: 'object', properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer' } },
    required: ['name', 'age'], additionalProperties: false },
  { type: 'array', items: { enum: ['red', 'green', 'blue'] }, minItems: 1, maxItems: 4 },
  { type: 'object', properties: { when: { type: 'string', format: 'date' }, id: { type: 'string', format: 'uuid' } },
    required: ['when', 'id'] },
  { anyOf: [{ type: 'boolean' }, { type: 'null' }, { type: 'number' }] },
  { $defs: { point: { type: 'object', properties: { x: { type: 'integer' }, y: { type: 'integer' } },
                      required: ['x', 'y'] } },
    type: 'object', properties: { path: { type: 'array', items: { $ref: '#/$defs/point' }, maxItems: 3 } },
    required: ['path'] },
  { type: 'string', pattern: '^[a-z]{2,5}-[0-9]{3}$' },
];

function validate(schema, text) {
  const code = 'import json, sys, jsonschema\n' +
               'd = json.load(sys.stdin)\n' +
               'jsonschema.validate(json.loads(d["text"]), d["schema"], format_checker=jsonschema.FormatChecker())\n';
  const p = spawnSync(python, ['-c', code], { input: JSON.stringify({ schema, text }), encoding: 'utf8' });
  assert.equal(p.status, 0, `jsonschema rejected ${JSON.stringify(text)} for ${JSON.stringify(schema)}:\n${p.stderr}`);
}

await check('response_format json_schema: every reply parses and validates', async () => {
  for (const [i, schema] of schemas.entries()) {
    for (const stream of [false, true]) {
      const req = { model, messages: [user], max_tokens: 400, temperature: 1, seed: 100 + i,
                    response_format: { type: 'json_schema', json_schema: { name: `s${i}`, schema, strict: true } } };
      let text = '';
      let finish;
      if (stream) {
        for await (const chunk of await client.chat.completions.create({ ...req, stream: true })) {
          text += chunk.choices[0]?.delta?.content ?? '';
          finish = chunk.choices[0]?.finish_reason ?? finish;
        }
      } else {
        const r = await client.chat.completions.create(req);
        text = r.choices[0].message.content;
        finish = r.choices[0].finish_reason;
      }
      assert.equal(finish, 'stop', `schema ${i}: the grammar must complete (${JSON.stringify(text)})`);
      validate(schema, text);
    }
  }
});

await check('response_format json_object gives an object', async () => {
  // Strings in a json_object are unbounded, and random weights seldom close one: a reply cut by max_tokens is
  // allowed (it must still start as an object), as long as some replies complete.
  let complete = 0;
  // logit_bias favours '"' (1) and '}' (92) of the Qwen vocabulary, so strings and objects close sooner.
  for (let seed = 1; seed <= 10; ++seed) {
    const r = await client.chat.completions.create({ model, messages: [user], max_tokens: 120, temperature: 1, seed,
                                                     logit_bias: { 1: 8, 92: 8 },
                                                     response_format: { type: 'json_object' } });
    const text = r.choices[0].message.content;
    if (r.choices[0].finish_reason === 'length') {
      assert.match(text, /^\{/);
      continue;
    }
    const v = JSON.parse(text);
    assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), `found ${text}`);
    ++complete;
  }
  assert.ok(complete > 0, 'no json_object reply completed');
});

await check('a schema keyword the compiler lacks is a 400 naming it', async () => {
  try {
    await client.chat.completions.create({ model, messages: [user], max_tokens: 10, response_format: {
      type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { n: { multipleOf: 3 } } } } } });
    assert.fail('expected a 400');
  } catch (e) {
    assert.ok(e instanceof OpenAI.BadRequestError, `found ${e}`);
    assert.equal(e.param, 'response_format');
    assert.match(e.message, /#\/properties\/n\/multipleOf/);
  }
});
