-- delete.lua: remove a job that is not running, with everything that points to it, its idempotency key
-- included: an operator's delete of one job frees the key, so the next enqueue with it creates a new job
-- (the TTL sweep and prune keep the key for its own TTL instead, see collect_deletion in _lib.lua).
-- scheduled | queued | deferred | completed | failed | quarantined | cancelled -> (deleted): any state but running.
-- KEYS: canceled, count, created, deferred, dependencies, dependents, failed, finished, idempotency, job, lane, quarantined, results, rq_queue, rq_scheduled, runs, scheduled, scheduled_in
-- ARGV: prefix, id
-- Returns: {OK} ({OK, js_inc} for a job that has one: an id given on a Redis Cluster, whose id directory entry
-- the caller removes then: jobsvc/engine/directory.py); {NOT_FOUND} no such job; {WRONG_STATE, 'running'} terminate it first
local id = ARGV[2]
local key = K.job(id)
if redis.call('EXISTS', key) == 0 then return {NOT_FOUND} end
local state = state_of(key)
if state == 'running' then return {WRONG_STATE, state} end
local h = redis.call('HMGET', key, 'origin', 'js_priority', 'js_group', 'js_idem', 'js_ns', 'js_inc')
local queue = h[1] or ''
if state == 'queued' then redis.call('LREM', lane_key(queue, h[2]), 1, id) end
for _, z in ipairs({K.scheduled, K.scheduled_in(queue), K.rq_scheduled(queue),
    K.deferred(queue), K.finished(queue), K.failed(queue), K.canceled(queue),
    K.quarantined(queue), K.created(queue)}) do
  redis.call('ZREM', z, id)
end
-- Its idempotency key is scoped to its namespace (jobsvc/engine/keys.py idempotency_scope).
local ikey = h[4] and K.idempotency((h[5] or 'default') .. ':' .. h[4])
if ikey and redis.call('GET', ikey) == id then redis.call('DEL', ikey) end
-- Its dependency sets go with it, as RQ's Job.delete takes them (jobs still waiting on it stay deferred).
redis.call('DEL', unpack(job_keys(id)))
gauge(h[3], state, nil)
if h[6] then return {OK, h[6]} end
return {OK}
