// S4: full TLS handshakes. noConnectionReuse gives every request a new TCP connection and TLS handshake, and
// k6's TLS client (Go's crypto/tls) keeps no session between connections, so none of them resumes: iterations
// per second are full handshakes per second (plus one 13 B request each). Run the server with an ECDSA P-256 or
// an RSA-2048 certificate to get either half of S4.
//   perf/bench-start.sh direct 8443 CERT KEY none /tmp/s4
//   k6 run -e BASE_URL=https://127.0.0.1:8443 perf/k6/s4-full-handshakes.js
// Optional: -e VUS=4 -e DURATION=10s. Check that none resumed (the "resumed" count stays put):
//   curl -s --unix-socket /tmp/s4/admin.sock http://a/v1/metrics | grep tls_handshakes_total
// S5 (resumed handshakes) needs a client that offers its session: perf/wrk/s5-resumed.lua.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.BASE_URL || 'https://127.0.0.1:8443';

export const options = {
  insecureSkipTLSVerify: true,
  noConnectionReuse: true,
  scenarios: {
    s4: {
      executor: 'constant-vus',
      vus: Number(__ENV.VUS || 4),
      duration: __ENV.DURATION || '10s',
    },
  },
  thresholds: {
    checks: ['rate==1'],
    http_req_failed: ['rate==0'],
  },
  summaryTrendStats: ['avg', 'p(50)', 'p(90)', 'p(99)', 'max'],
};

export default function () {
  const res = http.get(`${BASE}/`, { headers: { Host: 'localhost' } });
  check(res, {
    'status 200': (r) => r.status === 200,
    'body 13 B': (r) => r.body.length === 13,
  });
}
