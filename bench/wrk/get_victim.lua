-- GET /api/v1/victims/{id} for ids drawn at random from $IDS (one per line); $PREFIX replaces
-- "/api/v1/victims/" (the peer's "/api/victims?id=eq.").
dofile(os.getenv("WRK_DIR") .. "/common.lua")
local ids = {}
for line in io.lines(os.getenv("IDS")) do ids[#ids + 1] = line end
math.randomseed(os.time() + math.floor(os.clock() * 1e6))

local prefix = os.getenv("PREFIX") or "/api/v1/victims/"

request = function()
  return timed(wrk.format("GET", prefix .. ids[math.random(#ids)], headers))
end
