// /v1/chat/completions through the official `openai` client against the real
// `kaon serve` with the llama2 chat template. The reference prompt is the
// template rendered by @huggingface/jinja and tokenized by Hugging Face's
// tokenizer; a completion of those token ids must give the same text as chat.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  MODEL, collect, referenceEncode, referenceRenderChat, startServer,
} from './lib/harness.mjs';

let server;
let client;

before(async () => {
  server = await startServer();
  client = server.client();
});
after(() => server?.kill());

const MESSAGES = [{ role: 'user', content: 'Once upon a time' }];
const CONVERSATIONS = [
  MESSAGES,
  [{ role: 'system', content: 'You tell short stories.' }, { role: 'user', content: 'Tell me about a cat.' }],
  [
    { role: 'user', content: 'Hello there' },
    { role: 'assistant', content: 'Hi! What story?' },
    { role: 'user', content: 'A dog and a ball.' },
  ],
];

async function referencePromptIds(messages) {
  return referenceEncode(referenceRenderChat(messages), false);
}

const greedy = (extra = {}) => ({ model: MODEL, messages: MESSAGES, temperature: 0, max_tokens: 32, ignore_eos: true, ...extra });

test('non-streaming chat: shape, usage, and the same text as a completion of the rendered template', async () => {
  for (const messages of CONVERSATIONS) {
    const ids = await referencePromptIds(messages);
    const r = await client.chat.completions.create(greedy({ messages }));
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, MODEL);
    assert.equal(r.choices.length, 1);
    const [ch] = r.choices;
    assert.equal(ch.index, 0);
    assert.equal(ch.message.role, 'assistant');
    assert.equal(typeof ch.message.content, 'string');
    assert.ok(ch.message.content.length > 0);
    assert.equal(ch.finish_reason, 'length');
    assert.equal(r.usage.prompt_tokens, ids.length, `prompt tokens of ${JSON.stringify(referenceRenderChat(messages))}`);
    assert.equal(r.usage.completion_tokens, 32);
    assert.equal(r.usage.total_tokens, ids.length + 32);
    const c = await client.completions.create({ model: MODEL, prompt: ids, temperature: 0, max_tokens: 32, ignore_eos: true });
    assert.equal(ch.message.content, c.choices[0].text, 'chat == completion of the reference-rendered prompt');
  }
});

test('streaming chat: role first, deltas concatenate to the non-streaming content, usage last', async () => {
  const plain = await client.chat.completions.create(greedy());
  const chunks = await collect(await client.chat.completions.create(greedy({ stream: true, stream_options: { include_usage: true } })));
  assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1, 'one id per stream');
  for (const c of chunks) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.model, MODEL);
  }
  const withChoices = chunks.filter((c) => c.choices.length > 0);
  assert.equal(withChoices[0].choices[0].delta.role, 'assistant', 'the first delta carries the role');
  const content = withChoices.map((c) => c.choices[0].delta.content ?? '').join('');
  assert.equal(content, plain.choices[0].message.content);
  const finishes = withChoices.map((c) => c.choices[0].finish_reason).filter((f) => f != null);
  assert.deepEqual(finishes, ['length']);
  assert.equal(withChoices[withChoices.length - 1].choices[0].finish_reason, 'length');
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.prompt_tokens, plain.usage.prompt_tokens);
  assert.equal(last.usage.completion_tokens, 32);
  assert.equal(last.usage.total_tokens, plain.usage.total_tokens);
  for (const c of chunks.slice(0, -1)) assert.ok(c.usage == null, 'usage only in the last chunk');
});

