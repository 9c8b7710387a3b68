// Clients that go away mid-stream: the official client aborting through an
// AbortController, and raw TCP sockets destroyed after a few bytes. The
// server must free what those requests held (/metrics: nothing running, KV
// cache usage back to its baseline), stop generating for them, and keep
// serving correct output.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { MODEL, golden, startServer, waitFor } from './lib/harness.mjs';

const C0 = golden().cases[0];
const MAX_TOKENS = 450;
const LONG = { model: MODEL, prompt: C0.prompt, temperature: 0, max_tokens: MAX_TOKENS, ignore_eos: true, stream: true };

let server;
let client;
let baseline = null;   // metrics before any abort
let baselineError = null;
let requested = 0;     // tokens the aborted requests asked for

before(async () => {
  server = await startServer();
  client = server.client();
  // One finished request first, so that whatever a completed request leaves
  // behind (e.g. prefix-cache blocks) is part of the baseline.
  await client.completions.create({ ...LONG, stream: false, max_tokens: 16 });
  try {
    baseline = {
      running: await server.metric('kaon:num_requests_running'),
      waiting: await server.metric('kaon:num_requests_waiting'),
      kv: await server.metric('kaon:kv_cache_usage_perc'),
      generated: await server.metric('kaon:generation_tokens_total'),
    };
  } catch (e) {
    baselineError = e;
  }
});
after(() => server?.kill());

// Starts a streaming request on a raw socket; resolves once `bytes` bytes of
// the response arrived (0: right after sending), then destroys the socket.
function rawAbort(bytes) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify(LONG);
    const s = net.connect({ port: server.port, host: '127.0.0.1' });
    let got = '';
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`no ${bytes} response bytes within 10 s; got ${JSON.stringify(got)}`)); }, 10_000);
    s.on('error', (e) => { clearTimeout(timer); reject(e); });
    s.on('connect', () => {
      s.write(`POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      if (bytes === 0) {
        clearTimeout(timer);
        s.destroy();
        resolve('');
      }
    });
    s.on('data', (d) => {
      got += d.toString('latin1');
      if (bytes > 0 && got.length >= bytes && got.includes('data: ')) {
        clearTimeout(timer);
        s.destroy();
        resolve(got);
      }
    });
  });
}

test('an AbortController aborts streaming requests mid-stream', async () => {
  const runs = Array.from({ length: 4 }, async () => {
    const ac = new AbortController();
    const stream = await client.completions.create(LONG, { signal: ac.signal });
    let chunks = 0;
    let finished = false;
    for await (const c of stream) {
      chunks += 1;
      if (c.choices.some((x) => x.finish_reason != null)) finished = true;
      if (chunks === 3) ac.abort();
    }
    return { chunks, finished };
  });
  requested += 4 * MAX_TOKENS;
  const results = await Promise.all(runs);
  for (const r of results) assert.ok(r.chunks >= 3, `got ${r.chunks} chunks before the abort`);
  assert.ok(results.some((r) => !r.finished), `every aborted stream still reached its end: ${JSON.stringify(results)}`);
});

test('raw sockets destroyed mid-stream, and right after sending the request', async () => {
  const heads = await Promise.all([rawAbort(400), rawAbort(2000), rawAbort(4000), rawAbort(0), rawAbort(0)]);
  requested += 5 * MAX_TOKENS;
  for (const h of heads.filter((x) => x)) {
    assert.match(h, /^HTTP\/1\.1 200 /, 'the stream had started');
    assert.match(h, /content-type: text\/event-stream/i);
  }
});

test('/metrics: nothing running or waiting, KV cache usage back to its baseline, generation stopped early', async (t) => {
  if (baselineError) throw new Error(`could not read the baseline metrics: ${baselineError.message}`);
  assert.equal(baseline.running, 0);
  assert.equal(baseline.waiting, 0);
  const settled = await waitFor(async () => {
    const m = {
      running: await server.metric('kaon:num_requests_running'),
      waiting: await server.metric('kaon:num_requests_waiting'),
      kv: await server.metric('kaon:kv_cache_usage_perc'),
    };
    return m.running === 0 && m.waiting === 0 && Math.abs(m.kv - baseline.kv) < 1e-9 ? m : false;
  }, { timeoutMs: 5000, what: `running 0, waiting 0, kv_cache_usage_perc back to ${baseline.kv}` });
  assert.equal(settled.running, 0);
  // Had the aborted requests kept going, they would have produced `requested` tokens.
  const generated = (await server.metric('kaon:generation_tokens_total')) - baseline.generated;
  t.diagnostic(`kv_cache_usage_perc baseline ${baseline.kv}; aborted requests generated ${generated} of ${requested} tokens asked for`);
  // The live counter saw at least the chunks the clients received (3 each for
  // the four SDK streams).
  assert.ok(generated >= 12, `generation_tokens_total went up by ${generated}`);
  assert.ok(generated < requested / 2,
    `aborted requests went on generating: ${generated} tokens for ${requested} requested`);
});

test('the server still serves a golden request correctly, streamed and not', async () => {
  let before = null;
  if (!baselineError) before = await server.metric('kaon:generation_tokens_total');
  const r = await client.completions.create({ ...LONG, stream: false, max_tokens: C0.max_tokens });
  assert.equal(r.choices[0].text, C0.greedy_text);
  const chunks = [];
  for await (const c of await client.completions.create({ ...LONG, max_tokens: C0.max_tokens })) chunks.push(c);
  assert.equal(chunks.flatMap((c) => c.choices).map((c) => c.text).join(''), C0.greedy_text);
  const health = await fetch(`${server.origin}/health`);
  assert.equal(health.status, 200);
  if (before !== null) {
    // Counted as they are generated: both requests are done, 128 tokens each.
    const after = await server.metric('kaon:generation_tokens_total');
    assert.equal(after - before, 2 * C0.max_tokens, 'generation_tokens_total counts the two golden requests');
  }
});

test('SIGTERM: the server exits with code 0', async () => {
  const { code, signal } = await server.stop('SIGTERM');
  assert.equal(signal, null);
  assert.equal(code, 0, `stderr: ${server.stderr}`);
});
