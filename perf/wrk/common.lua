-- Shared by the perf/wrk scripts: a summary after wrk's own, with the percentiles the harness tables use and a
-- count of non-2xx answers, as one "RESULT key=value ..." line a script can parse.
local M = {}

function M.summary(summary, latency, requests)
  local e = summary.errors
  local us = function(p) return latency:percentile(p) / 1000.0 end
  io.write(string.format(
    "RESULT requests=%d secs=%.2f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f " ..
    "non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    us(50), us(90), us(99), us(99.9), latency.max / 1000.0,
    e.status, e.connect, e.read, e.write, e.timeout))
end

return M
