// Stand-in for the LLM providers that cannot run here: it speaks their documented wire formats exactly
// (Anthropic Messages at POST /v1/messages; Gemini at POST /v1beta/models/{model}:generateContent and
// :streamGenerateContent?alt=sse; OpenAI chat completions at POST /v1/chat/completions), checks the headers and
// required members each API requires, and answers by the last user message's text:
//   "weather"  a tool call get_weather({"location": "Paris"}) (Gemini's with a thought signature)
//   "two cities" (Anthropic, whole answers) two parallel calls, for Paris and Rome
//   "overload" Anthropic 529 overloaded_error / Gemini 503 UNAVAILABLE / OpenAI 503
//   "break"    a stream that starts, then the connection is destroyed
//   "break early" (streams) the headers, then the connection is destroyed before any event
//   "overload in stream" (Anthropic, streamed) 200, then an overloaded_error event as the first event
//   "slow"     headers never come
//   "slow after start" (Anthropic, streamed) the first text, then nothing more
//   anything else: "You said: <text>" (in two pieces when streamed)
// GET /__last returns the last request it received: {method, path, headers, body}. GET /__hung?atLeast=N and
// GET /__abandoned?atLeast=N answer {hung, abandoned} once that many "slow" requests were received (hung) and were
// closed by the gateway before their answer ended (abandoned), or after 20 s. Prints "PORT n"; exits when stdin closes.
'use strict';
const http = require('node:http');

const KEYS = { anthropic: 'test-anthropic-key', gemini: 'test-gemini-key', openai: 'test-openai-key' };
let last = null;
let hung = 0;
let abandoned = 0;
let waiters = [];

function counted() {
  const now = waiters;
  waiters = [];
  for (const w of now) w();
}

// A request left unanswered: counted, and counted again if the gateway closes it before its answer ends.
function hang(res) {
  hung++;
  res.on('close', () => {
    if (!res.writableEnded) {
      abandoned++;
      counted();
    }
  });
  counted();
}

function waitFor(which, atLeast, res) {
  let given = false;
  const give = () => {
    if (given) return;
    given = true;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ hung, abandoned }));
  };
  const timer = setTimeout(give, 20000);
  const check = () => {
    if (given) return;
    if ((which === 'hung' ? hung : abandoned) >= atLeast) {
      clearTimeout(timer);
      give();
    } else waiters.push(check);
  };
  check();
}

function lastUserText(messages, kind) {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m.role !== 'user') continue;
    if (kind === 'gemini') {
      const part = (m.parts || []).find((p) => typeof p.text === 'string');
      if (part) return part.text;
      continue;
    }
    if (typeof m.content === 'string') return m.content;
    const block = (m.content || []).find((b) => b.type === 'text');
    if (block) return block.text;
  }
  return '';
}

function sse(res, events) {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  for (const e of events) res.write(e);
}

