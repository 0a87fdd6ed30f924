// S7: p99 latency at a fixed request rate below saturation, HTTPS/1.1 keep-alive, direct or proxy. k6's
// constant-arrival-rate executor is open-loop: iterations start on schedule whether or not earlier ones have
// finished, and the ones it could not start (all VUs busy) are counted in dropped_iterations — which must stay
// 0 for the p99 to mean anything. (perf/lib/openloop does the same in C, and is what perf/run.sh S7 uses.)
//   perf/bench-start.sh direct 8443 CERT KEY none /tmp/s7      (or proxy … 127.0.0.1:9000 …)
//   k6 run -e BASE_URL=https://127.0.0.1:8443 -e RATE=5000 -e VUS=64 -e DURATION=10s perf/k6/s7-fixed-rate.js
// k6 needs about one core for 5,000 req/s; on the 2-core bench box prefer perf/lib/openloop.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.BASE_URL || 'https://127.0.0.1:8443';
const PATH = __ENV.URL_PATH || '/';
const VUS = Number(__ENV.VUS || 64);

export const options = {
  insecureSkipTLSVerify: true,
  scenarios: {
    s7: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE || 5000),
      timeUnit: '1s',
      duration: __ENV.DURATION || '10s',
      preAllocatedVUs: VUS, // one keep-alive connection per VU
      maxVUs: VUS,
    },
  },
  thresholds: {
    dropped_iterations: ['count==0'],
    http_req_failed: ['rate==0'],
    http_req_duration: [`p(99)<${__ENV.P99_MS || 50}`],
  },
  summaryTrendStats: ['p(50)', 'p(90)', 'p(99)', 'p(99.9)', 'max'],
};

export default function () {
  const res = http.get(`${BASE}${PATH}`, { headers: { Host: 'localhost' } });
  check(res, { 'status 200': (r) => r.status === 200 });
}
