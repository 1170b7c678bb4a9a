-- Shared by the wrk scripts: the bearer token from $TOKEN, and a JSON summary line at the end
-- that bench.py reads (latencies in microseconds).
token = os.getenv("TOKEN") or ""
headers = {}
if token ~= "" then headers["Authorization"] = "Bearer " .. token end
if os.getenv("ACCEPT") then headers["Accept"] = os.getenv("ACCEPT") end
-- The benchmark build's unauthenticated twin of a route (src/benchmark_twin.rs).
if os.getenv("TWIN") == "1" then headers["X-Haven-Benchmark-Twin"] = "1" end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON{"requests":%d,"duration_us":%d,"p50":%d,"p99":%d,"errors":%d,"non2xx":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
