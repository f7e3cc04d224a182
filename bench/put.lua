-- wrk: durable PUTs of distinct resource groups, one new name per request:
-- bench-<RUN>-<wrk thread number>-<per-thread counter>, RUN from the environment (run.sh sets it).
-- setup() runs in wrk's main Lua state and hands each thread its number as the global "id"; a
-- "local" of that name would shadow it and every thread would send the same names.
local counter = 0
local run = os.getenv("RUN") or "r"
local threads = 0
setup = function(thread)
  thread:set("id", threads)
  threads = threads + 1
end
request = function()
  counter = counter + 1
  local path = string.format(
    "/subscriptions/00000000-0000-4000-8000-000000000001/resourcegroups/bench-%s-%d-%d?api-version=2021-04-01",
    run, id, counter)
  return wrk.format("PUT", path, {["Content-Type"] = "application/json"}, '{"location":"eastus"}')
end
