-- retire: a SKU or campaign whose event is over and fully settled lets its
-- keys expire, so the cache does not keep every sale it ever ran.
--
-- Over means its end plus a grace period has passed (a grab or claim from
-- a Lambda whose clock lags may land just after the end). Settled means
-- the outstanding keys are empty: no held unit waits for its pay deadline
-- (so the longest pay timeout has run out too), no claim record waits for
-- payout. The keys are kept a while longer so a late tap still reads ENDED
-- from the cache; a later publish makes them persistent again.
--
-- KEYS[1]        meta  hash with end_ms
-- KEYS[2..n+1]   the n outstanding keys (pending, or records and processing)
-- KEYS[n+2..]    every other key of the SKU or campaign
-- ARGV[1] now (ms)   ARGV[2] grace after the end (ms)   ARGV[3] n
-- ARGV[4] how long the keys are kept once retired (ms)
--
-- Returns "RETIRED" | "LIVE" (not over, or work outstanding)
--       | "GONE" (no meta: expired already, or never loaded)
local end_ms = redis.call('HGET', KEYS[1], 'end_ms')
if not end_ms then
  return 'GONE'
end
if tonumber(ARGV[1]) < tonumber(end_ms) + tonumber(ARGV[2]) then
  return 'LIVE'
end
for i = 2, tonumber(ARGV[3]) + 1 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    return 'LIVE'
  end
end
for _, key in ipairs(KEYS) do
  redis.call('PEXPIRE', key, ARGV[4])
end
return 'RETIRED'
