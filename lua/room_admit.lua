-- room_admit: whether a shopper's place in a sale's waiting room has been
-- called (room_line above), admitting them if so and if the schedule has
-- room for one more: never more than k(now) in all, so a called place
-- whose shopper comes back once others took the places it left waits for
-- the next call (ahead 0). Admitting one already admitted changes nothing,
-- so asking again (a ticket that ran out, a tab that came back) never
-- counts twice.
--
-- KEYS[1] drawn     zset: username -> draw
-- KEYS[2] arrived   zset: username -> number
-- KEYS[3] meta      hash: arrived, admitted (how many were admitted)
-- KEYS[4] admitted  set: who was admitted
-- ARGV[1] username
-- ARGV[2] now (ms)
-- ARGV[3] the opening (ms)
-- ARGV[4] rate: places called a second
-- ARGV[5] grace (ms): how long a called place waits to be taken
-- ARGV[6] when the room's keys expire (ms since the epoch)
--
-- Returns {"ADMITTED"} | {"WAITING", places still to be called before it}
--       | {"NO_PLACE"}
local username = ARGV[1]
if redis.call('SISMEMBER', KEYS[4], username) == 1 then
  return {'ADMITTED'}
end
local place = position(KEYS[1], KEYS[2], username)
if not place then
  return {'NO_PLACE'}
end
local now, opening, rate = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local admitted = tonumber(redis.call('HGET', KEYS[3], 'admitted') or '0')
local called = calls(now, opening, rate, tonumber(ARGV[5]), admitted)
if place >= called then
  return {'WAITING', place - called}
end
if admitted >= scheduled(now, opening, rate) then
  return {'WAITING', 0}
end
redis.call('SADD', KEYS[4], username)
redis.call('HINCRBY', KEYS[3], 'admitted', 1)
redis.call('PEXPIREAT', KEYS[3], ARGV[6])
redis.call('PEXPIREAT', KEYS[4], ARGV[6])
return {'ADMITTED'}
