-- room_join: a shopper's place in a sale's waiting room: the one they
-- already have (a closed tab that comes back keeps its place), else a new
-- one. Before the sale opens a place is a random draw, and the early crowd
-- is called in the order of its draws, so arriving a millisecond sooner wins
-- nothing. From the opening on a place is the next number: later arrivals
-- are called first come, first served, after every draw.
--
-- KEYS[1] drawn    zset: username -> draw (those who came before the opening)
-- KEYS[2] arrived  zset: username -> number (those who came after)
-- KEYS[3] meta     hash: arrived (the last number given), admitted
-- KEYS[4] admitted set: who was let in (only its expiry is moved here)
-- ARGV[1] username
-- ARGV[2] now (ms)
-- ARGV[3] the opening (ms)
-- ARGV[4] draw: a random integer below 2^53, so exact as a score
-- ARGV[5] when the room's keys expire (ms since the epoch): the sale's end
--         as now known, and a day; every join moves it, so a sale moved
--         later keeps its line
--
-- Returns {"DRAWN", draw} | {"ARRIVED", number}
local username = ARGV[1]
local function kept(reply)
  for _, key in ipairs(KEYS) do
    redis.call('PEXPIREAT', key, ARGV[5])
  end
  return reply
end
local drawn = redis.call('ZSCORE', KEYS[1], username)
if drawn then
  return kept({'DRAWN', tonumber(drawn)})
end
local arrived = redis.call('ZSCORE', KEYS[2], username)
if arrived then
  return kept({'ARRIVED', tonumber(arrived)})
end
if tonumber(ARGV[2]) < tonumber(ARGV[3]) then
  local draw = tonumber(ARGV[4])
  redis.call('ZADD', KEYS[1], draw, username)
  return kept({'DRAWN', draw})
end
local number = redis.call('HINCRBY', KEYS[3], 'arrived', 1)
redis.call('ZADD', KEYS[2], number, username)
return kept({'ARRIVED', number})
