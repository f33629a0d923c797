-- rate_limit: may one client do one action now? GCRA (the generic cell
-- rate algorithm): one key holds the client's theoretical arrival time, so
-- a limit of `count` per `period` admits a burst of `count`, then one every
-- `period / count`, and the key expires once the client is idle.
--
-- The clock is the server's (TIME), so every Lambda instance measures the
-- same client on one clock, whatever its own says.
--
-- KEYS[1] limit  string: the theoretical arrival time (ms)
-- ARGV[1] emission interval (ms): period / count
-- ARGV[2] burst tolerance (ms): interval * (count - 1)
--
-- Returns {"ADMITTED"} | {"LIMITED", retry_after_ms}
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
  tat = now
end
local wait = tat - tolerance - now
if wait > 0 then
  return {'LIMITED', wait}
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], next_tat, 'PX', next_tat - now)
return {'ADMITTED'}
