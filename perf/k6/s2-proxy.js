// S2: HTTPS/1.1 keep-alive, PROXY to the bench origin (nginx on 127.0.0.1:9000: / → 13 B, /16k → 16,384 B).
// Start the origin and the appliance:
//   /tmp/bench/contestants/backend/start.sh 127.0.0.1:9000 /tmp/origin &
//   perf/bench-start.sh proxy 8443 CERT KEY 127.0.0.1:9000 /tmp/s2
// Run, 13 B and 16 KiB:
//   k6 run -e BASE_URL=https://127.0.0.1:8443 -e URL_PATH=/ perf/k6/s2-proxy.js
//   k6 run -e BASE_URL=https://127.0.0.1:8443 -e URL_PATH=/16k perf/k6/s2-proxy.js
// Optional: -e VUS=64 -e DURATION=8s
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.BASE_URL || 'https://127.0.0.1:8443';
const PATH = __ENV.URL_PATH || '/';
const EXPECT = { '/': 13, '/16k': 16384 }[PATH];

export const options = {
  insecureSkipTLSVerify: true,
  scenarios: {
    s2: {
      executor: 'constant-vus',
      vus: Number(__ENV.VUS || 64),
      duration: __ENV.DURATION || '8s',
    },
  },
  thresholds: {
    checks: ['rate==1'],
    http_req_failed: ['rate==0'],
  },
  summaryTrendStats: ['avg', 'p(50)', 'p(90)', 'p(99)', 'p(99.9)', 'max'],
};

export default function () {
  const res = http.get(`${BASE}${PATH}`, { headers: { Host: 'localhost' } });
  check(res, {
    'status 200': (r) => r.status === 200,
    'body length as served by the origin': (r) => EXPECT === undefined || r.body.length === EXPECT,
  });
}
