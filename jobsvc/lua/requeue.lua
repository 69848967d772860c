-- requeue.lua: failed | quarantined | cancelled -> queued, attempts and lease losses reset,
-- run history kept (an operator's retry). Dependents still waiting on it keep waiting, for its next end.
-- KEYS: canceled, count, created, deferred, dependents, failed, finished, job, lane, lanes, quarantined, results, rq_queue, runs, stats, wake
-- ARGV: prefix, id, enqueued_at, wake_cap
-- Returns: {OK}; {NOT_FOUND} no such job; {WRONG_STATE, state} not in a state that can be retried
local id = ARGV[2]
local key = K.job(id)
if redis.call('EXISTS', key) == 0 then return {NOT_FOUND} end
local state = state_of(key)
local h = redis.call('HMGET', key, 'origin', 'js_priority', 'js_group')
local queue = h[1]
local registry = terminal_registry(state, queue)
if not registry then return {WRONG_STATE, state} end
redis.call('ZREM', registry, id)
redis.call('HSET', key, 'js_attempts', 0, 'js_lease_losses', 0)
redis.call('HDEL', key, 'js_error', 'ended_at', 'js_ended_ms')
-- Kept while it runs again, with the set of its dependents still waiting on it (released when it ends).
set_lifetime(id, queue, -1, true, {K.dependents(id)})
make_ready(id, queue, h[2], false, ARGV[3])
gauge(h[3], state, 'queued')
wake_workers(queue, 1, tonumber(ARGV[4]))
stat(queue, 'requeued')
return {OK}
