// 1,000 concurrent streaming completions through the official `openai`
// client (one connection each) against `kaon serve --max-num-seqs 64`: all
// must complete with the right tokens, and /metrics must show the batch limit
// held and nothing left running afterwards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { MODEL, golden, parseMetric, referenceDecode, startServer, waitFor } from './lib/harness.mjs';

const N = Number(process.env.KAON_HTTP_CONCURRENCY || 1000);
const MAX_TOKENS = 8;
const MAX_NUM_SEQS = 64;
const cases = golden().cases;

let server;
let client;
const samples = [];        // /metrics readings taken during the run
const sampleErrors = [];

before(async () => {
  server = await startServer(['--max-num-seqs', String(MAX_NUM_SEQS)]);
  client = server.client({ timeout: 120_000 });
});
after(() => server?.kill());

// Polls /metrics on its own connection from a worker thread until stopped.
function startSampler(port) {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const http = require('node:http');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let go = true;
    const texts = [];
    const errors = [];
    parentPort.on('message', () => { go = false; });
    const get = () => new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: workerData.port, path: '/metrics', agent }, (res) => {
        let t = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { t += d; });
        res.on('end', () => (res.statusCode === 200 ? resolve(t) : reject(new Error('HTTP ' + res.statusCode + ': ' + t.slice(0, 200)))));
      }).on('error', reject);
    });
    (async () => {
      let first = true;
      while (go) {
        try { texts.push(await get()); } catch (e) { errors.push(e.message); }
        if (first) { parentPort.postMessage({ ready: true }); first = false; }
        await new Promise((r) => setTimeout(r, 10));
      }
      agent.destroy();
      parentPort.postMessage({ texts, errors });
    })();`;
  const worker = new Worker(code, { eval: true, workerData: { port } });
  worker.unref();  // never what keeps a failed test's process alive
  let onReady;
  const ready = new Promise((r) => { onReady = r; });
  const result = new Promise((resolve, reject) => {
    worker.on('message', (m) => {
      if (m.ready) onReady();
      else resolve(m);
    });
    worker.on('error', reject);
  });
  return {
    ready,
    async stop() {
      worker.postMessage('stop');
      const { texts, errors } = await result;
      await worker.terminate();
      const samples = [];
      for (const t of texts) {
        try {
          samples.push({ running: parseMetric(t, 'kaon:num_requests_running'), waiting: parseMetric(t, 'kaon:num_requests_waiting') });
        } catch (e) {
          errors.push(e.message);
        }
      }
      return { samples, errors };
    },
  };
}

async function expectedText(c) {
  const full = await referenceDecode([...c.prompt_token_ids, ...c.greedy_token_ids.slice(0, MAX_TOKENS)], true);
  return full.slice((await referenceDecode(c.prompt_token_ids, true)).length);
}

test(`${N} concurrent streaming completions all complete with ${MAX_TOKENS} tokens`, async (t) => {
  const expected = await Promise.all(cases.map(expectedText));
  // /metrics is read from a worker thread: this thread's event loop is busy
  // with the 1,000 streams and would read it too rarely.
  const sampler = startSampler(server.port);
  await sampler.ready;
  const t0 = performance.now();
  const results = await Promise.allSettled(Array.from({ length: N }, async (_, i) => {
    const k = i % cases.length;
    const stream = await client.completions.create({
      model: MODEL, prompt: cases[k].prompt, temperature: 0, max_tokens: MAX_TOKENS, ignore_eos: true,
      stream: true, stream_options: { include_usage: true },
    });
    let text = '';
    const finishes = [];
    let usage = null;
    for await (const c of stream) {
      for (const ch of c.choices) {
        text += ch.text;
        if (ch.finish_reason != null) finishes.push(ch.finish_reason);
      }
      if (c.usage) usage = c.usage;
    }
    return { k, text, finishes, usage };
  }));
  const seconds = (performance.now() - t0) / 1000;
  const got = await sampler.stop();
  samples.push(...got.samples);
  sampleErrors.push(...got.errors);
  t.diagnostic(`${N} streams in ${seconds.toFixed(2)} s (${(N * MAX_TOKENS / seconds).toFixed(0)} generated tokens/s)`);

  const failed = results.filter((r) => r.status === 'rejected');
  assert.equal(failed.length, 0,
    `${failed.length} of ${N} requests failed; first: ${failed.slice(0, 3).map((r) => `${r.reason?.constructor?.name}: ${r.reason?.message}`).join(' | ')}`);
  let wrong = 0;
  let firstWrong = null;
  for (const { value: v } of results) {
    const ok = v.usage?.completion_tokens === MAX_TOKENS && v.usage?.prompt_tokens === cases[v.k].prompt_token_ids.length &&
      v.finishes.length === 1 && v.finishes[0] === 'length' && v.text === expected[v.k];
    if (!ok) {
      wrong += 1;
      firstWrong ??= { ...v, expected: expected[v.k] };
    }
  }
  assert.equal(wrong, 0, `${wrong} of ${N} streams were wrong; first: ${JSON.stringify(firstWrong)}`);
  assert.ok(seconds < 60, `took ${seconds.toFixed(1)} s`);
});

test(`/metrics: at most ${MAX_NUM_SEQS} running during the run, nothing running or waiting after`, async (t) => {
  assert.ok(samples.length > 0, `no /metrics reading succeeded during the run: ${sampleErrors[0]}`);
  const maxRunning = Math.max(...samples.map((s) => s.running));
  const maxWaiting = Math.max(...samples.map((s) => s.waiting));
  t.diagnostic(`${samples.length} samples: max running ${maxRunning}, max waiting ${maxWaiting}`);
  assert.ok(maxRunning <= MAX_NUM_SEQS, `${maxRunning} running > --max-num-seqs ${MAX_NUM_SEQS}`);
  // The readings were live, and the engine batched: some saw several running.
  assert.ok(maxRunning > 1, `no reading during the run saw more than ${maxRunning} request running (${samples.length} samples)`);
  await waitFor(async () => (await server.metric('kaon:num_requests_running')) === 0 &&
      (await server.metric('kaon:num_requests_waiting')) === 0,
  { timeoutMs: 5000, what: 'num_requests_running and num_requests_waiting to return to 0' });
});

test('SIGTERM: the server exits with code 0', async () => {
  const { code, signal } = await server.stop('SIGTERM');
  assert.equal(signal, null);
  assert.equal(code, 0, `stderr: ${server.stderr}`);
});
