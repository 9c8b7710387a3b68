// /v1/completions and /v1/models through the official `openai` client against
// the real `kaon serve` (stories260k). Expected values come from the model's
// golden file (llama2.c run.c outputs) and Hugging Face's tokenizer, never
// from kaon itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  MODEL, MAX_MODEL_LEN, OpenAI, collect, expectApiError, golden, referenceDecode, startServer,
} from './lib/harness.mjs';

const G = golden();
const C0 = G.cases[0];  // "Once upon a time"
let server;
let client;

before(async () => {
  server = await startServer();
  client = server.client();
});
after(() => server?.kill());

const greedy = (extra = {}) => ({
  model: MODEL, prompt: C0.prompt, temperature: 0, max_tokens: 128, ignore_eos: true, ...extra,
});

// The text of the first `n` greedy tokens, as golden.json defines greedy_text:
// decode(prompt + generated) minus decode(prompt), skipping special tokens.
async function greedyPrefix(c, n) {
  const full = await referenceDecode([...c.prompt_token_ids, ...c.greedy_token_ids.slice(0, n)], true);
  const prompt = await referenceDecode(c.prompt_token_ids, true);
  assert.ok(full.startsWith(prompt));
  return full.slice(prompt.length);
}

test('non-streaming greedy completion returns the golden text and usage', async () => {
  const r = await client.completions.create(greedy());
  assert.equal(r.object, 'text_completion');
  assert.equal(r.model, MODEL);
  assert.equal(typeof r.id, 'string');
  assert.ok(r.id.length > 0);
  assert.equal(typeof r.created, 'number');
  assert.equal(r.choices.length, 1);
  const [ch] = r.choices;
  assert.equal(ch.index, 0);
  assert.equal(ch.text, C0.greedy_text);
  assert.equal(ch.finish_reason, 'length');
  assert.equal(ch.logprobs, null);
  assert.deepEqual(
    { prompt_tokens: r.usage.prompt_tokens, completion_tokens: r.usage.completion_tokens, total_tokens: r.usage.total_tokens },
    { prompt_tokens: C0.prompt_token_ids.length, completion_tokens: 128, total_tokens: C0.prompt_token_ids.length + 128 });
});

test('streaming greedy completion: chunks concatenate to the golden text', async () => {
  const chunks = await collect(await client.completions.create(greedy({ stream: true })));
  assert.ok(chunks.length >= 2, `only ${chunks.length} chunks`);
  const ids = new Set(chunks.map((c) => c.id));
  assert.equal(ids.size, 1, 'every chunk of one stream carries the same id');
  let text = '';
  const finishes = [];
  for (const c of chunks) {
    assert.equal(c.object, 'text_completion');
    assert.equal(c.model, MODEL);
    assert.ok(c.usage == null, `usage without include_usage: ${JSON.stringify(c.usage)}`);
    for (const ch of c.choices) {
      assert.equal(ch.index, 0);
      text += ch.text;
      if (ch.finish_reason != null) finishes.push(ch.finish_reason);
    }
  }
  assert.equal(text, C0.greedy_text);
  assert.deepEqual(finishes, ['length']);
  const last = chunks[chunks.length - 1];
  assert.equal(last.choices[0]?.finish_reason, 'length', 'the finish reason arrives in the last chunk');
});

test('max_tokens is a token count: the first 7 golden tokens', async () => {
  const r = await client.completions.create(greedy({ max_tokens: 7 }));
  assert.equal(r.choices[0].text, await greedyPrefix(C0, 7));
  assert.equal(r.usage.completion_tokens, 7);
  assert.equal(r.choices[0].finish_reason, 'length');
});

test('a prompt given as token ids (BOS included) gives the golden text', async () => {
  const r = await client.completions.create(greedy({ prompt: C0.prompt_token_ids, max_tokens: 20 }));
  assert.equal(r.choices[0].text, await greedyPrefix(C0, 20));
  assert.equal(r.usage.prompt_tokens, C0.prompt_token_ids.length);
});

test('stream_options.include_usage: a final chunk with empty choices and the non-streaming usage', async () => {
  const params = greedy({ max_tokens: 40 });
  const plain = await client.completions.create(params);
  const chunks = await collect(await client.completions.create({ ...params, stream: true, stream_options: { include_usage: true } }));
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.ok(last.usage, 'last chunk has usage');
  assert.equal(last.usage.prompt_tokens, C0.prompt_token_ids.length);
  assert.equal(last.usage.completion_tokens, 40);
  assert.equal(last.usage.total_tokens, C0.prompt_token_ids.length + 40);
  assert.equal(last.usage.prompt_tokens, plain.usage.prompt_tokens);
  assert.equal(last.usage.completion_tokens, plain.usage.completion_tokens);
  for (const c of chunks.slice(0, -1)) {
    assert.ok(c.usage == null, `usage only in the last chunk, got ${JSON.stringify(c.usage)}`);
    assert.equal(c.choices.length, 1);
  }
  assert.equal(chunks.slice(0, -1).map((c) => c.choices[0].text).join(''), plain.choices[0].text);
  assert.equal(plain.choices[0].text, await greedyPrefix(C0, 40));
});

