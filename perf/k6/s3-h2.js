// S3: HTTP/2 over TLS, direct or proxy. k6 negotiates h2 by ALPN, one connection per VU; http.batch() sends a
// VU's requests at once, as concurrent streams on that connection: 16 VUs × 32 requests per batch is the shape
// of the harness's h2load -t1 -c16 -m32 (h2load keeps 32 in flight all the time; a batch waits for its slowest
// answer before the next one starts).
//   perf/bench-start.sh direct 8443 CERT KEY none /tmp/s3           (or proxy … 127.0.0.1:9000 …)
//   k6 run -e BASE_URL=https://127.0.0.1:8443 perf/k6/s3-h2.js
// Optional: -e VUS=16 -e STREAMS=32 -e DURATION=10s -e URL_PATH=/
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.BASE_URL || 'https://127.0.0.1:8443';
const PATH = __ENV.URL_PATH || '/';
const STREAMS = Number(__ENV.STREAMS || 32);
const REQUESTS = Array.from({ length: STREAMS }, () => ['GET', `${BASE}${PATH}`, null, { headers: { Host: 'localhost' } }]);

export const options = {
  insecureSkipTLSVerify: true,
  scenarios: {
    s3: {
      executor: 'constant-vus',
      vus: Number(__ENV.VUS || 16),
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
  const responses = http.batch(REQUESTS);
  for (const res of responses) {
    check(res, {
      'status 200': (r) => r.status === 200,
      'over HTTP/2': (r) => r.proto === 'HTTP/2.0',
    });
  }
}
