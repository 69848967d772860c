-- sweep_ttl.lua: completed | failed | cancelled -> (deleted) once the result / failure TTL has passed.
-- rq:finished:<q>, rq:failed:<q> and rq:canceled:<q> score each id with the epoch second its TTL ends
-- (complete.lua, fail.lua, reap_expired.lua; cancel.lua and terminate.lua through file_ended), so the due
-- ids are a score range: the cost grows with the expired entries, not with the data stored.
-- A due job is deleted as prune.lua deletes one (hash, result, run history, registry and created-index
-- entries) and uncounted from its group's gauge. Its idempotency key is left to its own expiry
-- (idempotency_ttl): until then an enqueue with that key answers with this job's id, created=False.
-- An id whose job is already gone, or is no longer in that state, only leaves the registry. A job cancelled
-- by plain RQ (no js_state; RQ scores it with the cancel time and never expires it) is kept, as RQ keeps it:
-- its entry moves to +inf (counted as dropped).
-- KEYS: canceled, count, created, deferred, dependencies, dependents, failed, finished, job, quarantined, results, runs
-- ARGV: prefix, queue, state ('completed' | 'failed' | 'cancelled'), limit, nsample
-- Returns: {seen, deleted, dropped, deleted_id1 ..}: seen < limit means nothing due is left; then, when jobs
-- deleted had one (ids given on a Redis Cluster), a list {id1, js_inc1 ..} of them: the incarnation their id
-- directory entries hold (jobsvc/engine/directory.py)
local queue, state, limit, nsample = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local registry = TTL_STATES[state] and registry_of(state, queue)
if not registry then return redis.error_reply('sweep_ttl: ' .. tostring(state) .. ' has no TTL registry') end
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', registry, '-inf', string.format('%.3f', now / 1000), 'LIMIT', 0, limit)
if #ids == 0 then return {0, 0, 0} end
local deleted, dropped = 0, 0
local sample, gone, dels, kept_rq, incs = {}, {}, {}, {}, {}
for _, id in ipairs(ids) do
  local key = K.job(id)
  local h = redis.call('HMGET', key, 'js_state', 'status', 'origin', 'js_group', 'js_inc')
  local st = h[1] or (h[2] and (rq_to_state[h[2]] or 'queued'))
  if st == state and h[3] == queue and (h[1] or state ~= 'cancelled') then
    collect_deletion(id, h[4], state, dels)
    gone[#gone + 1] = id
    if h[5] then incs[#incs + 1] = id; incs[#incs + 1] = h[5] end
    if #sample < nsample then sample[#sample + 1] = id end
    deleted = deleted + 1
  else
    if st == state and h[3] == queue then
      kept_rq[#kept_rq + 1] = id  -- cancelled by plain RQ
    elseif not st and redis.call('EXISTS', key) == 0 then
      gone[#gone + 1] = id  -- the job is gone: its stale entries go everywhere
    end
    dropped = dropped + 1
  end
end
redis.call('ZREM', registry, unpack(ids))
for _, id in ipairs(kept_rq) do redis.call('ZADD', registry, '+inf', id) end
if #dels > 0 then redis.call('DEL', unpack(dels)) end
if #gone > 0 then
  leave_ended_registries(queue, gone)
  redis.call('ZREM', K.created(queue), unpack(gone))
end
local out = {#ids, deleted, dropped}
for _, id in ipairs(sample) do out[#out + 1] = id end
if #incs > 0 then out[#out + 1] = incs end
return out
