// Syntax and shape check of the k6 scripts without k6 (AGPL; not installable here):
//   node perf/k6/check.mjs [perf/k6/*.js]
// Each script is copied with its k6 imports pointed at tiny stand-ins, imported as an ES module (so it must
// parse), its options.scenarios are checked against the executors' required fields, and its default function
// runs once against a stub http that answers 200 "Hello, World!" (so the code paths at least execute).
import { mkdtempSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, basename } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const files = process.argv.slice(2).length ? process.argv.slice(2)
  : readdirSync(here).filter((f) => f.endsWith('.js')).map((f) => join(here, f));
const dir = mkdtempSync(join(tmpdir(), 'k6check-'));
writeFileSync(join(dir, 'k6.mjs'), `export function check(v, sets) { for (const f of Object.values(sets)) f(v); return true; }
export function sleep() {}
export function group(n, f) { return f(); }`);
writeFileSync(join(dir, 'k6-http.mjs'), `const res = (url) => ({ status: 200, proto: 'HTTP/2.0', body: url.endsWith('/16k') ? 'x'.repeat(16384) : 'Hello, World!' });
globalThis.__calls = [];
const rec = (m) => (url, ...a) => { globalThis.__calls.push([m, url]); return res(url); };
const batch = (reqs) => reqs.map((r) => (Array.isArray(r) ? rec(r[0])(r[1]) : rec(r.method)(r.url)));
export default { get: rec('GET'), post: rec('POST'), put: rec('PUT'), del: rec('DELETE'), request: (m, u) => rec(m)(u), batch };`);
globalThis.__ENV = {};
globalThis.__VU = 1;
globalThis.__ITER = 0;
const needs = {
  'constant-vus': ['vus', 'duration'],
  'constant-arrival-rate': ['rate', 'timeUnit', 'duration', 'preAllocatedVUs'],
  'ramping-arrival-rate': ['stages', 'preAllocatedVUs'],
  'per-vu-iterations': ['vus', 'iterations'],
};
let failed = 0;
for (const f of files) {
  const src = readFileSync(f, 'utf8')
    .replace(/from 'k6\/http'/g, "from './k6-http.mjs'")
    .replace(/from 'k6'/g, "from './k6.mjs'");
  const copy = join(dir, basename(f).replace(/\.js$/, '.mjs'));
  writeFileSync(copy, src);
  try {
    const m = await import(pathToFileURL(copy).href);
    const sc = m.options?.scenarios ?? {};
    if (!Object.keys(sc).length) throw new Error('no options.scenarios');
    for (const [name, s] of Object.entries(sc)) {
      const req = needs[s.executor];
      if (!req) throw new Error(`scenario ${name}: unknown executor ${s.executor}`);
      for (const k of req) if (s[k] === undefined || Number.isNaN(s[k])) throw new Error(`scenario ${name}: ${k} missing`);
    }
    globalThis.__calls = [];
    m.default();
    if (!globalThis.__calls.length) throw new Error('default function made no request');
    console.log(`ok   ${basename(f)}: ${Object.entries(sc).map(([n, s]) => `${n}=${s.executor}`).join(', ')}; ` +
      `${[...new Set(globalThis.__calls.map((c) => c.join(' ')))].map((c) => `${c} ×${globalThis.__calls.filter((x) => x.join(' ') === c).length}`).join(', ')}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${basename(f)}: ${e.message}`);
  }
}
process.exit(failed ? 1 : 0);
