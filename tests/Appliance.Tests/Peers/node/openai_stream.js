// Reads a chat completion stream (server-sent events) on stdin and lets the official OpenAI SDK read it, as a client of
// the gateway would: the bytes are served on a loopback port and fetched twice, once as raw chunks
// (chat.completions.create with stream: true) and once through the SDK's accumulating helper
// (chat.completions.stream → finalChatCompletion). Prints {"chunks": [...], "final": {...}} or {"error": {...}}.
'use strict';
const http = require('node:http');
const OpenAI = require('openai');

async function main() {
  const input = [];
  for await (const piece of process.stdin) input.push(piece);
  const body = Buffer.concat(input);
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(body);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${server.address().port}/v1`, apiKey: 'test', maxRetries: 0 });
  const request = { model: 'requested-model', messages: [{ role: 'user', content: 'hi' }], stream_options: { include_usage: true } };
  const out = { chunks: [] };
  try {
    const stream = await client.chat.completions.create({ ...request, stream: true });
    for await (const chunk of stream) out.chunks.push(chunk);
    const helper = client.chat.completions.stream(request);
    out.final = await helper.finalChatCompletion();
  } catch (e) {
    out.error = { name: e.constructor.name, message: e.message, type: e.type ?? null, status: e.status ?? null };
  }
  server.close();
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
