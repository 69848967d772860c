-- cancel.lua: queued | scheduled | deferred -> cancelled. The job is kept for its failure TTL (its own
-- failure_ttl, else the default), then the TTL sweep deletes it (file_ended in _lib.lua).
-- KEYS: canceled, count, created, deferred, failed, finished, groups, job, lane, minute, notify, notify_entry, quarantined, results, rq_queue, rq_scheduled, runs, schedule_stats, scheduled, scheduled_in, tally
-- ARGV: prefix, id, ended_at, failure_ttl_default
-- Returns: {OK}; {NOT_FOUND} no such job; {WRONG_STATE, state} not cancellable (running jobs are terminated instead)
local id = ARGV[2]
local key = K.job(id)
if redis.call('EXISTS', key) == 0 then return {NOT_FOUND} end
local state = state_of(key)
if state ~= 'queued' and state ~= 'scheduled' and state ~= 'deferred' then return {WRONG_STATE, state} end
local h = redis.call('HMGET', key, 'origin', 'js_priority', 'js_group', 'js_callback', 'description', 'failure_ttl')
local queue = h[1]
local ttl = tonumber(h[6]) or tonumber(ARGV[4])
if state == 'queued' then redis.call('LREM', lane_key(queue, h[2]), 1, id) end
redis.call('ZREM', K.scheduled, id)
redis.call('ZREM', K.scheduled_in(queue), id)
redis.call('ZREM', K.rq_scheduled(queue), id)
redis.call('ZREM', K.deferred(queue), id)
local now = now_ms()
local from = state
if not h[3] then  -- enqueued by plain RQ and never moved by jobsvc: counted from now on
  local adopted
  h[3], adopted = adopt_rq_job(id, queue, h[5], now)
  redis.call('HSET', key, unpack(adopted))
  from = nil
end
redis.call('HSET', key, 'status', 'canceled', 'js_state', 'cancelled', 'ended_at', ARGV[3], 'js_ended_ms', now)
file_ended(now, id, queue, h[3], from, 'cancelled', ttl)
-- Not a run's end (it never ran), but counted and told as one.
run_counted(now, queue, h[3], 'cancelled')
job_told(now, id, nil, h[4], 'cancelled', 'error', 'Cancelled: by an operator')
return {OK}
