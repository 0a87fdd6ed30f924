-- S7 (p99 at a fixed request rate) has NO faithful wrk version: wrk is closed-loop (each connection sends its
-- next request only after the previous response), so it cannot hold a rate below saturation and it hides
-- stalls (coordinated omission); wrk2's -R is not packaged here. Use the open-loop tool instead:
--   gcc -O2 -o perf/lib/openloop perf/lib/openloop.c -lssl -lcrypto
--   perf/lib/openloop 8443 64 5000 10 -w 2          # 5,000 req/s over 64 connections, 10 s, first 2 s not recorded
-- or perf/run.sh S7, or k6 with perf/k6/s7-fixed-rate.js. With wrk2 installed elsewhere this script works as is:
--   wrk2 -t1 -c64 -d10s -R5000 --latency -s perf/wrk/s7-fixed-rate.lua https://127.0.0.1:8443/
-- Under plain wrk it runs closed-loop and prints a warning; the RESULT line then measures saturation, not S7.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

wrk.headers["Host"] = "localhost"
wrk.headers["User-Agent"] = "wrk-s7"

function done(summary, latency, requests)
  io.stderr:write("s7-fixed-rate.lua: plain wrk is closed-loop: these are saturation latencies, not S7's\n")
  common.summary(summary, latency, requests)
end
