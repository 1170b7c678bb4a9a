-- Shared by the wrk scripts: the bearer token from $TOKEN, each request's time, and a JSON summary
-- line at the end that bench.py reads (latencies in microseconds).
token = os.getenv("TOKEN") or ""
headers = {}
if token ~= "" then headers["Authorization"] = "Bearer " .. token end
if os.getenv("ACCEPT") then headers["Accept"] = os.getenv("ACCEPT") end
-- The benchmark build's unauthenticated twin of a route (src/benchmark_twin.rs).
if os.getenv("TWIN") == "1" then headers["X-Haven-Benchmark-Twin"] = "1" end

-- Latencies are timed here, per request, as pgbench logs its anchor's: wrk's own summary adds
-- synthetic samples for every slow request (its correction for coordinated omission), so a few
-- stalled requests became a p99 of hundreds of milliseconds that no anchor figure was measured
-- against. bench.py runs one connection per wrk thread, so a thread's requests are strictly one
-- after another: each request() call ends the previous request and starts the next.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } haven_timespec;
  int clock_gettime(int clock, haven_timespec *t);
]]
local clock = ffi.new("haven_timespec")
local CLOCK_MONOTONIC = 1
local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1e6 + tonumber(clock.tv_nsec) / 1e3
end

latencies = {} -- this thread's, read by done() in the main state (thread:get)
local started, first_skipped
-- Every script's request() returns through this. A thread's first interval is not kept: in the
-- first thread it runs from wrk's trial call of request() before the thread starts.
function timed(req)
  local now = now_us()
  if started then
    if first_skipped then latencies[#latencies + 1] = now - started else first_skipped = true end
  end
  started = now
  return req
end

local threads = {}
-- Scripts with a setup() of their own call keep(thread) from it.
function keep(thread) threads[#threads + 1] = thread end
setup = keep

local function percentile(sorted, q)
  if #sorted == 0 then return 0 end
  return sorted[math.min(#sorted, math.floor(#sorted * q) + 1)]
end

function done(summary, latency, requests)
  local all, counted = {}, 0
  for _, thread in ipairs(threads) do
    for _, l in ipairs(thread:get("latencies")) do all[#all + 1] = l end
    -- fresh_window.lua's threads count the windows they took.
    counted = math.max(counted, thread:get("counter") or 0)
  end
  table.sort(all)
  -- Every latency, for bench.py to pool across slices as it pools pgbench's log.
  local path = os.getenv("LATENCIES")
  if path then
    local f = assert(io.open(path, "w"))
    f:write(table.concat(all, "\n"), "\n")
    f:close()
  end
  local e = summary.errors
  io.write(string.format(
    'JSON{"requests":%d,"duration_us":%d,"p50":%d,"p99":%d,"max":%d,"counter":%d,"errors":%d,"non2xx":%d}\n',
    summary.requests, summary.duration, percentile(all, 0.5), percentile(all, 0.99), all[#all] or 0, counted,
    e.connect + e.read + e.write + e.timeout, e.status))
end
