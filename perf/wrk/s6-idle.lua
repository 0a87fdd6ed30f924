-- S6: memory per idle TLS keep-alive connection. Each of wrk's connections makes one request at once, then
-- waits (wrk's delay() hook) longer than the run lasts: the server holds N handshaken, idle keep-alive
-- connections while you read its memory.
-- Start the appliance:  perf/bench-start.sh direct 8443 CERT KEY none /tmp/s6
-- Run (N = 5000, held 30 s; the "--" argument must equal -c):
--   ulimit -n 65536
--   grep VmRSS /proc/$(pgrep -f /tmp/s6/appliance.json)/status         # before
--   wrk -t1 -c5000 -d30s --timeout 10s -s perf/wrk/s6-idle.lua https://127.0.0.1:8443/ -- 5000 &
--   sleep 20; grep VmRSS /proc/$(pgrep -f /tmp/s6/appliance.json)/status  # while held: (after - before) / N
-- The RESULT line must show requests=N (one per connection) and no errors.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

wrk.method = "GET"
wrk.headers["Host"] = "localhost"
wrk.headers["User-Agent"] = "wrk-s6"

local first, calls = 0, 0

function init(args)
  first = tonumber(args[1]) or 0 -- connections of this thread (use -t1)
end

-- Called before every request, the first of each connection included.
function delay()
  calls = calls + 1
  if calls <= first then
    return 0
  end
  return 3600 * 1000 -- idle for the rest of the run
end

done = common.summary
