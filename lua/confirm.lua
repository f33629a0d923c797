-- confirm: a held unit was paid for; stop the clock on it. The unit stays
-- sold and the shopper stays a buyer, so they cannot buy the SKU again; the
-- order joins the paid ones, by which reconciliation tells it is known.
--
-- KEYS[1] pending  zset: order_id -> pay deadline (ms)
-- KEYS[2] holders  hash: order_id -> username
-- KEYS[3] paid     set: order ids paid for
-- ARGV[1] order_id
--
-- Returns "CONFIRMED" or "NOT_HELD" (already confirmed or released).
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then
  return 'NOT_HELD'
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 'CONFIRMED'
