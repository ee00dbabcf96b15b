-- wrk: POST a form body given in the environment, with Basic credentials.
-- Non-2xx answers and socket errors come from wrk's own summary (a Lua
-- counter here would be per thread and never reach `done`).
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BASIC")
