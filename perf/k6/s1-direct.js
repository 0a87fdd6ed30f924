// S1: HTTPS/1.1 keep-alive, DIRECT, GET / → 13-byte "Hello, World!", 64 closed-loop users (the harness uses wrk
// -t1 -c64; k6 costs far more CPU per request than wrk, so on a 2-core box its req/s measure k6, not the server).
// Start the appliance:  perf/bench-start.sh direct 8443 CERT KEY none /tmp/s1
// Run:                  k6 run -e BASE_URL=https://127.0.0.1:8443 perf/k6/s1-direct.js
// Optional: -e VUS=64 -e DURATION=10s
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.BASE_URL || 'https://127.0.0.1:8443';

export const options = {
  insecureSkipTLSVerify: true, // the bench certificate is self-signed
  discardResponseBodies: false,
  scenarios: {
    s1: {
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
  const res = http.get(`${BASE}/`, { headers: { Host: 'localhost' } });
  check(res, {
    'status 200': (r) => r.status === 200,
    'body is Hello, World!': (r) => r.body === 'Hello, World!',
  });
}
