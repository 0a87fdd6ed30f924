#!/usr/bin/python3
"""Config apply latency and its effect on live traffic.
1) Time from PUT /v1/config on the admin socket to the new route answering on a kept-alive HTTPS
   connection (median and max of N applies, idle server).
2) wrk p99 latency for a fixed time without applies, then with N applies spread over the same time.
Usage: perf/apply-latency.py CERT KEY [N]"""
import http.client, json, os, socket, ssl, statistics, subprocess, sys, tempfile, time

cert, key = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 20
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
run = tempfile.mkdtemp()
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
proc = subprocess.Popen([f"{root}/perf/bench-start.sh", "direct", str(port), cert, key, "none", run],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
sock_path = os.path.join(run, "admin.sock")

class UnixHTTPConnection(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(sock_path)

def admin(method, path, body=None):
    c = UnixHTTPConnection("appliance")
    c.request(method, path, body=body)
    r = c.getresponse(); data = r.read(); c.close()
    return r.status, data

deadline = time.time() + 60
while not os.path.exists(sock_path) and time.time() < deadline:
    time.sleep(0.05)
ctx = ssl._create_unverified_context()
web = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
def get():
    web.request("GET", "/"); return web.getresponse().read().decode()

config = json.loads(admin("GET", "/v1/config")[1])
times = []
for i in range(n):
    body = f"Hello {i}"
    config["routes"][0]["direct"]["body"] = body
    t0 = time.perf_counter()
    status, _ = admin("PUT", "/v1/config", json.dumps(config))
    assert status == 200, status
    while get() != body:
        pass
    times.append((time.perf_counter() - t0) * 1000)
print(f"apply → new route answering: median {statistics.median(times):.1f} ms, max {max(times):.1f} ms over {n} applies (idle server)")

def wrk(seconds, applies):
    load = subprocess.Popen(["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency", f"https://127.0.0.1:{port}/"], stdout=subprocess.PIPE, text=True)
    for i in range(applies):
        time.sleep(seconds / (applies + 1))
        config["routes"][0]["direct"]["body"] = f"Load {i}"
        admin("PUT", "/v1/config", json.dumps(config))
    out, _ = load.communicate()
    p99 = next((l.split()[1] for l in out.splitlines() if l.strip().startswith("99%")), "?")
    rps = next((l.split()[1] for l in out.splitlines() if l.startswith("Requests/sec")), "?")
    bad = [l.strip() for l in out.splitlines() if "Socket errors" in l or "Non-2xx" in l]
    return p99, rps, bad
for label, applies in (("no applies", 0), (f"{n} applies", n)):
    p99, rps, bad = wrk(6, applies)
    print(f"wrk -t1 -c16 6s, {label}: p99 {p99}, {rps} req/s, errors: {bad or 'none'}")
proc.terminate(); proc.wait()
