-- publish: put a SKU on sale, or update the terms of one already on sale,
-- without ever bringing a sold unit back.
--
-- Re-publish (stock key present): the stock moves by the change in
-- seckill_num, refused if that would go below what is already sold; any
-- ledger arguments are ignored.
-- Load (no stock key): needs the SKU's live orders from the DynamoDB ledger
-- (none on a first publish; after Redis lost its data, whatever was sold),
-- and rebuilds buyers and held units from them with stock = seckill_num -
-- live orders, so no unit is resold and no buyer buys twice. Called
-- without a ledger ("-") it refuses, so a caller who expected the SKU to be
-- loaded cannot initialise it by mistake.
--
-- KEYS[1] meta     hash: begin_ms, end_ms, pay_timeout_ms, price, name, num
-- KEYS[2] stock    string: units still on sale
-- KEYS[3] buyers   set: shoppers holding a live order
-- KEYS[4] pending  zset: order_id -> pay deadline (ms)
-- KEYS[5] holders  hash: order_id -> username
-- KEYS[6] paid     set: order ids paid for
-- ARGV[1] seckill_num   ARGV[2] begin_ms   ARGV[3] end_ms
-- ARGV[4] pay_timeout_ms   ARGV[5] price   ARGV[6] name
-- ARGV[7] "-" (no ledger), or n, the number of live orders that follow as
--         triples: username, order_id, pay deadline ms (0 once paid)
--
-- Returns {"PUBLISHED", remaining} | {"REPUBLISHED", remaining}
--       | {"BELOW_SOLD", sold} | {"NEEDS_LEDGER"}
local num = tonumber(ARGV[1])
local function set_terms()
  redis.call('HSET', KEYS[1], 'num', num, 'begin_ms', ARGV[2], 'end_ms', ARGV[3],
    'pay_timeout_ms', ARGV[4], 'price', ARGV[5], 'name', ARGV[6])
  -- A SKU retired (see retire.lua) and published again is on sale again.
  for _, key in ipairs(KEYS) do
    redis.call('PERSIST', key)
  end
end

local stock = redis.call('GET', KEYS[2])
if stock then
  local sold = tonumber(redis.call('HGET', KEYS[1], 'num')) - tonumber(stock)
  if num < sold then
    return {'BELOW_SOLD', sold}
  end
  redis.call('SET', KEYS[2], num - sold)
  set_terms()
  return {'REPUBLISHED', num - sold}
end

if ARGV[7] == '-' then
  return {'NEEDS_LEDGER'}
end
local live = tonumber(ARGV[7])
if num < live then
  return {'BELOW_SOLD', live}
end
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5], KEYS[6])
for i = 0, live - 1 do
  local username, order_id, deadline = ARGV[8 + 3 * i], ARGV[9 + 3 * i], ARGV[10 + 3 * i]
  redis.call('SADD', KEYS[3], username)
  if deadline ~= '0' then
    redis.call('ZADD', KEYS[4], deadline, order_id)
    redis.call('HSET', KEYS[5], order_id, username)
  else
    redis.call('SADD', KEYS[6], order_id)
  end
end
redis.call('SET', KEYS[2], num - live)
set_terms()
return {'PUBLISHED', num - live}
