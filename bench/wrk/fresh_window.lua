-- GET $PATH_ with a window no earlier request of this run asked for: a new question each time
-- (a guarded release is answered from the ledger when its question repeats). Windows are month
-- ranges within 2017-01..2026-12, numbered from $OFFSET so that slices do not repeat each other.
dofile(os.getenv("WRK_DIR") .. "/common.lua")
local path = os.getenv("PATH_")
local offset = tonumber(os.getenv("OFFSET") or "0")
local sep = string.find(path, "?", 1, true) and "&" or "?"

local windows = {}
for a = 0, 119 do
  for l = 1, 120 - a do windows[#windows + 1] = {a, a + l - 1} end
end

local function month(i)
  return string.format("%04d-%02d", 2017 + math.floor(i / 12), i % 12 + 1)
end

-- Each of bench.py's $WRK_THREADS threads takes every $WRK_THREADS-th window from its own.
local stride = tonumber(os.getenv("WRK_THREADS") or "2")
local threads = 0
-- Globals: setup() sets each thread's own id (thread:set writes a global of the thread's state),
-- and done() reads how many windows each thread took.
id, counter = 0, 0
function setup(thread)
  keep(thread)
  thread:set("id", threads)
  threads = threads + 1
end

request = function()
  local w = windows[(offset + counter * stride + id) % #windows + 1]
  counter = counter + 1
  return timed(wrk.format("GET", path .. sep .. "from=" .. month(w[1]) .. "&to=" .. month(w[2]), headers))
end
