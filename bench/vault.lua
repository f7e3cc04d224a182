-- wrk: the Vault-compatible API. MODE (from the environment) picks the request:
--   read    GET  /v1/secret/data/bench/read                     (X-Vault-Token)
--   write   POST /v1/secret/data/bench/w-<RUN>-<thread>-<n>     {"data":{"key":"<base64>"}}, a new
--           secret per request (pg_tde's key store), durable
--   login   POST /v1/auth/approle/login                         {"role_id","secret_id"} (KES)
--   encrypt POST /v1/transit/encrypt/bench                      {"plaintext":"<base64>"}
--   health  GET  /v1/sys/health                                 (no token: the listener's ceiling)
--   info    GET  /emulator/info                                 (the main port's peer figure)
-- TOKEN, ROLE_ID, SECRET_ID and RUN come from the environment, never from wrk's arguments.
-- setup() hands each thread its number as the global "id" (see put.lua).
local mode = os.getenv("MODE") or "read"
local token = os.getenv("TOKEN") or ""
local run = os.getenv("RUN") or "r"
local key = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="
local counter = 0
local threads = 0
setup = function(thread)
  thread:set("id", threads)
  threads = threads + 1
end
local login_body = string.format('{"role_id":"%s","secret_id":"%s"}', os.getenv("ROLE_ID") or "",
  os.getenv("SECRET_ID") or "")
request = function()
  if mode == "read" then
    return wrk.format("GET", "/v1/secret/data/bench/read", {["X-Vault-Token"] = token})
  elseif mode == "write" then
    counter = counter + 1
    local path = string.format("/v1/secret/data/bench/w-%s-%d-%d", run, id, counter)
    return wrk.format("POST", path, {["X-Vault-Token"] = token, ["Content-Type"] = "application/json"},
      '{"data":{"key":"' .. key .. '"}}')
  elseif mode == "login" then
    return wrk.format("POST", "/v1/auth/approle/login", {["Content-Type"] = "application/json"}, login_body)
  elseif mode == "encrypt" then
    return wrk.format("POST", "/v1/transit/encrypt/bench", {["X-Vault-Token"] = token,
      ["Content-Type"] = "application/json"}, '{"plaintext":"' .. key .. '"}')
  end
  if mode == "info" then
    return wrk.format("GET", "/emulator/info")
  end
  return wrk.format("GET", "/v1/sys/health")
end
