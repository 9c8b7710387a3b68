// A real external gRPC client against the real `kaon serve --grpc-port 0`:
// @grpc/grpc-js with @grpc/proto-loader loading proto/kaon/v1/kaon.proto as
// any client would. Streaming Generate and unary Complete against the golden
// greedy outputs, an error code, and the standard health service.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { MODEL, NODE_MODULES, SOURCE_DIR, golden, startServer } from '../http/lib/harness.mjs';

const require = createRequire(path.join(NODE_MODULES, 'kaon-tests.cjs'));
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const LOAD_OPTIONS = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };
const kaonProto = grpc.loadPackageDefinition(
  protoLoader.loadSync(path.join(SOURCE_DIR, 'proto', 'kaon', 'v1', 'kaon.proto'), LOAD_OPTIONS));
const healthProto = grpc.loadPackageDefinition(
  protoLoader.loadSync(path.join(SOURCE_DIR, 'tests', 'grpc', 'proto', 'health.proto'), LOAD_OPTIONS));

const G = golden();
let server;
let client;
let health;

before(async () => {
  server = await startServer(['--grpc-port', '0']);
  const m = /kaon: grpc on ([^\s:]+):(\d+)/.exec(server.stdout);
  assert.ok(m, `no "kaon: grpc on" line in ${JSON.stringify(server.stdout)}`);
  const target = `127.0.0.1:${m[2]}`;
  client = new kaonProto.kaon.v1.Generation(target, grpc.credentials.createInsecure());
  health = new healthProto.grpc.health.v1.Health(target, grpc.credentials.createInsecure());
});
after(() => {
  client?.close();
  health?.close();
  server?.kill();
});

const deadline = () => new Date(Date.now() + 60_000);
const greedy = (c) => ({ model: MODEL, text: c.prompt, temperature: 0, max_tokens: c.max_tokens, ignore_eos: true });

function unary(method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: deadline() }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

function stream(request) {
  return new Promise((resolve, reject) => {
    const messages = [];
    const call = client.Generate(request, { deadline: deadline() });
    call.on('data', (m) => messages.push(m));
    call.on('error', reject);
    call.on('end', () => resolve(messages));
  });
}

test('streaming Generate returns the golden greedy text and tokens', async () => {
  const c = G.cases[0];
  const messages = await stream(greedy(c));
  assert.ok(messages.length > 1, `${messages.length} messages`);
  const choices = messages.flatMap((m) => m.choices);
  assert.equal(choices.map((x) => x.text).join(''), c.greedy_text);
  assert.deepEqual(choices.flatMap((x) => x.token_ids), c.greedy_token_ids);
  assert.deepEqual(messages[0].prompt_token_ids, c.prompt_token_ids);
  assert.equal(choices[choices.length - 1].finish_reason, 'FINISH_REASON_LENGTH');
  const usage = messages[messages.length - 1].usage;
  assert.equal(usage.prompt_tokens, c.prompt_token_ids.length);
  assert.equal(usage.completion_tokens, c.max_tokens);
});

test('unary Complete returns every golden case', async () => {
  for (const c of G.cases) {
    const r = await unary('Complete', greedy(c));
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].text, c.greedy_text, JSON.stringify(c.prompt));
    assert.deepEqual(r.choices[0].token_ids, c.greedy_token_ids);
    assert.equal(r.usage.completion_tokens, c.max_tokens);
  }
});

test('a bad parameter is INVALID_ARGUMENT naming the field; an unknown model NOT_FOUND', async () => {
  await assert.rejects(unary('Complete', { text: 'Hi', temperature: -1 }), (e) => {
    assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
    assert.match(e.details, /temperature/);
    return true;
  });
  await assert.rejects(unary('Complete', { model: 'gpt-17', text: 'Hi' }), (e) => {
    assert.equal(e.code, grpc.status.NOT_FOUND);
    assert.match(e.details, /gpt-17/);
    return true;
  });
});

test('GetModelInfo and Tokenize', async () => {
  const info = await unary('GetModelInfo', {});
  assert.equal(info.id, MODEL);
  assert.equal(info.max_model_len, 512);
  assert.equal(info.vocab_size, 512);
  assert.equal(info.has_chat_template, true);
  const c = G.cases[0];
  const t = await unary('Tokenize', { text: c.prompt });
  assert.deepEqual(t.tokens, c.prompt_token_ids);
});

test('the standard health service answers SERVING', async () => {
  for (const service of ['', 'kaon.v1.Generation']) {
    const r = await new Promise((resolve, reject) => {
      health.Check({ service }, { deadline: deadline() }, (err, res) => (err ? reject(err) : resolve(res)));
    });
    assert.equal(r.status, 'SERVING', `service "${service}"`);
  }
});
