-- amend_claim: the ledger did not take a packet claim.lua popped for a
-- shopper. It was not recorded at all (the ledger was unreachable): the
-- packet goes back on the pool and the shopper has none. The ledger has it
-- as another shopper's (a cache that forgot handed it out again): it stays
-- off the pool and the shopper has none. The ledger holds another packet
-- for the shopper already (a cache that forgot let them claim again): that
-- one is theirs, and the popped one goes back on the pool unless the ledger
-- has it as another's (TAKEN). Only while the
-- shopper's claim is still the popped packet, so running it twice, or after
-- the shopper claimed again, changes nothing.
--
-- KEYS[1] pool     list: unclaimed packets (JSON)
-- KEYS[2] claimed  hash: username -> the packet they got (JSON)
-- ARGV[1] username   ARGV[2] the popped packet (JSON)
-- ARGV[3] "BACK" (back on the pool) or "TAKEN" (another shopper's)
-- ARGV[4] the packet the ledger holds for the shopper (JSON), or ""
--
-- Returns "AMENDED" | "STALE" (the shopper's claim is not that packet now)
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then
  return 'STALE'
end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
else
  redis.call('HDEL', KEYS[2], ARGV[1])
end
if ARGV[3] == 'BACK' then
  redis.call('LPUSH', KEYS[1], ARGV[2])
end
return 'AMENDED'
