-- GET $PATH_ with a window its organisation has not asked before: a new question each time (a
-- guarded release is answered from the ledger when its question repeats in the organisation's
-- period). Windows are month ranges within 2017-01..2026-12. Each thread asks as a partner of an
-- organisation of its own ($TOKENS, comma-separated, one per thread), so every thread has all the
-- windows to ask; they start a share of the list apart, so concurrent requests ask different
-- windows. $OFFSET is how far earlier slices got.
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

local tokens = {}
for t in string.gmatch(os.getenv("TOKENS") or "", "[^,]+") do tokens[#tokens + 1] = t end
local stride = math.floor(#windows / tonumber(os.getenv("WRK_THREADS") or "1"))
local threads = 0
-- Globals: setup() sets each thread's id and token (thread:set writes a global of the thread's
-- state), and done() reads how many windows each thread took.
id, counter, token = 0, 0, nil
function setup(thread)
  keep(thread)
  thread:set("id", threads)
  thread:set("token", tokens[threads % #tokens + 1])
  threads = threads + 1
end

-- Runs in the thread's state after setup(), before its first request.
function init(args)
  headers["Authorization"] = "Bearer " .. token
end

request = function()
  local w = windows[(offset + counter + id * stride) % #windows + 1]
  counter = counter + 1
  return timed(wrk.format("GET", path .. sep .. "from=" .. month(w[1]) .. "&to=" .. month(w[2]), headers))
end
