// S8: 10,000 concurrent TLS keep-alive connections held with a trickle of requests: each VU keeps one
// connection, makes its first request at a random moment within the first interval (no opening burst), then
// one every EVERY seconds. Expect no failed request; read the server's VmRSS meanwhile.
//   perf/bench-start.sh direct 8443 CERT KEY none /tmp/s8
//   ulimit -n 65536
//   k6 run -e BASE_URL=https://127.0.0.1:8443 -e CONNS=10000 -e EVERY=10 -e DURATION=40s perf/k6/s8-held.js
// (perf/run.sh S8 measures the same with perf/lib/openloop, which also reports RSS idle/open/peak.)
import http from 'k6/http';
import { check, sleep } from 'k6';

const BASE = __ENV.BASE_URL || 'https://127.0.0.1:8443';
const EVERY = Number(__ENV.EVERY || 10);

export const options = {
  insecureSkipTLSVerify: true,
  scenarios: {
    s8: {
      executor: 'constant-vus',
      vus: Number(__ENV.CONNS || 10000),
      duration: __ENV.DURATION || '40s',
      gracefulStop: `${EVERY + 5}s`,
    },
  },
  thresholds: {
    checks: ['rate==1'],
    http_req_failed: ['rate==0'],
  },
  summaryTrendStats: ['p(50)', 'p(90)', 'p(99)', 'p(99.9)', 'max'],
};

export default function () {
  if (__ITER === 0) {
    sleep(Math.random() * EVERY);
  }
  const res = http.get(`${BASE}/`, { headers: { Host: 'localhost' } });
  check(res, { 'status 200': (r) => r.status === 200 });
  sleep(EVERY);
}
