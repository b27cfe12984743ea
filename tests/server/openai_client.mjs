// Drives a running `orcd serve` with the official OpenAI client (npm package `openai`), the way an application would.
// Usage: node openai_client.mjs BASE_URL MODEL_ID API_KEY CONTEXT_LENGTH [chat|nochat]
// "nochat": the model has no chat template; the chat endpoint must answer 400 chat_template instead.
// Exits 0 when every check passed; otherwise prints what failed (expected vs found) and exits 1.
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const [baseURL, modelId, apiKey, ctxArg, chatArg = 'chat'] = process.argv.slice(2);
if (!baseURL || !modelId || !apiKey || !ctxArg) {
  console.error('usage: node openai_client.mjs BASE_URL MODEL_ID API_KEY CONTEXT_LENGTH [chat|nochat]');
  process.exit(2);
}
const contextLength = Number(ctxArg);
// No retries: a 503 or a dropped stream must show up here, not be papered over.
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, maxRetries: 0, timeout: 60_000 });
const checks = [];

async function check(name, fn) {
  try {
    await fn();
    checks.push(name);
    console.log(`ok   ${name}`);
  } catch (e) {
    console.error(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
    process.exit(1);
  }
}

async function expectApiError(fn, status, { code, param, type } = {}) {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, `expected an OpenAI.APIError, found ${e}`);
    assert.equal(e.status, status, `HTTP status: expected ${status}, found ${e.status} (${e.message})`);
    if (code !== undefined) assert.equal(e.code, code, `error.code`);
    if (param !== undefined) assert.equal(e.param, param, `error.param`);
    if (type !== undefined) assert.equal(e.type, type, `error.type`);
    return e;
  }
  assert.fail(`expected HTTP ${status}, but the request succeeded`);
}

function checkUsage(usage, maxCompletion) {
  assert.ok(usage, 'usage is present');
  assert.ok(Number.isInteger(usage.prompt_tokens) && usage.prompt_tokens > 0, `prompt_tokens ${usage.prompt_tokens}`);
  assert.ok(usage.completion_tokens > 0 && usage.completion_tokens <= maxCompletion,
            `completion_tokens: expected 1..${maxCompletion}, found ${usage.completion_tokens}`);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens, 'total_tokens = prompt + completion');
}

// Greedy decoding (temperature 0) with a seed: the streamed and the whole answers must be the same text.
const sampling = { temperature: 0, seed: 7 };

await check('models.list', async () => {
  const page = await client.models.list();
  const ids = page.data.map((m) => m.id);
  assert.deepEqual(ids, [modelId]);
  const m = await client.models.retrieve(modelId);
  assert.equal(m.id, modelId);
  assert.equal(m.object, 'model');
});

let completionText;
await check('completions (whole)', async () => {
  const r = await client.completions.create({ model: modelId, prompt: 'The capital of France is', max_tokens: 12,
                                              ...sampling });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.model, modelId);
  assert.equal(r.choices.length, 1);
  assert.equal(typeof r.choices[0].text, 'string');
  assert.ok(['length', 'stop'].includes(r.choices[0].finish_reason), `finish_reason ${r.choices[0].finish_reason}`);
  checkUsage(r.usage, 12);
  completionText = r.choices[0].text;
});

await check('completions (stream, include_usage)', async () => {
  const stream = await client.completions.create({ model: modelId, prompt: 'The capital of France is', max_tokens: 12,
                                                   stream: true, stream_options: { include_usage: true },
                                                   ...sampling });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(chunks >= 2, `expected several chunks, found ${chunks}`);
  assert.equal(text, completionText, 'streamed text equals the whole response');
  assert.ok(['length', 'stop'].includes(finish), `finish_reason ${finish}`);
  checkUsage(usage, 12);
});

