-- wrk: durable PUTs of distinct resource groups (one name per request)
local counter = 0
local tid = 0
setup = function(thread)
  thread:set("tid", tid)
  tid = tid + 1
end
request = function()
  counter = counter + 1
  local path = string.format(
    "/subscriptions/00000000-0000-4000-8000-000000000001/resourcegroups/bench-%s-%d-%d?api-version=2021-04-01",
    os.getenv("RUNID") or "r", tid, counter)
  return wrk.format("PUT", path, {["Content-Type"] = "application/json"}, '{"location":"eastus"}')
end
