// Hugging Face tokenizers (npm, the Rust library) encode speed on the corpus
// from make_corpus.js, for comparison with kaon_tokenizer_bench.
//   node bench/tokenizer/hf_bench.js CORPUS.jsonl MODEL_DIR...
'use strict';
const fs = require('fs');
const path = require('path');
const { loadHf } = require(path.join(__dirname, '..', '..', 'tests', 'node', 'tokenizer', 'tokenizers.js'));

async function main() {
  const [corpusPath, ...dirs] = process.argv.slice(2);
  const docs = fs.readFileSync(corpusPath, 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l));
  const whole = docs.join('');
  const mb = Buffer.byteLength(whole) / 1e6;
  const { Tokenizer } = loadHf();
  for (const dir of dirs) {
    const tok = Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
    const time = async (f) => { const t0 = process.hrtime.bigint(); const n = await f(); return [Number(process.hrtime.bigint() - t0) / 1e9, n]; };
    const wholeOnce = () => tok.encode(whole, null, { addSpecialTokens: false }).then((e) => e.getIds().length);
    const perDoc = async () => { let n = 0; for (const d of docs) n += (await tok.encode(d, null, { addSpecialTokens: false })).getIds().length; return n; };
    const batch = async () => (await tok.encodeBatch(docs, { addSpecialTokens: false })).reduce((n, e) => n + e.getIds().length, 0);
    const [tCold, nWhole] = await time(wholeOnce);
    let best = Infinity;
    for (let i = 0; i < 3; ++i) best = Math.min(best, (await time(wholeOnce))[0]);
    let bestDoc = Infinity, nDoc = 0;
    for (let i = 0; i < 3; ++i) { const [t, n] = await time(perDoc); bestDoc = Math.min(bestDoc, t); nDoc = n; }
    let bestBatch = Infinity;
    for (let i = 0; i < 3; ++i) bestBatch = Math.min(bestBatch, (await time(batch))[0]);
    console.log(`hf ${path.basename(path.dirname(dir)) || dir}: ${mb.toFixed(2)} MB, ${nWhole} tokens (whole), ${nDoc} tokens (per doc)`);
    console.log(`  whole text, one encode: first ${(mb / tCold).toFixed(2)} MB/s, best ${(mb / best).toFixed(2)} MB/s`);
    console.log(`  ${docs.length} docs, one encode call each: ${(mb / bestDoc).toFixed(2)} MB/s`);
    console.log(`  encodeBatch (multi-threaded): ${(mb / bestBatch).toFixed(2)} MB/s`);
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
