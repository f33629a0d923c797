-- join: the second half of sharding a SKU (see split.lua), once every other
-- shard is open: the first shard drops the orders that moved to their
-- shoppers' home shards and is no longer splitting. Those orders are
-- settled on their home shards from the moment those opened, so the copies
-- here only wait to be dropped.
--
-- KEYS[1] meta     hash: splitting, share:<k>
-- KEYS[2] buyers   set: shoppers holding a live order
-- KEYS[3] pending  zset: order_id -> pay deadline (ms)
-- KEYS[4] holders  hash: order_id -> username
-- KEYS[5] paid     hash: order_id -> username
-- ARGV[1] shards
-- ARGV[2] n, then n pairs: username, order_id of the orders that moved
--
-- Returns "JOINED"
for i = 0, tonumber(ARGV[2]) - 1 do
  local username, order_id = ARGV[3 + 2 * i], ARGV[4 + 2 * i]
  redis.call('SREM', KEYS[2], username)
  redis.call('ZREM', KEYS[3], order_id)
  redis.call('HDEL', KEYS[4], order_id)
  redis.call('HDEL', KEYS[5], order_id)
end
redis.call('HDEL', KEYS[1], 'splitting')
for k = 1, tonumber(ARGV[1]) - 1 do
  redis.call('HDEL', KEYS[1], 'share:' .. k)
end
return 'JOINED'
