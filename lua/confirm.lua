-- confirm: a held unit was paid for; stop the clock on it. The unit stays
-- sold and the shopper stays a buyer, so they cannot buy the SKU again; the
-- order joins the paid ones, by which reconciliation tells it is known.
-- It runs on the shard that holds the unit: the home shard of its shopper.
--
-- KEYS[1] meta     hash: the SKU's terms and shards
-- KEYS[2] pending  zset: order_id -> pay deadline (ms)
-- KEYS[3] holders  hash: order_id -> username
-- KEYS[4] paid     hash: order_id -> username of every order paid for
-- ARGV[1] order_id
-- ARGV[2] shards the caller routed by
--
-- Returns {"CONFIRMED"} | {"NOT_HELD"} (already confirmed or released)
--       | a refusal of misrouted.lua: {"RESHARDED", shards} | {"NOT_READY"}
local refusal = misrouted(KEYS[1], ARGV[2])
if refusal then
  return refusal
end
local username = redis.call('HGET', KEYS[3], ARGV[1])
if not username then
  return {'NOT_HELD'}
end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], username)
return {'CONFIRMED'}
