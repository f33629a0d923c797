-- load_packets: open a campaign: put its packets on the pool and, when it
-- is rebuilt after Redis lost it, say again who already has which packet.
-- All or nothing, and only once: a second load of the same campaign (a
-- retried create, two rebuilds at once) changes nothing, so no packet can
-- be loaded twice.
--
-- KEYS[1] meta     hash: begin_ms, end_ms
-- KEYS[2] pool     list: packets not yet claimed, JSON {"red_packet_id","amount"}
-- KEYS[3] claimed  hash: username -> the packet they got (JSON)
-- ARGV[1] begin_ms   ARGV[2] end_ms
-- ARGV[3] n, the shoppers who already have a packet, then n pairs:
--         username, packet JSON (empty on a first load)
-- ARGV[4 + 2n ..] the pool's packets, JSON, in the order they will be handed out
--
-- Returns "LOADED" or "ALREADY_LOADED".
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 'ALREADY_LOADED'
end
local claimed = tonumber(ARGV[3])
for i = 0, claimed - 1 do
  redis.call('HSET', KEYS[3], ARGV[4 + 2 * i], ARGV[5 + 2 * i])
end
local chunk = 1000 -- stay under Lua's unpack limit
for first = 4 + 2 * claimed, #ARGV, chunk do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, first, math.min(first + chunk - 1, #ARGV)))
end
redis.call('HSET', KEYS[1], 'begin_ms', ARGV[1], 'end_ms', ARGV[2])
return 'LOADED'
