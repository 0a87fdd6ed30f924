// A client of the gateway through the official OpenAI SDK: node openai_chat.js BASE_URL API_KEY 'REQUEST_JSON'.
// A request with "stream": true is read through the SDK's stream helper (chat.completions.stream), which also
// accumulates the chunks into the completion a client would keep. "models" as the request lists the models.
// Prints {"completion": …} | {"chunks": […], "final": …} | {"models": […]} | {"error": {status, type, code, param, message}}.
'use strict';
const OpenAI = require('openai');

async function main() {
  const [baseURL, apiKey, json] = process.argv.slice(2);
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 30000 });
  const out = {};
  try {
    if (json === 'models') {
      out.models = [];
      for await (const model of client.models.list()) out.models.push(model);
    } else {
      const request = JSON.parse(json);
      if (request.stream) {
        const { stream, ...rest } = request;
        const helper = client.chat.completions.stream(rest);
        out.chunks = [];
        helper.on('chunk', (chunk) => out.chunks.push(chunk));
        out.final = await helper.finalChatCompletion();
      } else {
        out.completion = await client.chat.completions.create(request);
      }
    }
  } catch (e) {
    out.error = { name: e.constructor.name, status: e.status ?? null, type: e.type ?? null, code: e.code ?? null, param: e.param ?? null, message: e.message };
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
