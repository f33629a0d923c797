-- split: the first half of sharding a SKU, run on its first shard (its keys
-- from before). From here on every shopper belongs to a home shard, chosen
-- by the caller from the username, and this shard answers RESHARDED to the
-- others'. The stock is carved into equal shares, one per other shard, and
-- the orders held here are handed back, so the caller can open each shard
-- (publish.lua) with its share and its shoppers' orders, then drop from here
-- what moved (join.lua). Until join runs the SKU is marked as splitting, and
-- running split again returns the same shares, so a caller that died half
-- way can be finished by the next.
--
-- Once split, a SKU keeps its shards until its keys expire (see retire.lua).
--
-- KEYS[1] meta     hash: num, shards, splitting, share:<k>
-- KEYS[2] stock    string: units still on sale
-- KEYS[3] pending  zset: order_id -> pay deadline (ms)
-- KEYS[4] holders  hash: order_id -> username
-- KEYS[5] paid     hash: order_id -> username
-- ARGV[1] shards wanted (2 or more)
--
-- Returns {"NOT_PUBLISHED"} | {"SHARDED", shards} (nothing left to do)
--       | {"SPLIT", shards, {share of shard 1, 2, ...},
--          {username, order_id, pay deadline ms (0 once paid), ...}}
local meta = redis.call('HMGET', KEYS[1], 'num', 'shards', 'splitting')
if not meta[1] then
  return {'NOT_PUBLISHED'}
end
local shards = tonumber(meta[2] or '1')
if shards > 1 and not meta[3] then
  return {'SHARDED', shards}
end

local shares = {}
if meta[3] then
  for k = 1, shards - 1 do
    shares[k] = tonumber(redis.call('HGET', KEYS[1], 'share:' .. k))
  end
else
  shards = tonumber(ARGV[1])
  local stock = math.max(0, tonumber(redis.call('GET', KEYS[2]) or '0'))
  local each = math.floor(stock / shards)
  for k = 1, shards - 1 do
    shares[k] = each
    redis.call('HSET', KEYS[1], 'share:' .. k, each)
  end
  redis.call('DECRBY', KEYS[2], each * (shards - 1))
  redis.call('HSET', KEYS[1], 'shards', shards, 'splitting', 1)
end

local orders = {}
local deadlines = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
for i = 1, #deadlines, 2 do
  local username = redis.call('HGET', KEYS[4], deadlines[i])
  if username then
    orders[#orders + 1] = username
    orders[#orders + 1] = deadlines[i]
    orders[#orders + 1] = deadlines[i + 1]
  end
end
local paid = redis.call('HGETALL', KEYS[5])
for i = 1, #paid, 2 do
  orders[#orders + 1] = paid[i + 1]
  orders[#orders + 1] = paid[i]
  orders[#orders + 1] = '0'
end
return {'SPLIT', shards, shares, orders}
