-- S8: 10,000 concurrent TLS keep-alive connections held open with a trickle of requests: each connection makes
-- its first request at a random moment within the first interval, then one every interval (default 10 s).
-- Start the appliance:  perf/bench-start.sh direct 8443 CERT KEY none /tmp/s8
-- Run (the "--" arguments: connections of the thread, interval in ms; keep -t1):
--   ulimit -n 65536
--   wrk -t1 -c10000 -d40s --timeout 10s --latency -s perf/wrk/s8-held.lua https://127.0.0.1:8443/ -- 10000 10000
-- Expect requests = connections × run / interval and no socket errors; read the server's VmRSS meanwhile.
-- (perf/run.sh S8 measures the same with perf/lib/openloop, which also reports RSS idle/open/peak.)
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

wrk.method = "GET"
wrk.headers["Host"] = "localhost"
wrk.headers["User-Agent"] = "wrk-s8"

local first, every, calls = 0, 10000, 0

function init(args)
  first = tonumber(args[1]) or 0
  every = tonumber(args[2]) or 10000
  math.randomseed(os.time())
end

-- Called before every request, the first of each connection included: spread the first round over one
-- interval, so the run opens with a trickle, not a burst of 10,000 requests.
function delay()
  calls = calls + 1
  if calls <= first then
    return math.random(0, every)
  end
  return every
end

done = common.summary