function anthropic(req, res, body) {
  const error = (status, type, message) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ type: 'error', error: { type, message } }));
  };
  if (req.headers['x-api-key'] !== KEYS.anthropic) return error(401, 'authentication_error', 'invalid x-api-key');
  if (!req.headers['anthropic-version']) return error(400, 'invalid_request_error', 'anthropic-version: header is required');
  if (typeof body.model !== 'string' || !Number.isInteger(body.max_tokens) || !Array.isArray(body.messages) || body.messages.length === 0)
    return error(400, 'invalid_request_error', 'model, max_tokens and messages are required');
  // As the Messages API checks: every tool_use block is answered by a tool_result block at the start of the very
  // next (user) message.
  for (let i = 0; i < body.messages.length; i++) {
    const m = body.messages[i];
    const uses = Array.isArray(m.content) ? m.content.filter((b) => b.type === 'tool_use').map((b) => b.id) : [];
    if (uses.length === 0) continue;
    const next = body.messages[i + 1];
    const blocks = next && next.role === 'user' && Array.isArray(next.content) ? next.content : [];
    const results = [];
    for (const b of blocks) { if (b.type !== 'tool_result') break; results.push(b.tool_use_id); }
    if (uses.some((id) => !results.includes(id)))
      return error(400, 'invalid_request_error', `messages.${i + 1}: tool_use ids were found without tool_result blocks immediately after: ${uses.join(', ')}`);
  }
  const text = lastUserText(body.messages, 'anthropic');
  if (text === 'overload') return error(529, 'overloaded_error', 'Overloaded');
  if (body.stream && text === 'overload in stream') {
    sse(res, [`event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } })}\n\n`]);
    return res.end();
  }
  if (body.stream && text === 'break early') {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.flushHeaders();
    return setTimeout(() => res.socket.destroy(), 50);
  }
  if (text === 'slow') return hang(res);
  const id = 'msg_01XFDUDYJgAACzvnptvVoYEL';
  const usage = { input_tokens: 12, output_tokens: 6 };
  const weather = text === 'weather';
  const reply = `You said: ${text}`;
  if (body.stream && text === 'slow after start') {
    sse(res, [
      `event: message_start\ndata: ${JSON.stringify({ type: 'message_start', message: { id, type: 'message', role: 'assistant', model: body.model, content: [], stop_reason: null, usage } })}\n\n`,
      `event: content_block_start\ndata: ${JSON.stringify({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } })}\n\n`,
      `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Thinking it over' } })}\n\n`,
    ]);
    return hang(res);
  }
  if (!body.stream) {
    res.writeHead(200, { 'content-type': 'application/json' });
    const content = weather
      ? [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id: 'toolu_01A09q90qw90lq917835lq9', name: 'get_weather', input: { location: 'Paris' } }]
      : text === 'two cities'
        ? [{ type: 'tool_use', id: 'toolu_paris', name: 'get_weather', input: { location: 'Paris' } },
          { type: 'tool_use', id: 'toolu_rome', name: 'get_weather', input: { location: 'Rome' } }]
        : [{ type: 'text', text: reply }];
    return res.end(JSON.stringify({ id, type: 'message', role: 'assistant', model: body.model, content,
      stop_reason: weather || text === 'two cities' ? 'tool_use' : 'end_turn', stop_sequence: null, usage }));
  }
  const ev = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  const events = [
    ev('message_start', { message: { id, type: 'message', role: 'assistant', content: [], model: body.model, stop_reason: null, stop_sequence: null, usage: { input_tokens: 12, output_tokens: 1 } } }),
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    ev('ping', {}),
  ];
  if (weather) {
    events.push(ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Checking.' } }),
      ev('content_block_stop', { index: 0 }),
      ev('content_block_start', { index: 1, content_block: { type: 'tool_use', id: 'toolu_01A09q90qw90lq917835lq9', name: 'get_weather', input: {} } }),
      ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: '{"location":' } }),
      ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: ' "Paris"}' } }),
      ev('content_block_stop', { index: 1 }),
      ev('message_delta', { delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 6 } }),
      ev('message_stop', {}));
  } else {
    events.push(ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: reply.slice(0, 5) } }),
      ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: reply.slice(5) } }));
    if (text === 'break') {
      sse(res, events);
      return setTimeout(() => res.socket.destroy(), 50);
    }
    events.push(ev('content_block_stop', { index: 0 }),
      ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 6 } }),
      ev('message_stop', {}));
  }
  sse(res, events);
  res.end();
}

