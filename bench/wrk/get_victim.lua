-- GET /api/v1/victims/{id} for ids drawn at random from $IDS (one per line).
dofile(os.getenv("WRK_DIR") .. "/common.lua")
local ids = {}
for line in io.lines(os.getenv("IDS")) do ids[#ids + 1] = line end
math.randomseed(os.time() + math.floor(os.clock() * 1e6))

request = function()
  return wrk.format("GET", "/api/v1/victims/" .. ids[math.random(#ids)], headers)
end
