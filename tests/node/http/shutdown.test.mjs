// Graceful shutdown (--shutdown-timeout): on SIGTERM the server stops
// accepting, lets in-flight requests finish (up to the timeout) and exits 0.
// Streams are read with node:http so that the final `data: [DONE]` is seen.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { MODEL, golden, sleep, startServer, tryConnect, waitFor, withTimeout } from './lib/harness.mjs';

const C0 = golden().cases[0];
const servers = [];
after(() => { for (const s of servers) s.kill(); });

async function start(args) {
  const s = await startServer(args);
  servers.push(s);
  return s;
}

// A streaming completion on its own connection. `started` resolves at the
// first SSE event; `done` with {status, body, error} when the response ends
// (error: how the connection failed, if it did).
function streamRequest(port, params) {
  const body = JSON.stringify(params);
  let onStart;
  const started = new Promise((r) => { onStart = r; });
  const state = { ended: false };
  const done = new Promise((resolve) => {
    let text = '';
    let status = 0;
    const fail = (e) => { state.ended = true; onStart(); resolve({ status, body: text, error: e.code || e.message }); };
    const req = http.request({
      host: '127.0.0.1', port, method: 'POST', path: '/v1/completions', agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      status = res.statusCode;
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
        if (text.includes('data: ')) onStart();
      });
      res.on('end', () => { state.ended = true; resolve({ status, body: text, error: null }); });
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end(body);
  });
  return { started, done, state };
}

// Parses an SSE completion stream: text, finish reasons, usage, [DONE].
function parseStream(body) {
  const events = body.split('\n\n').map((e) => e.trim()).filter((e) => e);
  const out = { text: '', finishes: [], usage: null, done: false, events: events.length };
  for (const [i, e] of events.entries()) {
    assert.ok(e.startsWith('data: '), `event ${i} is a data line: ${JSON.stringify(e.slice(0, 100))}`);
    const data = e.slice(6);
    if (data === '[DONE]') {
      assert.equal(i, events.length - 1, '[DONE] is the last event');
      out.done = true;
      continue;
    }
    const chunk = JSON.parse(data);
    assert.ok(!chunk.error, `error event: ${data}`);
    for (const ch of chunk.choices) {
      out.text += ch.text;
      if (ch.finish_reason != null) out.finishes.push(ch.finish_reason);
    }
    if (chunk.usage) out.usage = chunk.usage;
  }
  return out;
}

test('an idle server exits 0 promptly on SIGTERM (no waiting out --shutdown-timeout)', async () => {
  const server = await start(['--shutdown-timeout', '10']);
  const r = await fetch(`${server.origin}/health`);
  assert.equal(r.status, 200);
  const t0 = Date.now();
  const { code, signal } = await server.stop('SIGTERM', 8000);
  assert.equal(signal, null);
  assert.equal(code, 0, `stderr: ${server.stderr}`);
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
});

test('SIGTERM with streams in flight: they finish with every token and [DONE], new connections are refused, exit 0', async () => {
  const server = await start(['--shutdown-timeout', '10']);
  const MAX = 300;
  const K = 12;
  const params = { model: MODEL, prompt: C0.prompt, temperature: 0, max_tokens: MAX, ignore_eos: true, stream: true, stream_options: { include_usage: true } };
  const reqs = Array.from({ length: K }, () => streamRequest(server.port, params));
  await withTimeout(Promise.all(reqs.map((r) => r.started)), 10_000, 'streams did not start');
  const inFlight = reqs.filter((r) => !r.state.ended).length;
  assert.ok(inFlight > 0, 'precondition: some streams are still in flight when SIGTERM is sent');

  const t0 = Date.now();
  server.proc.kill('SIGTERM');
  // The listener closes: a new connection is refused.
  await waitFor(async () => (await tryConnect(server.port)) === 'ECONNREFUSED',
    { timeoutMs: 3000, intervalMs: 20, what: 'new connections to be refused after SIGTERM' });

  const results = await withTimeout(Promise.all(reqs.map((r) => r.done)), 15_000, 'in-flight streams did not finish');
  for (const [i, r] of results.entries()) {
    assert.equal(r.error, null, `stream ${i} was cut off (${r.body.length} bytes received)`);
    assert.equal(r.status, 200, `stream ${i}`);
    const s = parseStream(r.body);
    assert.ok(s.done, `stream ${i} ends with data: [DONE] (${s.events} events, last: ${JSON.stringify(r.body.slice(-200))})`);
    assert.deepEqual(s.finishes, ['length'], `stream ${i} finish reasons`);
    assert.equal(s.usage?.completion_tokens, MAX, `stream ${i} usage`);
    assert.ok(s.text.startsWith(C0.greedy_text), `stream ${i} text starts with the golden text`);
  }
  const texts = new Set(results.map((r) => parseStream(r.body).text));
  assert.equal(texts.size, 1, 'identical greedy requests give identical texts');

  const { code, signal } = await withTimeout(server.exit, 15_000, 'the server did not exit after its streams finished');
  assert.equal(signal, null);
  assert.equal(code, 0, `stderr: ${server.stderr}`);
  assert.ok(Date.now() - t0 < 12_000, `exit took ${Date.now() - t0} ms`);
});

test('a client that stops reading does not hold the server past --shutdown-timeout', async () => {
  const server = await start(['--shutdown-timeout', '2']);
  // 16 choices with 20 alternatives each make far more data than socket
  // buffers hold, and this client never reads it.
  const body = JSON.stringify({ model: MODEL, prompt: C0.prompt, temperature: 1, seed: 1, n: 16, logprobs: 20, max_tokens: 450, ignore_eos: true, stream: true });
  const sock = net.connect({ port: server.port, host: '127.0.0.1' });
  sock.on('error', () => {});
  await new Promise((r) => sock.once('connect', r));
  sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  await new Promise((r) => sock.once('data', r));
  sock.pause();
  await sleep(300);
  const t0 = Date.now();
  server.proc.kill('SIGTERM');
  const { code, signal } = await withTimeout(server.exit, 10_000, 'the server did not exit within 10 s of SIGTERM (timeout 2 s)');
  const took = Date.now() - t0;
  sock.destroy();
  assert.equal(signal, null);
  assert.equal(code, 0, `stderr: ${server.stderr}`);
  assert.ok(took < 7000, `exit took ${took} ms with --shutdown-timeout 2`);
});
