-- publish: put a SKU on sale, or update the terms of one already on sale,
-- without ever bringing a sold unit back. It runs on one shard; the first
-- shard (the only one of an unsharded SKU) keeps the SKU's unit count.
--
-- Re-publish (stock key present): the first shard's stock moves by the
-- change in seckill_num, refused if that would take it below zero (the
-- caller first gathers a sharded SKU's units on it); another shard takes
-- the terms only. Any ledger arguments are ignored.
-- Load (no stock key): needs the shard's live orders from the DynamoDB
-- ledger (none on a first publish; after Redis lost its data, whatever was
-- sold) and the stock the caller worked out from them, and rebuilds buyers
-- and held units, so no unit is resold and no buyer buys twice. Called
-- without a ledger ("-") it refuses, so a caller who expected the shard to
-- be loaded cannot initialise it by mistake.
--
-- KEYS[1] meta     hash: begin_ms, end_ms, pay_timeout_ms, price, name, num, shards,
--                  arrivals (how often units came on sale here)
-- KEYS[2] stock    string: units still on sale
-- KEYS[3] buyers   set: shoppers holding a live order
-- KEYS[4] pending  zset: order_id -> pay deadline (ms)
-- KEYS[5] holders  hash: order_id -> username
-- KEYS[6] paid     hash: order_id -> username of every order paid for
-- KEYS[7] lent     hash: units lent to another shard, on their way (lend.lua)
-- KEYS[8] received set: transfers this shard took in (receive.lua)
-- ARGV[1] seckill_num, or "-" on a shard other than the first
-- ARGV[2] begin_ms   ARGV[3] end_ms   ARGV[4] pay_timeout_ms
-- ARGV[5] price      ARGV[6] name
-- ARGV[7] "-" (no ledger), or the stock to load the shard with
-- ARGV[8] shards of the SKU (a load writes it; a re-publish keeps its own)
-- ARGV[9] n, the number of live orders that follow as triples: username,
--         order_id, pay deadline ms (0 once paid)
--
-- Returns {"PUBLISHED", stock, shards} | {"REPUBLISHED", stock, shards}
--       | {"BELOW_SOLD", sold} | {"NEEDS_LEDGER"}
local function set_terms()
  redis.call('HSET', KEYS[1], 'begin_ms', ARGV[2], 'end_ms', ARGV[3],
    'pay_timeout_ms', ARGV[4], 'price', ARGV[5], 'name', ARGV[6])
  if ARGV[1] ~= '-' then
    redis.call('HSET', KEYS[1], 'num', ARGV[1])
  end
  -- A SKU retired (see retire.lua) and published again is on sale again.
  for _, key in ipairs(KEYS) do
    redis.call('PERSIST', key)
  end
end

local stock = redis.call('GET', KEYS[2])
if stock then
  stock = tonumber(stock)
  local old = redis.call('HGET', KEYS[1], 'num')
  if old and ARGV[1] ~= '-' then
    local after = stock + tonumber(ARGV[1]) - tonumber(old)
    if after < 0 then
      return {'BELOW_SOLD', tonumber(old) - stock}
    end
    redis.call('SET', KEYS[2], after)
    redis.call('HINCRBY', KEYS[1], 'arrivals', 1)
    stock = after
  end
  set_terms()
  return {'REPUBLISHED', stock, tonumber(redis.call('HGET', KEYS[1], 'shards') or '1')}
end

if ARGV[7] == '-' then
  return {'NEEDS_LEDGER'}
end
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5], KEYS[6])
for i = 0, tonumber(ARGV[9]) - 1 do
  local username, order_id, deadline = ARGV[10 + 3 * i], ARGV[11 + 3 * i], ARGV[12 + 3 * i]
  redis.call('SADD', KEYS[3], username)
  if deadline ~= '0' then
    redis.call('ZADD', KEYS[4], deadline, order_id)
    redis.call('HSET', KEYS[5], order_id, username)
  else
    redis.call('HSET', KEYS[6], order_id, username)
  end
end
redis.call('SET', KEYS[2], ARGV[7])
redis.call('HINCRBY', KEYS[1], 'arrivals', 1)
if tonumber(ARGV[8]) > 1 then
  redis.call('HSET', KEYS[1], 'shards', ARGV[8])
end
set_terms()
return {'PUBLISHED', tonumber(ARGV[7]), tonumber(ARGV[8])}
