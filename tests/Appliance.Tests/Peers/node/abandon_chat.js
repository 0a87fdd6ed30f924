// A client that goes away in the middle of a chat completion, over HTTP/1.1 (closing its connection) or HTTP/2
// (RST_STREAM CANCEL on its stream, the connection kept open), at a moment the fake provider confirms:
//   node abandon_chat.js GATEWAY_ORIGIN PATH PROVIDER_ORIGIN h1|h2 REQUEST_JSON
// A whole answer is abandoned once the provider holds the request ("slow"); a streamed one once its first text
// reached the client ("slow after start"). Then it waits for the provider to see its request closed by the gateway
// (GET /__abandoned, which gives up after 20 s) and prints {before, held, after, received} as JSON.
'use strict';
const http = require('node:http');
const http2 = require('node:http2');

const [origin, path, provider, protocol, body] = process.argv.slice(2);
const request = JSON.parse(body);

function providerState(which, atLeast) {
  return new Promise((resolve, reject) => {
    http.get(`${provider}/__${which}?atLeast=${atLeast}`, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve(JSON.parse(text)));
    }).on('error', reject);
  });
}

async function main() {
  const before = await providerState('hung', 0);
  let received = '';
  let firstText;
  const gotText = new Promise((resolve) => (firstText = resolve));
  const onData = (chunk) => {
    received += chunk;
    if (received.includes('Thinking it over')) firstText();
  };
  let abandon;
  let session;
  if (protocol === 'h2') {
    session = http2.connect(origin, { rejectUnauthorized: false });
    session.on('error', () => {});
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json' });
    stream.on('error', () => {});
    stream.setEncoding('utf8');
    stream.on('data', onData);
    stream.end(body);
    abandon = () => stream.close(http2.constants.NGHTTP2_CANCEL);
  } else {
    const req = http.request(new URL(path, origin), { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      res.setEncoding('utf8');
      res.on('data', onData);
    });
    req.on('error', () => {});
    req.end(body);
    abandon = () => req.destroy();
  }

  const started = Date.now();
  const held = await providerState('hung', before.hung + 1);
  const heldMs = Date.now() - started;
  if (request.stream) {
    let timer;
    await Promise.race([gotText, new Promise((r) => (timer = setTimeout(r, 20000)))]);
    clearTimeout(timer);
  }
  abandon();
  const abandonedAt = Date.now();
  const after = await providerState('abandoned', before.abandoned + 1);
  const closedMs = Date.now() - abandonedAt;
  if (session) session.close();
  console.log(JSON.stringify({ before, held, after, received, heldMs, closedMs }));
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
