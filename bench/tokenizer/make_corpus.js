// Writes the tokenizer benchmark corpus: ~1 MB of mixed documents (prose in
// many scripts, code, numbers, emoji, whitespace), one JSON string per line.
//   node bench/tokenizer/make_corpus.js OUT.jsonl
'use strict';
const fs = require('fs');
const path = require('path');
const { generateCorpus } = require(path.join(__dirname, '..', '..', 'tests', 'node', 'tokenizer', 'corpus.js'));

const out = process.argv[2];
if (!out) {
  console.error('usage: make_corpus.js OUT.jsonl');
  process.exit(2);
}
const TARGET = 1 << 20;
const docs = [];
let bytes = 0;
for (let seed = 1; bytes < TARGET; ++seed) {
  for (const { text } of generateCorpus(seed)) {
    if (bytes >= TARGET) break;
    docs.push(text);
    bytes += Buffer.byteLength(text);
  }
}
fs.writeFileSync(out, docs.map((d) => JSON.stringify(d)).join('\n') + '\n');
console.log(`${out}: ${docs.length} documents, ${bytes} bytes`);