test('n: 3 with temperature 1 and a seed: three choices, indexes 0..2, reproducible when streamed', async () => {
  const params = { model: MODEL, prompt: C0.prompt, n: 3, temperature: 1, seed: 1234, max_tokens: 48, ignore_eos: true };
  const r = await client.completions.create(params);
  assert.equal(r.choices.length, 3);
  assert.deepEqual(r.choices.map((c) => c.index).sort(), [0, 1, 2]);
  for (const c of r.choices) {
    assert.equal(c.finish_reason, 'length');
    assert.equal(typeof c.text, 'string');
    assert.ok(c.text.length > 0);
  }
  assert.equal(r.usage.prompt_tokens, C0.prompt_token_ids.length, 'the prompt is counted once');
  assert.equal(r.usage.completion_tokens, 3 * 48);
  const texts = r.choices.slice().sort((a, b) => a.index - b.index).map((c) => c.text);
  assert.ok(new Set(texts).size > 1, `three sampled choices of 48 tokens are not all identical: ${JSON.stringify(texts)}`);

  const chunks = await collect(await client.completions.create({ ...params, stream: true }));
  const streamed = ['', '', ''];
  const finish = [null, null, null];
  for (const c of chunks) {
    for (const ch of c.choices) {
      assert.ok(ch.index >= 0 && ch.index < 3, `index ${ch.index}`);
      streamed[ch.index] += ch.text;
      if (ch.finish_reason != null) {
        assert.equal(finish[ch.index], null, `choice ${ch.index} finished twice`);
        finish[ch.index] = ch.finish_reason;
      }
    }
  }
  assert.deepEqual(finish, ['length', 'length', 'length']);
  assert.deepEqual(streamed, texts, 'same seed, same choices, streamed or not');
});

test('seed: the same seed twice gives the same text; different seeds give different texts', async () => {
  const base = { model: MODEL, prompt: C0.prompt, temperature: 1, max_tokens: 48, ignore_eos: true };
  const a = await client.completions.create({ ...base, seed: 42 });
  const b = await client.completions.create({ ...base, seed: 42 });
  assert.equal(a.choices[0].text, b.choices[0].text);
  const texts = [];
  for (const seed of [1, 2, 3, 4, 5]) texts.push((await client.completions.create({ ...base, seed })).choices[0].text);
  assert.ok(new Set(texts).size >= 2, `five seeds gave one text: ${JSON.stringify(texts[0])}`);
  // temperature 0 ignores the seed.
  const g1 = await client.completions.create(greedy({ max_tokens: 30, seed: 1 }));
  const g2 = await client.completions.create(greedy({ max_tokens: 30, seed: 2 }));
  assert.equal(g1.choices[0].text, await greedyPrefix(C0, 30));
  assert.equal(g2.choices[0].text, g1.choices[0].text);
});

test('logprobs: 2: arrays of the right length and shape, consistent with golden logits', async () => {
  const N = 8;
  const r = await client.completions.create(greedy({ max_tokens: N, logprobs: 2 }));
  const ch = r.choices[0];
  assert.equal(ch.text, await greedyPrefix(C0, N));
  const lp = ch.logprobs;
  assert.ok(lp, 'logprobs object present');
  assert.equal(lp.tokens.length, N);
  assert.equal(lp.token_logprobs.length, N);
  assert.equal(lp.top_logprobs.length, N);
  assert.equal(lp.text_offset.length, N);
  assert.equal(lp.text_offset[0], 0);
  for (let i = 0; i < N; ++i) {
    assert.equal(typeof lp.tokens[i], 'string');
    const v = lp.token_logprobs[i];
    assert.ok(typeof v === 'number' && v <= 0 && v > -100, `token_logprobs[${i}] = ${v}`);
    const top = lp.top_logprobs[i];
    const keys = Object.keys(top);
    // k alternatives, plus the sampled token when it is not among them (as vLLM).
    assert.ok(keys.length >= 1 && keys.length <= 3, `top_logprobs[${i}] has ${keys.length} entries`);
    assert.ok(keys.includes(lp.tokens[i]), `top_logprobs[${i}] lists the sampled token`);
    assert.ok(Math.abs(top[lp.tokens[i]] - v) < 1e-6);
    // Greedy picks the most likely token.
    assert.ok(Math.max(...Object.values(top)) <= v + 1e-6, `greedy token ${i} is the top one`);
    if (i > 0) assert.ok(lp.text_offset[i] >= lp.text_offset[i - 1], 'text_offset is non-decreasing');
    assert.ok(lp.text_offset[i] <= ch.text.length);
  }
  // The golden file has run.c's top-5 logits of the first steps: logprob
  // differences equal logit differences, and the top-1 probability is at most
  // 1 / sum(exp(logit_j - logit_1)) over those five.
  for (const { step, top5 } of C0.top5_logits) {
    const top = lp.top_logprobs[step];
    const t1 = await referenceDecode([top5[0].token_id]);
    const t2 = await referenceDecode([top5[1].token_id]);
    assert.ok(t1 in top && t2 in top, `step ${step}: ${JSON.stringify([t1, t2])} in ${JSON.stringify(top)}`);
    const want = top5[0].logit - top5[1].logit;
    assert.ok(Math.abs(top[t1] - top[t2] - want) < 2e-3, `step ${step}: logprob gap ${top[t1] - top[t2]} vs logit gap ${want}`);
    const bound = -Math.log(top5.reduce((s, e) => s + Math.exp(e.logit - top5[0].logit), 0));
    assert.ok(lp.token_logprobs[step] <= bound + 1e-4, `step ${step}: logprob ${lp.token_logprobs[step]} > bound ${bound}`);
    assert.ok(lp.token_logprobs[step] > bound - 0.5, `step ${step}: logprob ${lp.token_logprobs[step]} far below ${bound}`);
  }

  // Streamed: the same tokens and logprobs, split over the chunks.
  const chunks = await collect(await client.completions.create(greedy({ max_tokens: N, logprobs: 2, stream: true })));
  const tokens = [];
  const values = [];
  for (const c of chunks) {
    for (const x of c.choices) {
      if (!x.logprobs) continue;
      tokens.push(...x.logprobs.tokens);
      values.push(...x.logprobs.token_logprobs);
      assert.equal(x.logprobs.top_logprobs.length, x.logprobs.tokens.length);
    }
  }
  assert.deepEqual(tokens, lp.tokens);
  values.forEach((v, i) => assert.ok(Math.abs(v - lp.token_logprobs[i]) < 1e-5, `streamed logprob ${i}`));

  // logprobs: 0 lists the sampled token only.
  const z = await client.completions.create(greedy({ max_tokens: 4, logprobs: 0 }));
  assert.equal(z.choices[0].logprobs.tokens.length, 4);
  for (const t of z.choices[0].logprobs.top_logprobs) assert.ok(Object.keys(t).length <= 1, JSON.stringify(t));
});

