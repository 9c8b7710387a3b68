// Acceptance: every golden case of models/stories260k/golden.json (llama2.c
// run.c greedy outputs) through /v1/completions with the official client,
// streamed and not, one at a time and all at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MODEL, collect, golden, startServer } from './lib/harness.mjs';

const G = golden();
let server;
let client;

before(async () => {
  server = await startServer();
  client = server.client();
});
after(() => server?.kill());

const params = (c, extra = {}) => ({
  model: MODEL, prompt: c.prompt, temperature: 0, max_tokens: c.max_tokens, ignore_eos: true, ...extra,
});

async function streamedText(c, extra = {}) {
  const chunks = await collect(await client.completions.create(params(c, { ...extra, stream: true, stream_options: { include_usage: true } })));
  const choices = chunks.flatMap((x) => x.choices);
  const finishes = choices.map((x) => x.finish_reason).filter((f) => f != null);
  return { text: choices.map((x) => x.text).join(''), finishes, usage: chunks[chunks.length - 1].usage };
}

test('the golden file has cases', () => {
  assert.ok(G.cases.length >= 6, `${G.cases.length} cases`);
  for (const c of G.cases) assert.equal(c.greedy_token_ids.length, c.max_tokens);
});

for (const [i, c] of G.cases.entries()) {
  test(`golden case ${i} (${JSON.stringify(c.prompt).slice(0, 40)}): non-streaming`, async () => {
    const r = await client.completions.create(params(c));
    assert.equal(r.choices[0].text, c.greedy_text);
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.prompt_tokens, c.prompt_token_ids.length);
    assert.equal(r.usage.completion_tokens, c.max_tokens);
  });

  test(`golden case ${i}: streaming`, async () => {
    const s = await streamedText(c);
    assert.equal(s.text, c.greedy_text);
    assert.deepEqual(s.finishes, ['length']);
    assert.equal(s.usage?.prompt_tokens, c.prompt_token_ids.length);
    assert.equal(s.usage?.completion_tokens, c.max_tokens);
  });
}

test('all golden cases at once (batched), streamed and not, and as token-id prompts', async () => {
  const jobs = [];
  for (const c of G.cases) {
    jobs.push(client.completions.create(params(c)).then((r) => ({ c, text: r.choices[0].text, how: 'non-streaming' })));
    jobs.push(streamedText(c).then((s) => ({ c, text: s.text, how: 'streaming' })));
    jobs.push(client.completions.create(params(c, { prompt: c.prompt_token_ids }))
      .then((r) => ({ c, text: r.choices[0].text, how: 'token ids' })));
  }
  for (const { c, text, how } of await Promise.all(jobs)) {
    assert.equal(text, c.greedy_text, `${how}: ${JSON.stringify(c.prompt)}`);
  }
});

test('SIGTERM: the server exits with code 0', async () => {
  const { code, signal } = await server.stop('SIGTERM');
  assert.equal(signal, null);
  assert.equal(code, 0, `stderr: ${server.stderr}`);
});
