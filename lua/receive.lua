-- receive: a shard takes in units another shard lent it (lend.lua), once
-- per transfer however often it is delivered.
--
-- KEYS[1] meta     hash: the shard's terms (absent: not open, or lost), and
--                  arrivals: how often units came on sale here
-- KEYS[2] stock    string: units still on sale on this shard
-- KEYS[3] received set: transfer ids taken in
-- ARGV[1] transfer id   ARGV[2] units
--
-- Returns "RECEIVED" | "DUPLICATE" (taken in before) | "MISSING" (no such
-- shard: the caller delivers the units back to the lender instead)
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 'MISSING'
end
if redis.call('SADD', KEYS[3], ARGV[1]) == 0 then
  return 'DUPLICATE'
end
redis.call('INCRBY', KEYS[2], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'arrivals', 1)
return 'RECEIVED'
