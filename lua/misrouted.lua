-- misrouted: prepended (see lib.rs) to the scripts that settle or restore
-- a held unit on its shopper's home shard. The refusal owed to a caller that routed by
-- a stale layout of the SKU's shards, or nil:
--   {"NOT_READY"}           the shard is not open yet (the SKU is being
--                           split); an unsharded SKU without keys is
--                           simply holding nothing
--   {"RESHARDED", shards}   the SKU has that many shards now
local function misrouted(meta, routed_by)
  if redis.call('EXISTS', meta) == 0 then
    if tonumber(routed_by) > 1 then
      return {'NOT_READY'}
    end
    return nil
  end
  local shards = tonumber(redis.call('HGET', meta, 'shards') or '1')
  if shards ~= tonumber(routed_by) then
    return {'RESHARDED', shards}
  end
  return nil
end

