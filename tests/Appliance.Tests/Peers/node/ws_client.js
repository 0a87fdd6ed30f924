#!/usr/bin/env node
// WebSocket client used in the WebSocket proxy tests to check that frames pass through the proxy unchanged.
//
// Usage: node ws_client.js URL   (ws:// or wss://; certificates are not verified)
// Sends the text "hello", a 100 KiB binary message (byte i = i % 251) and a 2 MiB text message, checks each echo is
// byte-identical and of the same type, then sends "close-me" and expects close code 4000 with reason "bye".
// Prints one JSON line; exits 0 on success, 1 on failure (including the 10 s overall deadline).
'use strict';

const WebSocket = require('ws');

const url = process.argv[2];
let done = false;

function finish(ok, result) {
  if (done) return;
  done = true;
  process.stdout.write(JSON.stringify(ok ? { ok: true, ...result } : { ok: false, error: String(result) }) + '\n');
  process.exit(ok ? 0 : 1);
}

if (!url) finish(false, 'usage: ws_client.js URL');
setTimeout(() => finish(false, 'timeout after 10 s'), 10_000).unref();

const binary = Buffer.alloc(100 * 1024);
for (let i = 0; i < binary.length; i++) binary[i] = i % 251;
let big = '';
{
  const chunk = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_';
  big = chunk.repeat((2 * 1024 * 1024) / chunk.length);
}

// Expected echoes, in order: [isBinary, payload as Buffer, name].
const expected = [
  [false, Buffer.from('hello'), 'text'],
  [true, binary, 'binary'],
  [false, Buffer.from(big), 'big'],
];
const result = {};

const ws = new WebSocket(url, { rejectUnauthorized: false, maxPayload: 64 * 1024 * 1024 });
ws.on('error', (e) => finish(false, `ws error: ${e.message}`));
ws.on('unexpected-response', (req, res) => finish(false, `unexpected response: HTTP ${res.statusCode}`));

ws.on('open', () => {
  ws.send('hello');
  ws.send(binary, { binary: true });
  ws.send(big);
});

ws.on('message', (data, isBinary) => {
  const next = expected.shift();
  if (!next) return finish(false, 'unexpected extra message');
  const [wantBinary, want, name] = next;
  if (isBinary !== wantBinary) return finish(false, `${name}: expected ${wantBinary ? 'binary' : 'text'} frame`);
  if (!Buffer.from(data).equals(want)) return finish(false, `${name}: echo differs (got ${data.length} bytes, want ${want.length})`);
  if (name === 'text') result.text = data.toString();
  if (name === 'binary') result.binaryOk = true;
  if (name === 'big') {
    result.bigOk = true;
    ws.send('close-me');
  }
});

ws.on('close', (code, reason) => {
  result.closeCode = code;
  result.closeReason = reason.toString();
  if (expected.length) return finish(false, `closed early with ${code} "${result.closeReason}"`);
  if (code !== 4000 || result.closeReason !== 'bye') return finish(false, `close was ${code} "${result.closeReason}", want 4000 "bye"`);
  finish(true, result);
});
