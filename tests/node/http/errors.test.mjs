// Bad requests through the official `openai` client: each must come back as
// an OpenAI error object that the SDK maps to its typed error (status, class,
// and a message and `param` naming the offending field). Also: a full queue
// (429 RateLimitError) and --api-key (401 AuthenticationError).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  MODEL, MAX_MODEL_LEN, OpenAI, collect, expectApiError, golden, startServer,
} from './lib/harness.mjs';

const C0 = golden().cases[0];
const completion = (extra) => ({ model: MODEL, prompt: C0.prompt, max_tokens: 4, ...extra });
const chat = (extra) => ({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4, ...extra });

// Checks a BadRequestError's body: an OpenAI error object naming `field`.
function checkNames(e, field, { param = field, message = new RegExp(`\\b${field}\\b`) } = {}) {
  assert.match(e.message, message, `the message names ${field}: ${e.message}`);
  assert.equal(typeof e.error?.message, 'string', 'error.message is a string');
  assert.equal(typeof e.error?.type, 'string', 'error.type is a string');
  assert.ok('param' in e.error && 'code' in e.error, `error has param and code: ${JSON.stringify(e.error)}`);
  if (param !== undefined) assert.equal(e.param, param, `param of ${JSON.stringify(e.error)}`);
}

describe('bad parameters', () => {
  let server;
  let client;
  before(async () => {
    server = await startServer();
    client = server.client();
  });
  after(async () => {
    if (!server) return;  // it did not start: `before` already failed
    const { code } = await server.stop();
    assert.equal(code, 0, `exit code; stderr: ${server.stderr}`);
  });

  const badRequests = [
    ['completions: temperature -1', 'temperature', (c) => c.completions.create(completion({ temperature: -1 }))],
    ['chat: temperature -1', 'temperature', (c) => c.chat.completions.create(chat({ temperature: -1 }))],
    ['completions: top_p 2', 'top_p', (c) => c.completions.create(completion({ top_p: 2 }))],
    ['chat: top_p 2', 'top_p', (c) => c.chat.completions.create(chat({ top_p: 2 }))],
    ['completions: n 0', 'n', (c) => c.completions.create(completion({ n: 0 }))],
    ['chat: n 0', 'n', (c) => c.chat.completions.create(chat({ n: 0 }))],
    ['completions: logprobs 21', 'logprobs', (c) => c.completions.create(completion({ logprobs: 21 }))],
    ['chat: top_logprobs 21', 'top_logprobs', (c) => c.chat.completions.create(chat({ logprobs: true, top_logprobs: 21 }))],
    ['completions: 17 stop strings', 'stop',
      (c) => c.completions.create(completion({ stop: Array.from({ length: 17 }, (_, i) => `s${i}`) }))],
    ['chat: 17 stop strings', 'stop',
      (c) => c.chat.completions.create(chat({ stop: Array.from({ length: 17 }, (_, i) => `s${i}`) }))],
    ['chat: empty messages', 'messages', (c) => c.chat.completions.create(chat({ messages: [] }))],
    ['chat: response_format json_object', 'response_format',
      (c) => c.chat.completions.create(chat({ response_format: { type: 'json_object' } }))],
    ['completions: max_tokens 0', 'max_tokens', (c) => c.completions.create(completion({ max_tokens: 0 }))],
    ['completions: streaming, temperature -1', 'temperature',
      (c) => c.completions.create(completion({ temperature: -1, stream: true }))],
  ];
  for (const [name, field, send] of badRequests) {
    test(`${name} -> 400 BadRequestError naming ${field}`, async () => {
      const e = await expectApiError(send(client), OpenAI.BadRequestError, 400);
      checkNames(e, field);
      assert.equal(e.type, 'invalid_request_error');
    });
  }

  test('prompt + max_tokens over the context length -> 400 naming the length and max_tokens', async () => {
    // 5 prompt tokens + 510 = 515 > 512.
    const over = MAX_MODEL_LEN - C0.prompt_token_ids.length + 3;
    const e = await expectApiError(client.completions.create(completion({ max_tokens: over })), OpenAI.BadRequestError, 400);
    assert.match(e.message, new RegExp(`\\b${MAX_MODEL_LEN}\\b`), e.message);
    assert.match(e.message, /max_tokens/, e.message);
    assert.match(e.message, new RegExp(`\\b${C0.prompt_token_ids.length + over}\\b`), `names the requested total: ${e.message}`);
    // Exactly at the limit is fine.
    const ok = await client.completions.create(completion({ max_tokens: MAX_MODEL_LEN - C0.prompt_token_ids.length, ignore_eos: true, temperature: 0 }));
    assert.equal(ok.usage.completion_tokens, MAX_MODEL_LEN - C0.prompt_token_ids.length);
    // A prompt that alone is too long (600 token ids).
    const long = Array.from({ length: 600 }, () => 300);
    const e2 = await expectApiError(client.completions.create(completion({ prompt: long })), OpenAI.BadRequestError, 400);
    assert.match(e2.message, new RegExp(`\\b${MAX_MODEL_LEN}\\b`), e2.message);
  });

  test('unknown model -> 404 NotFoundError (completions, chat, streaming, models.retrieve)', async () => {
    for (const send of [
      () => client.completions.create(completion({ model: 'no-such-model' })),
      () => client.completions.create(completion({ model: 'no-such-model', stream: true })),
      () => client.chat.completions.create(chat({ model: 'no-such-model' })),
      () => client.models.retrieve('no-such-model'),
    ]) {
      const e = await expectApiError(send(), OpenAI.NotFoundError, 404);
      assert.match(e.message, /no-such-model/, e.message);
    }
  });

  test('the server still answers correctly after the errors', async () => {
    const r = await client.completions.create({ model: MODEL, prompt: C0.prompt, temperature: 0, max_tokens: 128, ignore_eos: true });
    assert.equal(r.choices[0].text, C0.greedy_text);
  });
});

