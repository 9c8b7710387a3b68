// A fake OpenAI-compatible server with programmed timing, for kaon-bench's
// tests: every streamed request gets an empty chunk at once (which must not
// count as the first token), its first text chunk after FIRST_MS, then
// CHUNKS - 1 more every GAP_MS, a usage chunk and [DONE]. Prompts containing
// "FAIL" get HTTP 500, and so does every generation request after the first
// OK_REQUESTS (default: no limit). No /tokenize, so kaon-bench falls back to
// its estimate.
// Usage: node fake_openai_server.js FIRST_MS GAP_MS CHUNKS [OK_REQUESTS]
// Prints "fake: listening on PORT" once ready.
'use strict';
const http = require('http');

const firstMs = Number(process.argv[2] || 200);
const gapMs = Number(process.argv[3] || 20);
const chunks = Number(process.argv[4] || 10);
const okRequests = process.argv[5] === undefined ? Infinity : Number(process.argv[5]);
let generationRequests = 0;
const promptTokens = 7;

function send(res, obj) {
  res.write('data: ' + JSON.stringify(obj) + '\n\n');
}

const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    if (req.method === 'GET' && req.url === '/v1/models') {
      res.writeHead(200, {'content-type': 'application/json'});
      res.end(JSON.stringify({object: 'list', data: [{id: 'fake-model', object: 'model'}]}));
      return;
    }
    if (req.method !== 'POST' || (req.url !== '/v1/completions' && req.url !== '/v1/chat/completions')) {
      res.writeHead(404, {'content-type': 'application/json'});
      res.end(JSON.stringify({error: {message: 'no route for ' + req.url}}));
      return;
    }
    const j = JSON.parse(body);
    const chat = req.url === '/v1/chat/completions';
    const prompt = chat ? j.messages[0].content : j.prompt;
    generationRequests += 1;
    if (prompt.includes('FAIL') || generationRequests > okRequests) {
      res.writeHead(500, {'content-type': 'application/json'});
      res.end(JSON.stringify({error: {message: 'programmed failure', type: 'internal_error'}}));
      return;
    }
    const n = Math.min(chunks, j.max_tokens || j.max_completion_tokens || chunks);
    res.writeHead(200, {'content-type': 'text/event-stream', 'cache-control': 'no-cache'});
    const piece = (text) => (chat ? {choices: [{index: 0, delta: {content: text}}]} : {choices: [{index: 0, text}]});
    send(res, chat ? {choices: [{index: 0, delta: {role: 'assistant', content: ''}}]} : piece(''));
    const start = Date.now();
    let sent = 0;
    const tick = () => {
      send(res, piece(' tok' + sent));
      sent += 1;
      if (sent < n) {
        // Scheduled against the start so timer jitter does not accumulate.
        setTimeout(tick, Math.max(0, start + firstMs + sent * gapMs - Date.now()));
        return;
      }
      if (j.stream_options && j.stream_options.include_usage) {
        send(res, {choices: [], usage: {prompt_tokens: promptTokens, completion_tokens: n, total_tokens: promptTokens + n}});
      }
      res.write('data: [DONE]\n\n');
      res.end();
    };
    setTimeout(tick, firstMs);
  });
});

server.listen(0, '127.0.0.1', () => {
  console.log('fake: listening on ' + server.address().port);
});
process.on('SIGTERM', () => process.exit(0));
