-- release: put a held unit back on sale (order cancelled, timed out, or never
-- written). Keyed by order id, so running it twice gives back one unit.
--
-- KEYS[1] stock    string: units still on sale
-- KEYS[2] buyers   set: shoppers holding a live order
-- KEYS[3] pending  zset: order_id -> pay deadline (ms)
-- KEYS[4] holders  hash: order_id -> username
-- ARGV[1] order_id
--
-- Returns "RELEASED" or "NOT_HELD" (already released or confirmed).
local username = redis.call('HGET', KEYS[4], ARGV[1])
if not username then
  return 'NOT_HELD'
end
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[2], username)
redis.call('INCR', KEYS[1])
return 'RELEASED'
