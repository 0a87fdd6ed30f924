-- S5: resumed TLS handshakes. Every request carries "Connection: close", so each one is a new TCP connection, and
-- wrk offers the session it kept from the first handshake: every connection after the first resumes. Requests
-- per second are resumed handshakes per second (plus one 13 B request each).
-- Start the appliance:  perf/bench-start.sh direct 8443 CERT KEY none /tmp/s5
-- Run:                  wrk -t1 -c4 -d10s --latency -s perf/wrk/s5-resumed.lua https://127.0.0.1:8443/
-- Check that they did resume: the appliance counts handshakes by outcome,
--   curl -s --unix-socket /tmp/s5/admin.sock http://a/v1/metrics | grep tls_handshakes_total
-- ("resumed" grows by the request count, "full" by about one per connection slot).
-- S4 (full handshakes) has no wrk version: wrk always offers its session. Use k6/s4-full-handshakes.js, whose
-- client keeps no session, or the bench's lib/tlsload PORT new 4 SECONDS.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

wrk.method = "GET"
wrk.headers["Host"] = "localhost"
wrk.headers["User-Agent"] = "wrk-s5"
wrk.headers["Connection"] = "close"

done = common.summary