function gemini(req, res, body, model, method) {
  const error = (status, code, message) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: status, message, status: code } }));
  };
  if (req.headers['x-goog-api-key'] !== KEYS.gemini) return error(403, 'PERMISSION_DENIED', 'API key not valid.');
  if (!Array.isArray(body.contents) || body.contents.length === 0) return error(400, 'INVALID_ARGUMENT', 'contents is required');
  const text = lastUserText(body.contents, 'gemini');
  if (text === 'overload') return error(503, 'UNAVAILABLE', 'The model is overloaded. Please try again later.');
  if (text === 'slow') return hang(res);
  const reply = `You said: ${text}`;
  const base = { modelVersion: model, responseId: 'mV5xaOyKBvCb7dcP_aXx8AQ' };
  const usage = { promptTokenCount: 12, candidatesTokenCount: 6, totalTokenCount: 18 };
  const weather = text === 'weather';
  const call = { functionCall: { name: 'get_weather', args: { location: 'Paris' } }, thoughtSignature: 'CiIBVKhc7oDPpCaXyJKKssjqr4g3+/JNOSgWi==' };
  if (method === 'generateContent') {
    res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
    const parts = weather ? [call] : [{ text: reply }];
    return res.end(JSON.stringify({ candidates: [{ content: { parts, role: 'model' }, finishReason: 'STOP', index: 0 }], usageMetadata: usage, ...base }));
  }
  const ev = (obj) => `data: ${JSON.stringify(obj)}\r\n\r\n`;
  if (weather) {
    sse(res, [ev({ candidates: [{ content: { parts: [call], role: 'model' }, finishReason: 'STOP', index: 0 }], usageMetadata: usage, ...base })]);
    return res.end();
  }
  const events = [ev({ candidates: [{ content: { parts: [{ text: reply.slice(0, 5) }], role: 'model' }, index: 0 }], usageMetadata: { promptTokenCount: 12, totalTokenCount: 12 }, ...base })];
  if (text === 'break') {
    sse(res, events);
    return setTimeout(() => res.socket.destroy(), 50);
  }
  events.push(ev({ candidates: [{ content: { parts: [{ text: reply.slice(5) }], role: 'model' }, finishReason: 'STOP', index: 0 }], usageMetadata: usage, ...base }));
  sse(res, events);
  res.end();
}

function openai(req, res, body) {
  const error = (status, type, message) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message, type, param: null, code: null } }));
  };
  if (req.headers.authorization !== `Bearer ${KEYS.openai}`) return error(401, 'invalid_request_error', 'Incorrect API key provided.');
  const text = lastUserText(body.messages || [], 'openai');
  if (text === 'overload') return error(503, 'server_error', 'The server is overloaded.');
  if (body.stream && text === 'break early') {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.flushHeaders();
    return setTimeout(() => res.socket.destroy(), 50);
  }
  if (text === 'slow') return hang(res);
  const reply = `You said: ${text}`;
  const head = { id: 'chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT', created: 1741569952, model: body.model, system_fingerprint: 'fp_123' };
  if (!body.stream) {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify({ ...head, object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content: reply, refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: 12, completion_tokens: 6, total_tokens: 18 } }));
  }
  const chunk = (delta, finish) => `data: ${JSON.stringify({ ...head, object: 'chat.completion.chunk', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
  sse(res, [chunk({ role: 'assistant', content: '', refusal: null }, null), chunk({ content: reply.slice(0, 5) }, null)]);
  if (text === 'break') return setTimeout(() => res.socket.destroy(), 50);
  res.write(chunk({ content: reply.slice(5) }, null));
  res.write(chunk({}, 'stop'));
  if (body.stream_options && body.stream_options.include_usage)
    res.write(`data: ${JSON.stringify({ ...head, object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 12, completion_tokens: 6, total_tokens: 18 } })}\n\n`);
  res.end('data: [DONE]\n\n');
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const url = new URL(req.url, 'http://x');
    if (req.method === 'GET' && (url.pathname === '/__hung' || url.pathname === '/__abandoned'))
      return waitFor(url.pathname.slice(3), Number(url.searchParams.get('atLeast') || 0), res);
    if (req.method === 'GET' && url.pathname === '/__last') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify(last));
    }
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ error: { message: 'body is not JSON' } }));
    }
    last = { method: req.method, path: req.url, headers: req.headers, body };
    if (req.method === 'POST' && url.pathname === '/v1/messages') return anthropic(req, res, body);
    const g = url.pathname.match(/^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent)$/);
    if (req.method === 'POST' && g) {
      if (g[2] === 'streamGenerateContent' && url.searchParams.get('alt') !== 'sse') {
        res.writeHead(400);
        return res.end();
      }
      return gemini(req, res, body, decodeURIComponent(g[1]), g[2]);
    }
    if (req.method === 'POST' && url.pathname === '/v1/chat/completions') return openai(req, res, body);
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: `no route ${req.method} ${url.pathname}` } }));
  });
});

server.listen(0, '127.0.0.1', () => {
  console.log(`PORT ${server.address().port}`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
