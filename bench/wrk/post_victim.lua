-- POST /api/v1/victims with the body in $BODY (the server chooses each new id).
dofile(os.getenv("WRK_DIR") .. "/common.lua")
local f = assert(io.open(os.getenv("BODY")))
local body = f:read("*a")
f:close()
headers["Content-Type"] = "application/json"

request = function()
  return timed(wrk.format("POST", "/api/v1/victims", headers, body))
end
