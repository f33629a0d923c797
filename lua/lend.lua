-- lend: a shard gives half its units (at least one) to another shard whose
-- shoppers found theirs empty, so a sharded SKU sells out completely. The
-- units leave here at once and are recorded as lent until the borrower has
-- taken them in (receive.lua) and the caller drops the record; a record
-- left behind by a caller that died is delivered by the timeout sweep, so
-- a lent unit is never lost.
--
-- KEYS[1] stock    string: units still on sale on this shard
-- KEYS[2] lent     hash: transfer id -> "units:borrowing shard:ms"
-- ARGV[1] transfer id (fresh)   ARGV[2] borrowing shard   ARGV[3] now (ms)
--
-- Returns {"LENT", units} | {"EMPTY"}
local stock = tonumber(redis.call('GET', KEYS[1]) or '0')
if stock <= 0 then
  return {'EMPTY'}
end
local units = math.max(1, math.floor(stock / 2))
redis.call('DECRBY', KEYS[1], units)
redis.call('HSET', KEYS[2], ARGV[1], units .. ':' .. ARGV[2] .. ':' .. ARGV[3])
return {'LENT', units}
