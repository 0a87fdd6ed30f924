// S6: memory per idle TLS keep-alive connection. Each VU makes one request (its own connection and handshake),
// then sleeps while holding the connection: the server keeps CONNS idle keep-alive connections for HOLD seconds
// while you read its memory.
//   perf/bench-start.sh direct 8443 CERT KEY none /tmp/s6
//   ulimit -n 65536
//   grep VmRSS /proc/$(pgrep -f /tmp/s6/appliance.json)/status            # before
//   k6 run -e BASE_URL=https://127.0.0.1:8443 -e CONNS=5000 -e HOLD=30 perf/k6/s6-idle.js &
//   sleep 20; grep VmRSS /proc/$(pgrep -f /tmp/s6/appliance.json)/status  # while held: (after - before) / CONNS
// k6 needs several GB of memory for 5,000 VUs; perf/run.sh S6 uses the bench's lib/idle_conns instead.
import http from 'k6/http';
import { check, sleep } from 'k6';

const BASE = __ENV.BASE_URL || 'https://127.0.0.1:8443';
const HOLD = Number(__ENV.HOLD || 30);

export const options = {
  insecureSkipTLSVerify: true,
  scenarios: {
    s6: {
      executor: 'per-vu-iterations',
      vus: Number(__ENV.CONNS || 5000),
      iterations: 1,
      maxDuration: `${HOLD + 60}s`,
    },
  },
  thresholds: {
    checks: ['rate==1'],
    http_req_failed: ['rate==0'],
  },
};

export default function () {
  const res = http.get(`${BASE}/`, { headers: { Host: 'localhost' } });
  check(res, { 'status 200': (r) => r.status === 200 });
  sleep(HOLD); // the connection stays open and idle in the VU's transport
}
