// Memory returns after large requests: RSS of `kaon serve` after start-up
// and one small request (the baseline), then after ten 16 MB prompts over
// HTTP and ten over gRPC. The model is a tiny random Llama with an 8M-token
// context (bench/configs/tiny-long-context.json, stories260k's tokenizer), so
// the prompts are accepted rather than refused by length: half of each set are
// streamed completions the client drops once the server has accepted them
// (200 / the first message), half are tokenize calls answered in full.
// Target (issue "No request can crash or stall the server"): RSS afterwards
// within 64 MB of the baseline.
//
//   node bench/memory_return.mjs [KAON_BIN]   (run from the source root, after `make test`'s npm install)
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

const SOURCE = process.cwd();
const KAON = process.argv[2] || path.join(SOURCE, 'build', 'bin', 'kaon');
const require = createRequire(path.join(SOURCE, 'tests', 'node', 'node_modules', 'kaon-tests.cjs'));
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROMPT_BYTES = 16_000_000;
const MODEL = path.join(os.tmpdir(), 'kaon-tiny-long-context');

function rssMiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)[1]);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

function prompt(seed) {
  const words = ['Once', 'upon', 'a', 'time', 'there', 'was', 'a', 'little', 'girl', 'named', 'Lily', 'who',
                 'loved', 'to', 'play', 'in', 'the', 'park', 'with', 'her', 'friends.'];
  const parts = [];
  let size = 0, x = seed;
  while (size < PROMPT_BYTES) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const w = words[x % words.length];
    parts.push(w);
    size += w.length + 1;
  }
  return parts.join(' ').slice(0, PROMPT_BYTES);
}

// POST and read the whole answer; or, with `dropAfterHead`, resolve with the
// status once the response head arrives and close the connection (the
// server aborts the request).
function post(port, route, body, dropAfterHead = false) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: route, method: 'POST',
                               headers: { 'Content-Type': 'application/json',
                                          'Content-Length': Buffer.byteLength(body) } }, (res) => {
      if (dropAfterHead) {
        resolve({ status: res.statusCode });
        req.destroy();
        return;
      }
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, bytes: Buffer.concat(chunks).length }));
    });
    req.on('error', (e) => resolve({ status: 0, error: String(e) }));
    req.end(body);
  });
}

async function main() {
  if (!fs.existsSync(path.join(MODEL, 'config.json'))) {
    execFileSync(KAON, ['random-model', '--config', path.join(SOURCE, 'bench', 'configs', 'tiny-long-context.json'),
                        '--out', MODEL, '--tokenizer-from', path.join(SOURCE, 'models', 'stories260k')]);
  }
  const server = spawn(KAON, ['serve', MODEL, '--port', '0', '--grpc-port', '0', '--disable-log-requests',
                              '--max-model-len', '5M', '--num-kv-blocks', '320K', '--max-num-seqs', '4'],
                       { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise((resolve, reject) => {
    server.stdout.on('data', (d) => { out += d; if (/kaon: serving .* on http:/.test(out)) resolve(); });
    server.on('exit', (code) => reject(new Error(`kaon serve exited (${code}): ${out}`)));
  });
  const httpPort = Number(/on http:\/\/[\d.]+:(\d+)/.exec(out)[1]);
  const grpcTarget = `127.0.0.1:${/kaon: grpc on [^\s:]+:(\d+)/.exec(out)[1]}`;
  const proto = grpc.loadPackageDefinition(protoLoader.loadSync(path.join(SOURCE, 'proto', 'kaon', 'v1', 'kaon.proto'),
    { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true }));
  const client = new proto.kaon.v1.Generation(grpcTarget, grpc.credentials.createInsecure(),
                                              { 'grpc.max_send_message_length': 32 << 20,
                                                'grpc.max_receive_message_length': 64 << 20 });

  const small = await post(httpPort, '/v1/completions', JSON.stringify({ prompt: 'Once upon a time', max_tokens: 4 }));
  if (small.status !== 200) throw new Error(`small request: ${small.status}`);
  const baseline = rssMiB(server.pid);
  const outcomes = { http: [], grpc: [] };
  const t0 = performance.now();
  for (let i = 0; i < 10; ++i) {
    const text = prompt(i + 1);
    if (i % 2 === 0) {
      const r = await post(httpPort, '/v1/completions',
                           JSON.stringify({ prompt: text, max_tokens: 1, stream: true }), /*dropAfterHead=*/true);
      outcomes.http.push(`completion ${r.status}`);
    } else {
      const r = await post(httpPort, '/tokenize', JSON.stringify({ prompt: text }));
      outcomes.http.push(`tokenize ${r.status}`);
    }
  }
  for (let i = 0; i < 10; ++i) {
    const text = prompt(100 + i);
    if (i % 2 === 0) {
      const status = await new Promise((resolve) => {
        const call = client.Generate({ text, max_tokens: 1 }, { deadline: new Date(Date.now() + 120_000) });
        call.on('data', () => { call.cancel(); resolve('OK, then cancelled'); });
        call.on('error', (e) => resolve(e.code === grpc.status.CANCELLED ? 'OK, then cancelled' : e.message));
      });
      outcomes.grpc.push(`Generate ${status}`);
    } else {
      const status = await new Promise((resolve) => {
        client.Tokenize({ text }, { deadline: new Date(Date.now() + 120_000) },
                        (e, res) => resolve(e ? e.message : `OK (${res.count} tokens)`));
      });
      outcomes.grpc.push(`Tokenize ${status}`);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 2000));  // frees after aborts; the trim runs 0.5 s after a large request
  const after = rssMiB(server.pid);
  client.close();
  server.kill('SIGTERM');
  const accepted = [...outcomes.http, ...outcomes.grpc].filter((o) => / (200|OK)/.test(o)).length;
  const result = {
    machine: `${os.cpus().length} cpus, ${os.cpus()[0].model}`,
    prompt_bytes: PROMPT_BYTES, seconds: +seconds.toFixed(1), accepted_of_20: accepted,
    baseline_rss_mib: +baseline.rss.toFixed(1), peak_rss_mib: +after.peak.toFixed(1),
    after_rss_mib: +after.rss.toFixed(1), growth_mib: +(after.rss - baseline.rss).toFixed(1), outcomes,
  };
  console.log(JSON.stringify(result, null, 2));
  const ok = accepted >= 1 && after.rss - baseline.rss <= 64;
  console.log(ok ? 'memory_return: target met' : 'memory_return: TARGET MISSED');
  process.exit(ok ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
