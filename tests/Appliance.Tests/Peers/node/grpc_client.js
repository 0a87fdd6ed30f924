#!/usr/bin/env node
// gRPC client (insecure, HTTP/2 cleartext) used in the gRPC proxy tests; calls every method of echo.proto.
//
// Usage: node grpc_client.js HOST:PORT
// Runs Unary (with a 1 MiB blob; checks initial metadata x-initial and trailer x-trailer), ServerStream (n=100),
// ClientStream (50 messages), Bidi (20 messages) and Fail (expects NOT_FOUND "nothing here"). Prints one JSON line;
// exits 0 if every check passed, 1 otherwise (including the 15 s overall deadline).
'use strict';

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const target = process.argv[2];
let done = false;

function finish(ok, result) {
  if (done) return;
  done = true;
  process.stdout.write(JSON.stringify(ok ? { ok: true, ...result } : { ok: false, error: String(result) }) + '\n');
  process.exit(ok ? 0 : 1);
}

if (!target) finish(false, 'usage: grpc_client.js HOST:PORT');
setTimeout(() => finish(false, 'timeout after 15 s'), 15_000).unref();

const def = protoLoader.loadSync(path.join(__dirname, 'echo.proto'), { keepCase: true, defaults: true });
const { Echo } = grpc.loadPackageDefinition(def).test;
const client = new Echo(target, grpc.credentials.createInsecure(), {
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
});

function check(cond, message) {
  if (!cond) throw new Error(message);
}

function unary() {
  const blob = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < blob.length; i++) blob[i] = i % 251;
  return new Promise((resolve, reject) => {
    let initial = null;
    let trailer = null;
    let reply = null;
    let pending = 2; // the reply callback and the 'status' event
    const settle = () => {
      if (--pending) return;
      try {
        check(reply.text === 'unary' && reply.n === 7, `Unary: bad reply ${reply.text}/${reply.n}`);
        check(Buffer.from(reply.blob).equals(blob), `Unary: blob differs (${reply.blob.length} bytes)`);
        check(initial === 'yes', `Unary: x-initial was ${initial}`);
        check(trailer === 'done', `Unary: x-trailer was ${trailer}`);
        resolve({ unary: true, blobBytes: reply.blob.length, initial, trailer });
      } catch (e) {
        reject(e);
      }
    };
    const call = client.Unary({ text: 'unary', n: 7, blob }, (err, res) => {
      if (err) return reject(new Error(`Unary: ${err.code} ${err.details}`));
      reply = res;
      settle();
    });
    call.on('metadata', (md) => { initial = md.get('x-initial')[0] ?? null; });
    call.on('status', (status) => {
      trailer = status.metadata.get('x-trailer')[0] ?? null;
      settle();
    });
  });
}

function serverStream() {
  return new Promise((resolve, reject) => {
    const texts = [];
    const call = client.ServerStream({ text: 'ss', n: 100 });
    call.on('data', (m) => texts.push(m.text));
    call.on('error', (e) => reject(new Error(`ServerStream: ${e.code} ${e.details}`)));
    call.on('end', () => {
      const want = Array.from({ length: 100 }, (_, i) => `ss-${i}`);
      if (texts.join('|') !== want.join('|')) return reject(new Error(`ServerStream: got ${texts.length} messages, wrong content`));
      resolve({ serverStream: texts.length });
    });
  });
}

function clientStream() {
  return new Promise((resolve, reject) => {
    const want = Array.from({ length: 50 }, (_, i) => `c${i}`);
    const call = client.ClientStream((err, res) => {
      if (err) return reject(new Error(`ClientStream: ${err.code} ${err.details}`));
      if (res.text !== want.join(',')) return reject(new Error(`ClientStream: got "${res.text.slice(0, 80)}"`));
      resolve({ clientStream: want.length });
    });
    for (const text of want) call.write({ text });
    call.end();
  });
}

function bidi() {
  return new Promise((resolve, reject) => {
    const want = Array.from({ length: 20 }, (_, i) => `b${i}`);
    const got = [];
    const call = client.Bidi();
    call.on('data', (m) => got.push(m.text));
    call.on('error', (e) => reject(new Error(`Bidi: ${e.code} ${e.details}`)));
    call.on('end', () => {
      if (got.join('|') !== want.join('|')) return reject(new Error(`Bidi: got ${got.length} messages, wrong content`));
      resolve({ bidi: got.length });
    });
    for (const text of want) call.write({ text });
    call.end();
  });
}

function fail() {
  return new Promise((resolve, reject) => {
    client.Fail({ text: 'x' }, (err) => {
      if (!err) return reject(new Error('Fail: call succeeded'));
      if (err.code !== grpc.status.NOT_FOUND || err.details !== 'nothing here') {
        return reject(new Error(`Fail: got ${err.code} "${err.details}", want 5 "nothing here"`));
      }
      resolve({ failCode: err.code, failDetails: err.details });
    });
  });
}

(async () => {
  const result = {};
  for (const step of [unary, serverStream, clientStream, bidi, fail]) Object.assign(result, await step());
  client.close();
  finish(true, result);
})().catch((e) => finish(false, e.message));