test('stop strings: text ends before the first match, finish_reason "stop"', async () => {
  const stop = 'Lily';
  const at = C0.greedy_text.indexOf(stop);
  assert.ok(at > 0, 'the stop string occurs in the golden text');
  const r = await client.completions.create(greedy({ stop }));
  assert.equal(r.choices[0].text, C0.greedy_text.slice(0, at));
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.choices[0].stop_reason, stop, 'vLLM reports the matched stop string');
  assert.ok(r.usage.completion_tokens < 128);

  const chunks = await collect(await client.completions.create(greedy({ stop, stream: true })));
  const text = chunks.flatMap((c) => c.choices).map((c) => c.text).join('');
  assert.equal(text, C0.greedy_text.slice(0, at));
  const fin = chunks.flatMap((c) => c.choices).filter((c) => c.finish_reason != null);
  assert.deepEqual(fin.map((c) => c.finish_reason), ['stop']);

  // Several stop strings: the earliest match in the text wins.
  const list = ['park', 'girl'];
  const first = Math.min(...list.map((s) => C0.greedy_text.indexOf(s)));
  const m = await client.completions.create(greedy({ stop: list }));
  assert.equal(m.choices[0].text, C0.greedy_text.slice(0, first));
  assert.equal(m.choices[0].finish_reason, 'stop');

  // include_stop_str_in_output keeps the match.
  const inc = await client.completions.create(greedy({ stop, include_stop_str_in_output: true }));
  assert.equal(inc.choices[0].text, C0.greedy_text.slice(0, at + stop.length));
  assert.equal(inc.choices[0].finish_reason, 'stop');
});

test('a prompt of several strings gives one choice per prompt, in order', async () => {
  const [a, b] = [G.cases[0], G.cases[1]];
  const r = await client.completions.create({ model: MODEL, prompt: [a.prompt, b.prompt], temperature: 0, max_tokens: 16, ignore_eos: true });
  assert.equal(r.choices.length, 2);
  const byIndex = r.choices.slice().sort((x, y) => x.index - y.index);
  assert.equal(byIndex[0].text, await greedyPrefix(a, 16));
  assert.equal(byIndex[1].text, await greedyPrefix(b, 16));
});

test('models.list() and models.retrieve()', async () => {
  const page = await client.models.list();
  const models = [];
  for await (const m of page) models.push(m);
  assert.equal(models.length, 1);
  assert.equal(models[0].id, MODEL);
  assert.equal(models[0].object, 'model');
  assert.equal(typeof models[0].owned_by, 'string');
  assert.equal(typeof models[0].created, 'number');
  const one = await client.models.retrieve(MODEL);
  assert.equal(one.id, MODEL);
  assert.equal(one.object, 'model');
  if ('max_model_len' in one) assert.equal(one.max_model_len, MAX_MODEL_LEN);
  await expectApiError(client.models.retrieve('no-such-model'), OpenAI.NotFoundError, 404);
});

test('SIGTERM: the server exits with code 0', async () => {
  const { code, signal } = await server.stop('SIGTERM');
  assert.equal(signal, null, `killed by ${signal}`);
  assert.equal(code, 0, `exit code ${code}; stderr: ${server.stderr}`);
});