describe('a full queue: 429 RateLimitError', () => {
  let server;
  let client;
  before(async () => {
    server = await startServer(['--max-num-seqs', '1', '--max-num-queued-requests', '1']);
    client = server.client();
  });
  after(async () => {
    if (!server) return;  // it did not start: `before` already failed
    const { code } = await server.stop();
    assert.equal(code, 0, `exit code; stderr: ${server.stderr}`);
  });

  test('with one running and one waiting, further requests get 429 with Retry-After', async () => {
    const N = 8;
    const long = { model: MODEL, prompt: C0.prompt, temperature: 0, max_tokens: 480, ignore_eos: true, stream: true };
    const results = await Promise.allSettled(Array.from({ length: N }, async () => {
      const chunks = await collect(await client.completions.create({ ...long, stream_options: { include_usage: true } }));
      return chunks[chunks.length - 1].usage.completion_tokens;
    }));
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected');
    for (const r of refused) {
      assert.ok(r.reason instanceof OpenAI.RateLimitError, `expected RateLimitError, got ${r.reason?.constructor?.name}: ${r.reason?.message}`);
      assert.equal(r.reason.status, 429);
      assert.equal(r.reason.headers?.get('retry-after'), '1');
    }
    assert.ok(refused.length >= 1, `none of ${N} simultaneous requests was refused`);
    assert.ok(ok.length >= 1, 'the first request is served');
    for (const r of ok) assert.equal(r.value, 480);
  });
});

describe('--api-key', () => {
  let server;
  before(async () => {
    server = await startServer(['--api-key', 'sekret-123']);
  });
  after(async () => {
    if (!server) return;  // it did not start: `before` already failed
    const { code } = await server.stop();
    assert.equal(code, 0, `exit code; stderr: ${server.stderr}`);
  });

  test('without the right bearer token: 401 AuthenticationError; with it: 200', async () => {
    const wrong = server.client({ apiKey: 'wrong-key' });
    const params = { model: MODEL, prompt: C0.prompt, temperature: 0, max_tokens: 8, ignore_eos: true };
    await expectApiError(wrong.completions.create(params), OpenAI.AuthenticationError, 401);
    await expectApiError(wrong.chat.completions.create(chat({})), OpenAI.AuthenticationError, 401);
    await expectApiError(wrong.models.list(), OpenAI.AuthenticationError, 401);
    // No Authorization header at all.
    const res = await fetch(`${server.baseURL}/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params),
    });
    assert.equal(res.status, 401);
    const body = await res.json();
    assert.equal(typeof body.error?.message, 'string');
    const right = server.client({ apiKey: 'sekret-123' });
    const r = await right.completions.create(params);
    assert.equal(r.usage.completion_tokens, 8);
    assert.ok(C0.greedy_text.startsWith(r.choices[0].text));
  });
});
