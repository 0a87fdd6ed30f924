// POST with a JSON body over HTTPS/1.1 keep-alive against the appliance in DIRECT mode (it answers every method
// with 200 and reads and discards the body; a proxied POST to the static bench origin would get 405).
//   perf/bench-start.sh direct 8443 CERT KEY none /tmp/post
//   k6 run -e BASE_URL=https://127.0.0.1:8443 -e BODY_BYTES=1024 perf/k6/post-body.js
// Optional: -e VUS=64 -e DURATION=10s
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.BASE_URL || 'https://127.0.0.1:8443';
const SIZE = Number(__ENV.BODY_BYTES || 1024);
const BODY = JSON.stringify({ data: 'x'.repeat(Math.max(0, SIZE - 11)) }).slice(0, SIZE);

export const options = {
  insecureSkipTLSVerify: true,
  scenarios: {
    post: {
      executor: 'constant-vus',
      vus: Number(__ENV.VUS || 64),
      duration: __ENV.DURATION || '10s',
    },
  },
  thresholds: {
    checks: ['rate==1'],
    http_req_failed: ['rate==0'],
  },
  summaryTrendStats: ['avg', 'p(50)', 'p(90)', 'p(99)', 'p(99.9)', 'max'],
};

export default function () {
  const res = http.post(`${BASE}/`, BODY, { headers: { Host: 'localhost', 'Content-Type': 'application/json' } });
  check(res, { 'status 200': (r) => r.status === 200 });
}
