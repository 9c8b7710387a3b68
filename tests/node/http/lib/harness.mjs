// Shared pieces of the end-to-end HTTP tests: start the real `kaon serve` on
// 127.0.0.1 (port chosen by the kernel), build an official `openai` client for
// it, read /metrics, load the model's golden file and reference tokenizer.
//
// Paths: the kaon binary is argv[2] (CTest passes $<TARGET_FILE:kaon>), else
// $KAON_BIN, else build/bin/kaon; the source tree is $KAON_SOURCE_DIR, else
// three levels above this folder.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const SOURCE_DIR = process.env.KAON_SOURCE_DIR || path.resolve(here, '..', '..', '..', '..');
export const NODE_MODULES = path.join(SOURCE_DIR, 'tests', 'node', 'node_modules');
export const KAON_BIN = process.argv[2] || process.env.KAON_BIN || path.join(SOURCE_DIR, 'build', 'bin', 'kaon');
export const MODEL_DIR = path.join(SOURCE_DIR, 'models', 'stories260k');
export const MODEL = 'stories260k';
export const CHAT_TEMPLATE = path.join(SOURCE_DIR, 'tests', 'data', 'templates', 'llama2_chat.jinja');
export const MAX_MODEL_LEN = 512;  // config.json max_position_embeddings

const require = createRequire(path.join(NODE_MODULES, 'kaon-tests.cjs'));

function requireDep(name) {
  try {
    return require(name);
  } catch (e) {
    throw new Error(`cannot load npm package '${name}' from ${NODE_MODULES} (${e.message}); ` +
      'run scripts/install-node-deps.sh');
  }
}

// The official client, from tests/node/node_modules (pinned in package.json).
const openaiModule = requireDep('openai');
export const OpenAI = openaiModule.OpenAI || openaiModule.default || openaiModule;

export function golden() {
  return JSON.parse(fs.readFileSync(path.join(MODEL_DIR, 'golden.json'), 'utf8'));
}

let hfTokenizer = null;
// Hugging Face's tokenizer for the model (the `tokenizers` npm package): an
// independent reference for prompt token counts.
export function referenceTokenizer() {
  if (!hfTokenizer) {
    const { Tokenizer } = requireDep('tokenizers');
    hfTokenizer = Tokenizer.fromFile(path.join(MODEL_DIR, 'tokenizer.json'));
  }
  return hfTokenizer;
}

export async function referenceEncode(text, addSpecialTokens) {
  const [enc] = await referenceTokenizer().encodeBatch([text], { addSpecialTokens });
  return Array.from(enc.getIds());
}

export async function referenceDecode(ids, skipSpecialTokens = false) {
  const [text] = await referenceTokenizer().decodeBatch([ids], skipSpecialTokens);
  return text;
}

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch { /* gone */ }
  }
});

export class KaonServer {
  constructor(proc) {
    this.proc = proc;
    this.stdout = '';
    this.stderr = '';
    this.port = 0;
    this.exit = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        live.delete(proc);
        resolve({ code, signal });
      });
    });
  }

  get origin() { return `http://127.0.0.1:${this.port}`; }
  get baseURL() { return `${this.origin}/v1`; }

  // An official client; retries are off so that no failure is papered over.
  client(options = {}) {
    return new OpenAI({ baseURL: this.baseURL, apiKey: 'unused', maxRetries: 0, timeout: 120_000, ...options });
  }

  // SIGTERM (or `signal`), then waits for the exit; returns {code, signal}.
  async stop(signal = 'SIGTERM', timeoutMs = 20_000) {
    this.metricsAgent?.destroy();
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.exit;
    this.proc.kill(signal);
    return withTimeout(this.exit, timeoutMs, `kaon serve did not exit within ${timeoutMs} ms of ${signal}`)
      .catch((e) => {
        this.proc.kill('SIGKILL');
        throw e;
      });
  }

  kill() {
    this.metricsAgent?.destroy();
    try { this.proc.kill('SIGKILL'); } catch { /* gone */ }
  }

  // GET /metrics over one kept-alive connection of its own, so that a flood
  // of other connections (queued at the listener) does not delay it.
  metricsText() {
    this.metricsAgent ??= new http.Agent({ keepAlive: true, maxSockets: 1 });
    return new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: this.port, path: '/metrics', agent: this.metricsAgent }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { text += d; });
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`GET /metrics: HTTP ${res.statusCode}: ${text.slice(0, 300)}`));
          else resolve(text);
        });
        res.on('error', reject);
      });
      req.on('error', reject);
    });
  }

  // The value of `name{model_name="stories260k"...}` in /metrics.
  async metric(name) {
    return parseMetric(await this.metricsText(), name);
  }

  // Several metrics from one /metrics reading: {name: value}.
  async metrics(...names) {
    const text = await this.metricsText();
    return Object.fromEntries(names.map((n) => [n, parseMetric(text, n)]));
  }
}