test('logprobs + top_logprobs: one entry per token, sorted alternatives, greedy picks the top one', async () => {
  const r = await client.chat.completions.create(greedy({ max_tokens: 12, logprobs: true, top_logprobs: 3 }));
  const entries = r.choices[0].logprobs?.content;
  assert.ok(Array.isArray(entries), 'choices[0].logprobs.content is a list');
  assert.equal(entries.length, 12);
  assert.equal(r.usage.completion_tokens, 12);
  for (const [i, e] of entries.entries()) {
    assert.equal(typeof e.token, 'string');
    assert.ok(e.logprob <= 0 && e.logprob > -100, `logprob ${e.logprob}`);
    assert.ok(Array.isArray(e.bytes));
    if (!e.token.includes('\uFFFD')) assert.deepEqual(e.bytes, [...Buffer.from(e.token, 'utf8')], `bytes of token ${i}`);
    assert.equal(e.top_logprobs.length, 3, `entry ${i} has 3 alternatives`);
    for (let j = 1; j < 3; ++j) assert.ok(e.top_logprobs[j - 1].logprob >= e.top_logprobs[j].logprob, 'sorted, most likely first');
    for (const a of e.top_logprobs) {
      assert.equal(typeof a.token, 'string');
      assert.ok(a.logprob <= 0);
    }
    assert.ok(Math.abs(e.top_logprobs[0].logprob - e.logprob) < 1e-6, `greedy token ${i} is the most likely`);
    const p = e.top_logprobs.reduce((s, a) => s + Math.exp(a.logprob), 0);
    assert.ok(p <= 1 + 1e-4, `alternatives' probabilities sum to ${p} > 1`);
  }

  // logprobs without top_logprobs: no alternatives.
  const bare = await client.chat.completions.create(greedy({ max_tokens: 4, logprobs: true }));
  assert.equal(bare.choices[0].logprobs.content.length, 4);
  for (const e of bare.choices[0].logprobs.content) assert.deepEqual(e.top_logprobs, []);
  // No logprobs asked: null.
  const none = await client.chat.completions.create(greedy({ max_tokens: 4 }));
  assert.equal(none.choices[0].logprobs ?? null, null);

  // Streamed: the same tokens, spread over the chunks.
  const chunks = await collect(await client.chat.completions.create(greedy({ max_tokens: 12, logprobs: true, top_logprobs: 3, stream: true })));
  const streamed = chunks.flatMap((c) => c.choices).flatMap((ch) => ch.logprobs?.content ?? []);
  assert.deepEqual(streamed.map((e) => e.token), entries.map((e) => e.token));
  streamed.forEach((e, i) => assert.ok(Math.abs(e.logprob - entries[i].logprob) < 1e-5));
});

test('n: 3 with temperature 1 and a seed: three choices, indexes 0..2', async () => {
  const params = { model: MODEL, messages: MESSAGES, n: 3, temperature: 1, seed: 7, max_tokens: 40, ignore_eos: true };
  const r = await client.chat.completions.create(params);
  assert.equal(r.choices.length, 3);
  assert.deepEqual(r.choices.map((c) => c.index).sort(), [0, 1, 2]);
  for (const c of r.choices) {
    assert.equal(c.message.role, 'assistant');
    assert.equal(c.finish_reason, 'length');
  }
  const prompt = (await referencePromptIds(MESSAGES)).length;
  assert.equal(r.usage.prompt_tokens, prompt);
  assert.equal(r.usage.completion_tokens, 3 * 40);
  const texts = r.choices.slice().sort((a, b) => a.index - b.index).map((c) => c.message.content);
  assert.ok(new Set(texts).size > 1, `three sampled choices are not all identical: ${JSON.stringify(texts)}`);

  const chunks = await collect(await client.chat.completions.create({ ...params, stream: true }));
  const streamed = ['', '', ''];
  const finish = [null, null, null];
  for (const ch of chunks.flatMap((c) => c.choices)) {
    streamed[ch.index] += ch.delta.content ?? '';
    if (ch.finish_reason != null) finish[ch.index] = ch.finish_reason;
  }
  assert.deepEqual(finish, ['length', 'length', 'length']);
  assert.deepEqual(streamed, texts, 'same seed, same choices, streamed or not');
});

test('finish_reason "length" at max_tokens and max_completion_tokens', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: MESSAGES, temperature: 0, max_tokens: 5 });
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 5);
  const m = await client.chat.completions.create({ model: MODEL, messages: MESSAGES, temperature: 0, max_completion_tokens: 6 });
  assert.equal(m.choices[0].finish_reason, 'length');
  assert.equal(m.usage.completion_tokens, 6);
  // The 5-token answer is a prefix of the 6-token one (both greedy).
  assert.ok(m.choices[0].message.content.startsWith(r.choices[0].message.content));
});

test('SIGTERM: the server exits with code 0', async () => {
  const { code, signal } = await server.stop('SIGTERM');
  assert.equal(signal, null);
  assert.equal(code, 0, `stderr: ${server.stderr}`);
});
