#!/usr/bin/env node
// gRPC server (insecure, HTTP/2 cleartext) used as the upstream in the gRPC proxy tests; implements echo.proto.
//
// Usage: node grpc_server.js
// Binds 127.0.0.1 on a free port and prints one line "PORT <n>". Unary echoes the message with initial metadata
// x-initial: yes and trailer x-trailer: done; ServerStream sends n messages "<text>-<i>"; ClientStream answers the
// texts joined by ","; Bidi echoes each message; Fail returns NOT_FOUND "nothing here". Exits when stdin closes.
'use strict';

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const def = protoLoader.loadSync(path.join(__dirname, 'echo.proto'), { keepCase: true, defaults: true });
const { Echo } = grpc.loadPackageDefinition(def).test;

const server = new grpc.Server({
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
});

server.addService(Echo.service, {
  Unary(call, callback) {
    const initial = new grpc.Metadata();
    initial.set('x-initial', 'yes');
    call.sendMetadata(initial);
    const trailer = new grpc.Metadata();
    trailer.set('x-trailer', 'done');
    callback(null, call.request, trailer);
  },
  ServerStream(call) {
    const { text, n } = call.request;
    for (let i = 0; i < n; i++) call.write({ text: `${text}-${i}`, n: i });
    call.end();
  },
  ClientStream(call, callback) {
    const texts = [];
    call.on('data', (m) => texts.push(m.text));
    call.on('end', () => callback(null, { text: texts.join(','), n: texts.length }));
  },
  Bidi(call) {
    call.on('data', (m) => call.write(m));
    call.on('end', () => call.end());
  },
  Fail(call, callback) {
    callback({ code: grpc.status.NOT_FOUND, details: 'nothing here' });
  },
});

server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.error(`bind failed: ${err.message}`);
    process.exit(1);
  }
  process.stdout.write(`PORT ${port}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
