-- room_status (after room_line): a sale's waiting room as its public
-- document shows it, for every waiting page to tell for itself whether its
-- place was called: the draws up to the last called one, and the arrivals
-- up to a number.
--
-- KEYS[1] drawn    zset: username -> draw
-- KEYS[2] arrived  zset: username -> number
-- KEYS[3] meta     hash: arrived, admitted
-- ARGV[1] now (ms)
-- ARGV[2] the opening (ms)
-- ARGV[3] rate: places called a second
-- ARGV[4] grace (ms)
--
-- Returns {"ROOM", draws, arrivals, admitted, called, last called draw
--          (-1 if none), arrivals called}
local draws = redis.call('ZCARD', KEYS[1])
local arrivals = tonumber(redis.call('HGET', KEYS[3], 'arrived') or '0')
local admitted = tonumber(redis.call('HGET', KEYS[3], 'admitted') or '0')
local called = calls(tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), admitted)
local last_draw = -1
if called > 0 and draws > 0 then
  local last = redis.call('ZRANGE', KEYS[1], math.min(called, draws) - 1, math.min(called, draws) - 1, 'WITHSCORES')
  last_draw = tonumber(last[2])
end
return {'ROOM', draws, arrivals, admitted, called, last_draw, math.max(0, math.min(called - draws, arrivals))}
