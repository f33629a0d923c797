-- room_line (prepended to room_admit.lua and room_status.lua): the order
-- of a waiting room's line, and how many of its places have been called
-- by `now`. Places are called at `rate` a second from the opening:
-- k(t) = floor(rate * (t - opening) / 1000). A place called more than
-- `grace` ago and still not taken is given to the next in line, so
-- k(now - grace) - admitted more are called: abandoned places do not hold
-- the line. Admissions are capped at k(now) apart from that (see
-- room_admit.lua), so they never outrun the rate, however many of the
-- called come back for their places.
local function scheduled(t, opening, rate)
  if t <= opening then
    return 0
  end
  return math.floor(rate * (t - opening) / 1000)
end

local function calls(now, opening, rate, grace, admitted)
  return scheduled(now, opening, rate) + math.max(0, scheduled(now - grace, opening, rate) - admitted)
end

-- A place's position in the line (0 first): the draws in the order of
-- their draws, then the arrivals by number. nil if the shopper has none.
local function position(drawn, arrived, username)
  local rank = redis.call('ZRANK', drawn, username)
  if rank then
    return rank
  end
  local number = redis.call('ZSCORE', arrived, username)
  if number then
    return redis.call('ZCARD', drawn) + tonumber(number) - 1
  end
  return nil
end

