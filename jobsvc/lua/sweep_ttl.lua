-- sweep_ttl.lua: completed | failed -> (gone) once the result / failure TTL has passed. rq:finished:<q> and
-- rq:failed:<q> score each id with the epoch second its TTL ends (complete.lua, fail.lua, reap_expired.lua),
-- so the due ids are a score range: the cost grows with the expired entries, not with the data stored.
-- A due job is deleted as prune.lua deletes one (hash, result, run history, registry and created-index
-- entries, idempotency key) and uncounted from its group's gauge; an id whose job is already gone, or is no
-- longer in that state, only leaves the registry.
-- KEYS: none
-- ARGV: prefix, queue, state ('completed' | 'failed'), limit, nsample
-- Returns: {seen, deleted, dropped, deleted_id1 ..}: seen < limit means nothing due is left
local prefix, queue, state, limit, nsample = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local registry
if state == 'completed' then registry = 'rq:finished:' .. queue
elseif state == 'failed' then registry = 'rq:failed:' .. queue
else return redis.error_reply('sweep_ttl: ' .. tostring(state) .. ' has no TTL registry') end
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', registry, '-inf', string.format('%.3f', now / 1000), 'LIMIT', 0, limit)
if #ids == 0 then return {0, 0, 0} end
local deleted, dropped = 0, 0
local sample, gone, dels, by_group = {}, {}, {}, {}
for _, id in ipairs(ids) do
  local key = job_key(id)
  local h = redis.call('HMGET', key, 'js_state', 'status', 'origin', 'js_group', 'js_idem')
  local st = h[1] or (h[2] and (rq_to_state[h[2]] or 'queued'))
  if st == state and h[3] == queue then
    collect_deletion(prefix, id, h[5], h[4], dels, by_group)
    gone[#gone + 1] = id
    if #sample < nsample then sample[#sample + 1] = id end
    deleted = deleted + 1
  else
    -- The job is gone (or lives on in another state): only its stale entry goes.
    if not st and redis.call('EXISTS', key) == 0 then gone[#gone + 1] = id end
    dropped = dropped + 1
  end
end
redis.call('ZREM', registry, unpack(ids))
if #dels > 0 then redis.call('DEL', unpack(dels)) end
if #gone > 0 then
  local other = state == 'completed' and 'rq:failed:' .. queue or 'rq:finished:' .. queue
  redis.call('ZREM', other, unpack(gone))
  redis.call('ZREM', 'rq:canceled:' .. queue, unpack(gone))
  redis.call('ZREM', prefix .. 'quarantined:' .. queue, unpack(gone))
  redis.call('ZREM', prefix .. 'created:' .. queue, unpack(gone))
end
for group, n in pairs(by_group) do redis.call('HINCRBY', prefix .. 'count:' .. group, state, -n) end
local out = {#ids, deleted, dropped}
for _, id in ipairs(sample) do out[#out + 1] = id end
return out
