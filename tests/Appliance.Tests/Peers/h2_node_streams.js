#!/usr/bin/env node
// Many concurrent streams on one HTTP/2 connection with Node's built-in http2 client (nghttp2 inside).
//
// Usage: node h2_node_streams.js URL COUNT
// Opens one session, waits for the server's SETTINGS, then starts COUNT requests at once; Node keeps the ones past
// SETTINGS_MAX_CONCURRENT_STREAMS queued until streams close. Prints one JSON object: the server's
// maxConcurrentStreams, the count per status, the number of bodies that matched the first one and the stream errors
// (a stream started past the server's limit would come back as REFUSED_STREAM). Exits non-zero if anything failed or
// the deadline passed.
'use strict';

const http2 = require('node:http2');

const [url, countArg] = process.argv.slice(2);
const count = Number(countArg || 1000);
const deadline = setTimeout(() => {
  console.error('deadline passed');
  process.exit(2);
}, 60_000);

const session = http2.connect(url, { rejectUnauthorized: false });
session.on('error', (e) => {
  console.error(`session error: ${e.message}`);
  process.exit(3);
});

session.once('remoteSettings', (settings) => {
  const statuses = {};
  const errors = [];
  let firstBody = null;
  let sameBody = 0;
  let done = 0;

  const finish = () => {
    clearTimeout(deadline);
    session.close();
    const result = { maxConcurrentStreams: settings.maxConcurrentStreams, statuses, sameBody, errors };
    process.stdout.write(JSON.stringify(result) + '\n');
    process.exitCode = errors.length === 0 ? 0 : 1;
  };

  for (let i = 0; i < count; i++) {
    const req = session.request({ ':method': 'GET', ':path': new URL(url).pathname });
    const chunks = [];
    let status = 0;
    req.on('response', (headers) => { status = headers[':status']; });
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('error', (e) => errors.push(`stream ${i}: ${e.code || e.message}`));
    req.on('close', () => {
      if (status) {
        statuses[status] = (statuses[status] || 0) + 1;
        const body = Buffer.concat(chunks).toString('latin1');
        if (firstBody === null) firstBody = body;
        if (body === firstBody) sameBody++;
      }
      if (++done === count) finish();
    });
    req.end();
  }
});
