// Hostile load against a running `kaon serve`: attacker processes send, back
// to back, deeply nested bodies, many-key bodies at the body limit and chats
// whose rendering runs into the template budget (with DeepSeek-V3's template), while this process measures
// what a well-behaved client sees: GET /health and a 4-token completion.
// Targets (issue "No request can crash or stall the server"): /health p99
// ≤ 50 ms, completion p99 ≤ 150 ms, and the server stays up.
//
//   node bench/hostile_load.mjs PORT [SECONDS] [BODY_LIMIT_BYTES]
//
// bench/hostile_load.sh starts the server and runs this. Attackers are child
// processes so that building and sending their bodies does not delay the
// probes' event loop; `KAON_ATTACKER_NICE` (default 0) lowers their priority
// to model clients on other machines.
import { spawn } from 'node:child_process';
import http from 'node:http';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);

function post(port, path, body, agent) {
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: 'POST', agent,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      });
    req.on('error', (e) => resolve({ status: 0, body: String(e) }));
    req.end(body);
  });
}

function get(port, path, agent) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'GET', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode }));
    });
    req.on('error', (e) => resolve({ status: 0, body: String(e) }));
    req.end();
  });
}

// --- attacker mode ---------------------------------------------------------

function attackBody(kind, bodyLimit) {
  switch (kind) {
    case 'nested':  // a few tens of KB of brackets: crashed a recursive parser
      return JSON.stringify({ model: 'm' }).slice(0, -1) + ',"prompt":' + '['.repeat(40_000) + '}';
    case 'keys': {  // as many keys as fit in the body limit
      const parts = ['{"prompt":"x"'];
      let size = parts[0].length;
      for (let i = 0; size < bodyLimit - 32; ++i) {
        const p = `,"k${i}":0`;
        parts.push(p);
        size += p.length;
      }
      parts.push('}');
      return parts.join('');
    }
    case 'template': {  // system messages that DeepSeek-V3's template concatenates (quadratic)
      const messages = [];
      for (let i = 0; i < 9000; ++i) messages.push({ role: 'system', content: 'a'.repeat(1600) });
      messages.push({ role: 'user', content: 'hi' });
      return JSON.stringify({ messages, max_tokens: 1 });
    }
    default: throw new Error(`unknown attack ${kind}`);
  }
}

async function attacker(port, kind, bodyLimit, seconds) {
  const body = attackBody(kind, bodyLimit);
  const path = kind === 'template' ? '/v1/chat/completions' : '/v1/completions';
  const agent = new http.Agent({ keepAlive: false });
  const counts = {};
  const samples = {};  // the first error message for each status
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    const r = await post(port, path, body, agent);
    counts[r.status] = (counts[r.status] || 0) + 1;
    if (!(r.status in samples)) {
      let message = r.body;
      try { message = JSON.parse(r.body).error.message; } catch { /* not an error object */ }
      samples[r.status] = String(message).slice(0, 160);
    }
  }
  process.stdout.write(JSON.stringify({ kind, bytes: body.length, counts, samples }) + '\n');
}

// --- probe mode ------------------------------------------------------------

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function summary(name, ms, failures) {
  const s = [...ms].sort((a, b) => a - b);
  return { name, n: s.length, failures, p50_ms: +percentile(s, 50).toFixed(1), p99_ms: +percentile(s, 99).toFixed(1),
           max_ms: +s[s.length - 1].toFixed(1) };
}

async function probe(port, seconds, bodyLimit) {
  const nice = Number(process.env.KAON_ATTACKER_NICE || 0);
  const kinds = ['nested', 'keys', 'template', 'template'];
  const children = kinds.map((kind) => {
    const args = [self, '--attack', kind, String(port), String(seconds + 2), String(bodyLimit)];
    const child = nice > 0 ? spawn('nice', ['-n', String(nice), process.execPath, ...args])
                           : spawn(process.execPath, args);
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => process.stderr.write(d));
    return { child, done: new Promise((resolve) => child.on('exit', () => resolve(out.trim()))) };
  });
  await new Promise((r) => setTimeout(r, 1500));  // attackers build their bodies and start
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const health = [], completion = [];
  let healthFailures = 0, completionFailures = 0;
  const small = JSON.stringify({ prompt: 'Once upon a time', max_tokens: 4, temperature: 0 });
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    let t = performance.now();
    const h = await get(port, '/health', agent);
    health.push(performance.now() - t);
    if (h.status !== 200) ++healthFailures;
    t = performance.now();
    const c = await post(port, '/v1/completions', small, agent);
    completion.push(performance.now() - t);
    if (c.status !== 200) ++completionFailures;
    await new Promise((r) => setTimeout(r, 20));
  }
  const attacks = (await Promise.all(children.map((c) => c.done))).filter(Boolean).map((l) => JSON.parse(l));
  const result = {
    machine: `${os.cpus().length} cpus, ${os.cpus()[0].model}`,
    seconds, attacker_nice: nice,
    health: summary('GET /health', health, healthFailures),
    completion: summary('4-token completion', completion, completionFailures),
    attacks,
  };
  console.log(JSON.stringify(result, null, 2));
  const ok = result.health.p99_ms <= 50 && result.completion.p99_ms <= 150 && healthFailures === 0 &&
             completionFailures === 0;
  console.log(ok ? 'hostile_load: targets met' : 'hostile_load: TARGETS MISSED');
  process.exit(ok ? 0 : 1);
}

const argv = process.argv.slice(2);
if (argv[0] === '--attack') {
  await attacker(Number(argv[2]), argv[1], Number(argv[4]), Number(argv[3]));
} else {
  if (!argv[0]) {
    console.error('usage: node bench/hostile_load.mjs PORT [SECONDS] [BODY_LIMIT_BYTES]');
    process.exit(2);
  }
  await probe(Number(argv[0]), Number(argv[1] || 20), Number(argv[2] || 16 * 1024 * 1024));
}
