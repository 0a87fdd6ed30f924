-- S2: HTTPS/1.1 keep-alive, PROXY to the bench origin (nginx on 127.0.0.1:9000: / → 13 B, /16k → 16,384 B).
-- Start the origin and the appliance:
--   /tmp/bench/contestants/backend/start.sh 127.0.0.1:9000 /tmp/origin &
--   perf/bench-start.sh proxy 8443 CERT KEY 127.0.0.1:9000 /tmp/s2
-- Run (as the harness), 13 B and 16 KiB:
--   wrk -t1 -c64 -d8s --latency -s perf/wrk/s2-proxy.lua https://127.0.0.1:8443 -- /
--   wrk -t1 -c64 -d8s --latency -s perf/wrk/s2-proxy.lua https://127.0.0.1:8443 -- /16k
-- The path after "--" (default /) is what every request asks for; add "check" after it to count bodies of the
-- wrong length (13 B for /, 16,384 B for /16k): wrk -t1 -c64 -d8s -s perf/wrk/s2-proxy.lua URL -- /16k check
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

local want = { ["/"] = 13, ["/16k"] = 16384 }
local threads = {}
path = "/"

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  path = args[1] or "/"
  expect = want[path]
  bad = 0
  if args[2] == "check" then
    -- Only on request: a response() callback makes wrk hand every body to Lua, which costs throughput.
    response = function(status, headers, body)
      if expect and #body ~= expect then bad = bad + 1 end
    end
  end
end

function request()
  return wrk.format("GET", path, { ["Host"] = "localhost", ["User-Agent"] = "wrk-s2" })
end

function done(summary, latency, requests)
  common.summary(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do n = n + (t:get("bad") or 0) end
  io.write(string.format("body length mismatches: %d\n", n))
end
