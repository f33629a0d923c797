-- restore: repair the gate toward the ledger. For each live order of the
-- ledger the gate does not know (a failover to a replica that missed the
-- last grabs), the shopper is a buyer again, an unpaid order's unit is held
-- again until its deadline, and the unit comes off sale. Never the other
-- way round: nothing the gate holds is given back here (the timeout sweep
-- settles holds by the ledger).
--
-- If the gate meanwhile sold the forgotten unit to someone else, the stock
-- goes below zero: the gate then says what the ledger does (more live
-- orders than units), sells nothing more, and the order is reported as
-- oversold for an operator to settle. On a sharded SKU it runs on the home
-- shard of the orders' shoppers, and a unit this shard lacks may be on
-- another: the caller borrows it (lend.lua) before calling the order
-- oversold.
--
-- KEYS[1] meta     hash: the SKU's terms (absent: not loaded)
-- KEYS[2] stock    string: units still on sale
-- KEYS[3] buyers   set: shoppers holding a live order
-- KEYS[4] pending  zset: order_id -> pay deadline (ms)
-- KEYS[5] holders  hash: order_id -> username
-- KEYS[6] paid     hash: order_id -> username of every order paid for
-- ARGV[1] shards the caller routed by
-- ARGV[2] n, then n triples: username, order_id, pay deadline ms (0 once paid)
--
-- An order is known by its id: held (unpaid, or paid but not yet
-- confirmed), or among the paid ones. Not by its shopper: a shopper the
-- gate forgot may have bought again since. Like every call routed to a
-- shopper's home shard, it is refused to a caller that routed by a layout
-- a split has changed since: an order held off its home shard would leave
-- its shopper free to buy again at home, and could never be released.
--
-- Returns {"NOT_LOADED"} | {"RESTORED", {order ids restored}, {of those, oversold}}
--       | a refusal of misrouted.lua: {"RESHARDED", shards} | {"NOT_READY"}
local refusal = misrouted(KEYS[1], ARGV[1])
if refusal then
  return refusal
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {'NOT_LOADED'}
end
local restored, oversold = {}, {}
for i = 0, tonumber(ARGV[2]) - 1 do
  local username, order_id, deadline = ARGV[3 + 3 * i], ARGV[4 + 3 * i], ARGV[5 + 3 * i]
  local known = redis.call('HEXISTS', KEYS[5], order_id) == 1
    or (deadline == '0' and redis.call('HEXISTS', KEYS[6], order_id) == 1)
  if not known then
    redis.call('SADD', KEYS[3], username)
    if deadline == '0' then
      redis.call('HSET', KEYS[6], order_id, username)
    else
      redis.call('ZADD', KEYS[4], deadline, order_id)
      redis.call('HSET', KEYS[5], order_id, username)
    end
    restored[#restored + 1] = order_id
    if redis.call('DECR', KEYS[2]) < 0 then
      oversold[#oversold + 1] = order_id
    end
  end
end
if #restored > 0 then
  -- Work is outstanding again: a retired SKU's keys must not expire.
  for _, key in ipairs(KEYS) do
    redis.call('PERSIST', key)
  end
end
return {'RESTORED', restored, oversold}
