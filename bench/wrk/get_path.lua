-- GET $PATH_ (with the bearer token in $TOKEN, if any).
dofile(os.getenv("WRK_DIR") .. "/common.lua")
local path = os.getenv("PATH_")

request = function()
  return timed(wrk.format("GET", path, headers))
end