// Finds `name{...model_name="stories260k"...} value` (or an unlabelled `name value`).
export function parseMetric(text, name) {
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const m = /^([^\s{]+)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    if (m[2] && !m[2].includes(`model_name="${MODEL}"`)) continue;
    const v = Number(m[3]);
    if (Number.isNaN(v)) throw new Error(`metric ${name}: not a number in line ${JSON.stringify(line)}`);
    return v;
  }
  throw new Error(`metric ${name}{model_name="${MODEL}"} not found in /metrics:\n${text.slice(0, 2000)}`);
}

// Starts `kaon serve models/stories260k --port 0 --chat-template llama2 ...args`
// and resolves once it announces its port.
export async function startServer(args = [], { timeoutMs = 30_000 } = {}) {
  const argv = ['serve', MODEL_DIR, '--port', '0', '--chat-template', CHAT_TEMPLATE, ...args];
  const proc = spawn(KAON_BIN, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  const server = new KaonServer(proc);
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => {
    server.stderr += d;
    if (process.env.KAON_TEST_VERBOSE) process.stderr.write(d);
  });
  proc.stdout.setEncoding('utf8');
  const announced = new Promise((resolve, reject) => {
    proc.on('error', reject);
    proc.stdout.on('data', (d) => {
      server.stdout += d;
      const m = /kaon: serving (\S+) as (\S+) on http:\/\/([^\s:]+):(\d+)\r?\n/.exec(server.stdout);
      if (m) resolve(Number(m[4]));
    });
    server.exit.then(({ code, signal }) => reject(new Error(
      `kaon serve exited (code ${code}, signal ${signal}) before announcing its port\n` +
      `command: ${KAON_BIN} ${argv.join(' ')}\nstdout: ${server.stdout}\nstderr: ${server.stderr}`)));
  });
  try {
    server.port = await withTimeout(announced, timeoutMs, `kaon serve did not announce a port within ${timeoutMs} ms`);
  } catch (e) {
    server.kill();
    throw e;
  }
  if (!(server.port > 0 && server.port < 65536)) throw new Error(`bad port in ${JSON.stringify(server.stdout)}`);
  return server;
}

export function withTimeout(promise, ms, message) {
  let timer;
  const t = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `probe` (async, returns truthy when done) until it holds or the deadline passes.
export async function waitFor(probe, { timeoutMs = 5000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await sleep(intervalMs);
  }
}

// Resolves with the error code of a fresh TCP connect ('ECONNREFUSED'), or
// 'connected' when the port still accepts.
export function tryConnect(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.once('connect', () => { s.destroy(); resolve('connected'); });
    s.once('error', (e) => resolve(e.code || String(e)));
  });
}

// Collects an SDK stream: the chunks in order.
export async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

// Expects `promise` to reject with an SDK error of class `Cls` and `status`.
export async function expectApiError(promise, Cls, status) {
  let value;
  try {
    value = await promise;
  } catch (e) {
    if (!(e instanceof Cls)) {
      throw new Error(`expected ${Cls.name} (${status}), got ${e?.constructor?.name}: ${e?.message}`);
    }
    if (e.status !== status) throw new Error(`expected HTTP ${status}, got ${e.status}: ${e.message}`);
    return e;
  }
  throw new Error(`expected ${Cls.name} (${status}), but the request succeeded: ${JSON.stringify(value).slice(0, 500)}`);
}

// The llama2 chat template rendered by Hugging Face's Jinja implementation
// (@huggingface/jinja), with the model's special tokens: the reference prompt.
export function referenceRenderChat(messages, { addGenerationPrompt = true } = {}) {
  const { Template } = requireDep('@huggingface/jinja');
  const tpl = new Template(fs.readFileSync(CHAT_TEMPLATE, 'utf8'));
  return tpl.render({ messages, bos_token: '<s>', eos_token: '</s>', add_generation_prompt: addGenerationPrompt });
}
