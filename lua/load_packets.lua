-- load_packets: put a campaign's pre-split packets on the pool and open it.
-- All or nothing, and only once: a second load of the same campaign (a
-- retried create) changes nothing, so no packet can be loaded twice.
--
-- KEYS[1] meta     hash: begin_ms, end_ms
-- KEYS[2] pool     list: packets not yet claimed, JSON {"red_packet_id","amount"}
-- ARGV[1] begin_ms   ARGV[2] end_ms
-- ARGV[3..] the packets, JSON, in the order they will be handed out
--
-- Returns "LOADED" or "ALREADY_LOADED".
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 'ALREADY_LOADED'
end
local chunk = 1000 -- stay under Lua's unpack limit
for first = 3, #ARGV, chunk do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, first, math.min(first + chunk - 1, #ARGV)))
end
redis.call('HSET', KEYS[1], 'begin_ms', ARGV[1], 'end_ms', ARGV[2])
return 'LOADED'
