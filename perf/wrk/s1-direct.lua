-- S1: HTTPS/1.1 keep-alive, DIRECT, GET / → 13-byte "Hello, World!" (the harness's S1, by hand).
-- Start the appliance:  perf/bench-start.sh direct 8443 CERT KEY none /tmp/s1
-- Run (as the harness):  wrk -t1 -c64 -d10s --latency -s perf/wrk/s1-direct.lua https://127.0.0.1:8443/
-- Prints wrk's report, then one "RESULT requests=.. rps=.. p50_ms=.. p99_ms=.. non2xx=.." line.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

wrk.method = "GET"
wrk.headers["Host"] = "localhost"
wrk.headers["User-Agent"] = "wrk-s1"

done = common.summary
