-- claim: one shopper taps a falling red packet. The seed's steps, in one
-- atomic script: already claimed? -> pop a packet -> record the shopper.
-- This filters the crowd; the caller then records the claim in the ledger
-- (the packet's credit, owed, and the shopper's claim), and acknowledges it
-- only once that is written, so no cache failover or loss forgets what a
-- shopper was told. What the ledger refuses, amend_claim.lua puts right.
--
-- KEYS[1] meta     hash: begin_ms, end_ms, last_pop_ms
-- KEYS[2] pool     list: unclaimed packets, JSON {"red_packet_id","amount"}
-- KEYS[3] claimed  hash: username -> the packet they got (JSON)
-- ARGV[1] username   ARGV[2] now (ms)   ARGV[3] settle (ms)
--
-- Returns {"CLAIMED", packet} | {"ALREADY_CLAIMED", packet}
--       | {"NOT_FOUND"} | {"NOT_STARTED"} | {"ENDED"} | {"EXHAUSTED"}
--       | {"SETTLING"}: the pool is empty but a packet was popped less than
--         `settle` ago, and may come back if the ledger refuses its claim
--         (a shopper the cache forgot): not yet EXHAUSTED, ask again.
local window = redis.call('HMGET', KEYS[1], 'begin_ms', 'end_ms')
if not window[1] then
  return {'NOT_FOUND'}
end
local now = tonumber(ARGV[2])
if now < tonumber(window[1]) then
  return {'NOT_STARTED'}
end
if now >= tonumber(window[2]) then
  return {'ENDED'}
end
local mine = redis.call('HGET', KEYS[3], ARGV[1])
if mine then
  -- Written again, unchanged: a write, so a WAIT after this reply also
  -- covers the claim when another connection made it (a retry of a claim
  -- whose first answer was a 503).
  redis.call('HSET', KEYS[3], ARGV[1], mine)
  return {'ALREADY_CLAIMED', mine}
end
local packet = redis.call('LPOP', KEYS[2])
if not packet then
  local last_pop = tonumber(redis.call('HGET', KEYS[1], 'last_pop_ms') or '0')
  if now - last_pop < tonumber(ARGV[3]) then
    return {'SETTLING'}
  end
  return {'EXHAUSTED'}
end
redis.call('HSET', KEYS[3], ARGV[1], packet)
redis.call('HSET', KEYS[1], 'last_pop_ms', ARGV[2])
return {'CLAIMED', packet}