const hasChatTemplate = chatArg !== 'nochat';
let chatText;
const messages = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Say hello.' },
  { role: 'assistant', content: 'Hello.' },
  { role: 'user', content: [{ type: 'text', text: 'Again, please.' }] },
];
if (hasChatTemplate) {
  await check('chat.completions (whole)', async () => {
    const r = await client.chat.completions.create({ model: modelId, messages, max_tokens: 10, ...sampling });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(typeof r.choices[0].message.content, 'string');
    checkUsage(r.usage, 10);
    // The conversation went through the chat template: far more tokens than the bare message texts.
    assert.ok(r.usage.prompt_tokens > 15, `prompt_tokens through the template: ${r.usage.prompt_tokens}`);
    chatText = r.choices[0].message.content;
  });

  await check('chat.completions (stream)', async () => {
    const stream = await client.chat.completions.create({ model: modelId, messages, max_tokens: 10, stream: true,
                                                          stream_options: { include_usage: true }, ...sampling });
    let text = '';
    let role = null;
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        if (c.delta.role && role === null) role = c.delta.role;
        if (c.delta.content) text += c.delta.content;
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    assert.equal(role, 'assistant');
    assert.equal(text, chatText, 'streamed content equals the whole response');
    assert.ok(['length', 'stop'].includes(finish));
    checkUsage(usage, 10);
  });

  await check('chat.completions logprobs (whole and streamed agree; greedy picks the top one)', async () => {
    const req = { model: modelId, messages, max_tokens: 6, logprobs: true, top_logprobs: 3, ...sampling };
    const r = await client.chat.completions.create(req);
    const content = r.choices[0].logprobs.content;
    assert.ok(content.length >= 1 && content.length <= r.usage.completion_tokens, `${content.length} entries`);
    for (const t of content) {
      assert.ok(t.logprob <= 0, `logprob ${t.logprob}`);
      assert.equal(t.top_logprobs.length, 3);
      for (let k = 1; k < 3; ++k) assert.ok(t.top_logprobs[k - 1].logprob >= t.top_logprobs[k].logprob, 'top sorted');
      assert.equal(t.token, t.top_logprobs[0].token, 'temperature 0 picks the most likely token');
    }
    let streamed = [];
    for await (const chunk of await client.chat.completions.create({ ...req, stream: true })) {
      for (const c of chunk.choices) streamed = streamed.concat(c.logprobs?.content ?? []);
    }
    assert.deepEqual(streamed.map((t) => t.token), content.map((t) => t.token));
  });

  await check('chat.completions n=3 (choice i is seed + i; streamed per index = whole; usage sums the choices)',
              async () => {
    const req = { model: modelId, messages, max_tokens: 5, temperature: 1, seed: 11 };
    const r = await client.chat.completions.create({ ...req, n: 3 });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
    let completion = 0;
    for (let i = 0; i < 3; ++i) {
      const alone = await client.chat.completions.create({ ...req, seed: 11 + i });
      assert.equal(r.choices[i].message.content, alone.choices[0].message.content, `choice ${i} = seed ${11 + i}`);
      assert.equal(r.usage.prompt_tokens, alone.usage.prompt_tokens, 'the prompt counts once');
      completion += alone.usage.completion_tokens;
    }
    assert.equal(r.usage.completion_tokens, completion, 'completion tokens summed over the choices');
    const texts = ['', '', ''];
    const finishes = [0, 0, 0];
    let usage = null;
    const stream = await client.chat.completions.create({ ...req, n: 3, stream: true,
                                                          stream_options: { include_usage: true } });
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        texts[c.index] += c.delta?.content ?? '';
        if (c.finish_reason) ++finishes[c.index];
      }
    }
    assert.deepEqual(texts, r.choices.map((c) => c.message.content));
    assert.deepEqual(finishes, [1, 1, 1]);
    assert.deepEqual(usage, r.usage);
    await expectApiError(() => client.chat.completions.create({ ...req, n: 17 }), 400, { param: 'n' });
  });
} else {
  await check('chat.completions without a chat template -> 400 chat_template', () =>
    expectApiError(() => client.chat.completions.create({ model: modelId, messages, max_tokens: 10 }), 400,
                   { code: 'chat_template', param: 'messages' }));
}

await check('completions logprobs N (the legacy shape)', async () => {
  const r = await client.completions.create({ model: modelId, prompt: 'The capital of France is', max_tokens: 5,
                                              logprobs: 2, ...sampling });
  const lp = r.choices[0].logprobs;
  assert.equal(lp.tokens.length, lp.token_logprobs.length);
  assert.equal(lp.tokens.length, lp.top_logprobs.length);
  assert.ok(lp.tokens.length >= 1 && lp.tokens.length <= r.usage.completion_tokens);
  for (const top of lp.top_logprobs) assert.ok(Object.keys(top).length >= 1 && Object.keys(top).length <= 2);
  assert.equal(lp.text_offset[0], 0);
});

await check('errors: an unsupported parameter -> 400 naming it', () =>
  expectApiError(() => client.completions.create({ model: modelId, prompt: 'x', suffix: 'y' }), 400,
                 { param: 'suffix', type: 'invalid_request_error' }));

await check('errors: unknown model -> 404 model_not_found', () =>
  expectApiError(() => client.completions.create({ model: 'no-such-model', prompt: 'x', max_tokens: 1 }), 404,
                 { code: 'model_not_found', param: 'model', type: 'invalid_request_error' }));

await check('errors: temperature out of range -> 400 naming the parameter', () =>
  expectApiError(() => client.completions.create({ model: modelId, prompt: 'x', max_tokens: 1, temperature: 5 }), 400,
                 { param: 'temperature', type: 'invalid_request_error' }));

await check('errors: max_tokens beyond the context -> 400', () =>
  expectApiError(() => client.completions.create({ model: modelId, prompt: 'x', max_tokens: contextLength + 1 }),
                 400, { param: 'max_tokens' }));

await check('errors: prompt + max_tokens beyond the context -> 400 context_length_exceeded', () =>
  expectApiError(() => client.completions.create({ model: modelId, prompt: 'hello hello hello',
                                                   max_tokens: contextLength }),
                 400, { code: 'context_length_exceeded' }));

await check('errors: empty messages -> 400', () =>
  expectApiError(() => client.chat.completions.create({ model: modelId, messages: [] }), 400, { param: 'messages' }));

await check('errors: wrong API key -> 401', () => {
  const bad = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: `${apiKey}-wrong`, maxRetries: 0 });
  return expectApiError(() => bad.models.list(), 401, { code: 'invalid_api_key' });
});

console.log(JSON.stringify({ passed: checks.length }));
