#!/usr/bin/env node
// WebSocket echo server (plain HTTP) used as the upstream in the WebSocket proxy tests.
//
// Usage: node ws_echo_server.js
// Listens on 127.0.0.1 on a free port and prints one line "PORT <n>" once listening. Every message is echoed back
// with its type kept (text as text, binary as binary); the text message "close-me" closes with code 4000, reason
// "bye" instead. A plain (non-upgrade) HTTP request gets 200 "plain". Exits when stdin closes.
'use strict';

const http = require('node:http');
const { WebSocketServer } = require('ws');

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('plain');
});
const wss = new WebSocketServer({ server, maxPayload: 64 * 1024 * 1024 });

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.toString() === 'close-me') {
      ws.close(4000, 'bye');
      return;
    }
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', (e) => console.error(`ws error: ${e.message}`));
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
