-- POST with a request body over HTTPS/1.1 keep-alive: what the request-body path costs (read, framing, discard)
-- next to S1's bodiless GET. Against the appliance in DIRECT mode, which answers every method with 200 and
-- reads and discards the body (the bench origin, a static nginx, would answer a proxied POST with 405).
--   perf/bench-start.sh direct 8443 CERT KEY none /tmp/post
--   wrk -t1 -c64 -d10s --latency -s perf/wrk/post-body.lua https://127.0.0.1:8443/ -- 1024
-- The number after "--" is the body size in bytes (default 1024); the body is JSON-shaped filler.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

function init(args)
  local size = tonumber(args[1] or "1024")
  local filler = string.rep("x", math.max(0, size - 12))
  wrk.method = "POST"
  wrk.body = '{"data":"' .. filler .. '"}\n'
  wrk.body = wrk.body:sub(1, size)
  wrk.headers["Host"] = "localhost"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["User-Agent"] = "wrk-post"
end

done = common.summary
