-- release: put a held unit back on sale (order cancelled, timed out, or never
-- written). Keyed by order id, so running it twice gives back one unit.
--
-- The unit goes back to the shard that held it: the home shard of its
-- shopper.
--
-- KEYS[1] meta     hash: the SKU's terms and shards, and arrivals: how
--                  often units came on sale here (a sold-out check reads it)
-- KEYS[2] stock    string: units still on sale
-- KEYS[3] buyers   set: shoppers holding a live order
-- KEYS[4] pending  zset: order_id -> pay deadline (ms)
-- KEYS[5] holders  hash: order_id -> username
-- ARGV[1] order_id
-- ARGV[2] shards the caller routed by
--
-- Returns {"RELEASED"} | {"NOT_HELD"} (already released or confirmed)
--       | a refusal of misrouted.lua: {"RESHARDED", shards} | {"NOT_READY"}
local refusal = misrouted(KEYS[1], ARGV[2])
if refusal then
  return refusal
end
local username = redis.call('HGET', KEYS[5], ARGV[1])
if not username then
  return {'NOT_HELD'}
end
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('SREM', KEYS[3], username)
redis.call('INCR', KEYS[2])
redis.call('HINCRBY', KEYS[1], 'arrivals', 1)
return {'RELEASED'}
