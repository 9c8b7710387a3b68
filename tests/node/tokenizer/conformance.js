// Tokenizer conformance: kaon against Hugging Face `tokenizers` (the Rust
// library's npm build) on a generated corpus, for six real tokenizers.
//
//   node tests/node/tokenizer/conformance.js [KAON]
//
// KAON is the kaon binary (default: KAON_BIN_DIR/kaon), run as
// `kaon tokenize DIR --jsonl`.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { generateCorpus, generateLongCorpus, mulberry32 } = require('./corpus.js');
const { SOURCE_DIR, TOKENIZERS, loadHf } = require('./tokenizers.js');

const BATCH = 256;
const MAX_REPORTED = 5;

function toolCommand(dir) {
  const binDir = process.env.KAON_BIN_DIR || path.join(SOURCE_DIR, 'build', 'bin');
  const kaon = process.argv[2] || path.join(binDir, 'kaon');
  return [kaon, ['tokenize', dir, '--jsonl']];
}

function runKaon(dir, requests) {
  const [cmd, args] = toolCommand(dir);
  const input = requests.map((r) => JSON.stringify(r)).join('\n') + '\n';
  const res = spawnSync(cmd, args, { input, maxBuffer: 1 << 30, encoding: 'utf8' });
  if (res.error) throw new Error(`${cmd}: ${res.error.message}`);
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${res.status}: ${res.stderr}`);
  const lines = res.stdout.split('\n').filter((l) => l.length > 0);
  if (lines.length !== requests.length) {
    throw new Error(`${cmd}: ${requests.length} requests but ${lines.length} responses`);
  }
  return lines.map((l) => JSON.parse(l));
}

async function hfEncodeAll(tok, texts, addSpecialTokens) {
  const out = [];
  for (let i = 0; i < texts.length; i += BATCH) {
    const encs = await tok.encodeBatch(texts.slice(i, i + BATCH), { addSpecialTokens });
    for (const e of encs) out.push(Array.from(e.getIds()));
  }
  return out;
}

async function hfDecodeAll(tok, idLists, skip) {
  const out = [];
  for (let i = 0; i < idLists.length; i += BATCH) out.push(...(await tok.decodeBatch(idLists.slice(i, i + BATCH), skip)));
  return out;
}

// Random id sequences exercise decoders on input no encoder produces:
// stray byte tokens, invalid UTF-8, special tokens in odd places.
function randomIdLists(vocabSize, seed, n) {
  const r = mulberry32(seed);
  const lists = [];
  for (let i = 0; i < n; ++i) {
    const len = 1 + Math.floor(r() * 20);
    const ids = [];
    for (let j = 0; j < len; ++j) {
      const k = r();
      // Low ids are byte tokens in the SentencePiece vocabularies; high ones
      // are the added tokens of the byte-level ones.
      if (k < 0.3) ids.push(Math.floor(r() * 300));
      else if (k < 0.4) ids.push(vocabSize - 1 - Math.floor(r() * 300));
      else ids.push(Math.floor(r() * vocabSize));
    }
    lists.push(ids);
  }
  return lists;
}

function show(s) {
  const j = JSON.stringify(s);
  return j.length > 300 ? j.slice(0, 300) + `… (${j.length} chars)` : j;
}

async function checkTokenizer(hfLib, spec, corpus, golden) {
  const tok = hfLib.Tokenizer.fromFile(path.join(spec.dir, 'tokenizer.json'));
  const texts = corpus.map((c) => c.text);
  const withSpecial = await hfEncodeAll(tok, texts, true);
  const withoutSpecial = await hfEncodeAll(tok, texts, false);
  const vocabSize = tok.getVocabSize(true);
  const decodeInputs = withSpecial.concat(randomIdLists(vocabSize, 1234 + spec.name.length, 200));
  const decodedKeep = await hfDecodeAll(tok, decodeInputs, false);
  const decodedSkip = await hfDecodeAll(tok, decodeInputs, true);

  const checks = [];  // {kind, input, request, expected}
  texts.forEach((text, i) => {
    checks.push({ kind: 'encode(add_special_tokens=true)', input: text, request: { text, add_special_tokens: true }, expected: { ids: withSpecial[i] } });
    checks.push({ kind: 'encode(add_special_tokens=false)', input: text, request: { text, add_special_tokens: false }, expected: { ids: withoutSpecial[i] } });
  });
  decodeInputs.forEach((ids, i) => {
    checks.push({ kind: 'decode(skip_special_tokens=false)', input: ids, request: { ids, skip_special_tokens: false }, expected: { text: decodedKeep[i] } });
    checks.push({ kind: 'decode(skip_special_tokens=true)', input: ids, request: { ids, skip_special_tokens: true }, expected: { text: decodedSkip[i] } });
  });
  for (const g of golden) {
    checks.push({ kind: 'golden encode', input: g.text, request: { text: g.text, add_special_tokens: true }, expected: { ids: g.ids } });
    checks.push({ kind: 'golden decode', input: g.ids, request: { ids: g.ids, skip_special_tokens: true }, expected: { text: g.decoded } });
  }

  const got = runKaon(spec.dir, checks.map((c) => c.request));
  const failures = [];
  checks.forEach((c, i) => {
    if (JSON.stringify(got[i]) !== JSON.stringify(c.expected)) failures.push({ ...c, got: got[i] });
  });
  console.log(`${spec.name}: ${checks.length - failures.length}/${checks.length} match ` +
    `(${texts.length} strings encoded with and without special tokens, ${decodeInputs.length} id lists decoded twice` +
    `${golden.length ? `, ${golden.length} golden cases` : ''})`);
  for (const f of failures.slice(0, MAX_REPORTED)) {
    console.log(`  MISMATCH ${f.kind}\n    input:    ${show(f.input)}\n    expected: ${show(f.expected)}\n    got:      ${show(f.got)}`);
  }
  return failures.length;
}

async function main() {
  const hfLib = loadHf();
  // KAON_TOKENIZER_CONFORMANCE_SEEDS=N adds N more generated corpora (for
  // local soak runs; CI uses the default corpus only).
  const extraSeeds = Number(process.env.KAON_TOKENIZER_CONFORMANCE_SEEDS || 0);
  let corpus = generateCorpus().concat(generateLongCorpus());
  for (let s = 1; s <= extraSeeds; ++s) corpus = corpus.concat(generateCorpus(1000 + s), generateLongCorpus(1000 + s));
  const goldenPath = path.join(SOURCE_DIR, 'models', 'stories260k', 'tokenizer_golden.json');
  const golden = JSON.parse(fs.readFileSync(goldenPath, 'utf8')).cases;
  let failed = 0;
  for (const spec of TOKENIZERS) {
    if (!fs.existsSync(path.join(spec.dir, 'tokenizer.json'))) {
      console.error(`missing ${spec.dir}/tokenizer.json (run scripts/install-node-deps.sh)`);
      process.exit(1);
    }
    failed += await checkTokenizer(hfLib, spec, corpus, spec.name === 'stories260k' ? golden : []);
  }
  if (failed) {
    console.log(`FAIL: ${failed} mismatches`);
    process.exit(1);
  }
  console.log('PASS: kaon matches Hugging Face tokenizers on every case');
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
