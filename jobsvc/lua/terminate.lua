-- terminate.lua: running -> cancelled by an operator. The lease is revoked here (so whatever the
-- worker reports later is rejected) and the worker is told through its terminate list; it stops
-- the job within a heartbeat tick. Like a cancelled job, it is kept for its failure TTL (keep_cancelled).
-- KEYS: none
-- ARGV: prefix, id, ended_at, failure_ttl_default
-- Returns: {0, worker}; {-1} no such job; {-3, state} not running
local prefix, id = ARGV[1], ARGV[2]
local key = job_key(id)
if redis.call('EXISTS', key) == 0 then return {-1} end
local state = state_of(key)
if state ~= 'running' then return {-3, state} end
local h = redis.call('HMGET', key, 'origin', 'js_group', 'worker_name', 'js_attempts', 'js_started_ms',
  'js_callback', 'failure_ttl')
local queue, worker = h[1], h[3] or ''
local ttl = tonumber(h[7]) or tonumber(ARGV[4])
local now = now_ms()
drop_lease(prefix, id)
hset_unleased(key, {'status', 'canceled', 'js_state', 'cancelled', 'ended_at', ARGV[3], 'js_ended_ms', now,
  'js_error', 'Terminated: by an operator'})
add_run(prefix, id, {attempt = tonumber(h[4]), worker = worker, started_ms = tonumber(h[5]), ended_ms = now,
  outcome = 'terminated', exc_type = 'Terminated', message = 'terminated by an operator'})
keep_cancelled(prefix, id, queue, ttl, now)
-- Only a Python worker reads a terminate list: a job held by an HTTP handler service ('callback') or a pull
-- worker just loses its lease (their next heartbeat or ack gets 409).
if worker ~= '' and worker ~= 'callback' and string.sub(worker, 1, 5) ~= 'pull:' then
  local tkey = prefix .. 'terminate:' .. worker
  redis.call('RPUSH', tkey, id)
  redis.call('EXPIRE', tkey, 3600)
end
gauge(prefix, h[2], 'running', 'cancelled')
notify_end(prefix, id, h[6], now, {'state', 'cancelled', 'error', 'Terminated: by an operator'})
count_event(prefix, now, queue, h[2], 'cancelled')
return {0, worker}
