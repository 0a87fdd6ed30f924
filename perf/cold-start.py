#!/usr/bin/python3
"""Cold start to READY=1: starts the appliance with NOTIFY_SOCKET pointing at a socket of ours and times
exec → READY=1 (every listener bound, config loaded), N times; prints min/median/max in ms.
  perf/cold-start.py [BINARY] [RUNS]      (default artifacts/publish/appliance, 20 runs)"""
import os, socket, statistics, subprocess, sys, tempfile, time

binary = sys.argv[1] if len(sys.argv) > 1 else "artifacts/publish/appliance"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
times = []
for i in range(runs):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "notify")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.settimeout(30)
        env = dict(os.environ, NOTIFY_SOCKET=path)
        start = time.perf_counter()
        p = subprocess.Popen([os.path.abspath(binary), "run"], cwd=d, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            msg = s.recv(4096).decode()
            if "READY=1" in msg.split("\n"):
                times.append((time.perf_counter() - start) * 1000)
                break
        p.terminate()
        p.wait()
        s.close()
times.sort()
print(f"cold start to READY=1 over {runs} runs: min {times[0]:.1f} ms, median {statistics.median(times):.1f} ms, max {times[-1]:.1f} ms")
