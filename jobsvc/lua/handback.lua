-- handback.lua: running -> queued at the front of its lane, attempt not counted
-- (a stopping worker returns a job it did not finish; no fault of the job).
-- KEYS: count, job, lane, lanes, leases, rq_queue, runs, wake
-- ARGV: prefix, id, token, worker, enqueued_at, wake_cap
-- Returns: {OK}; {NOT_FOUND} no such job; {LEASE_LOST, state} lease lost
local id, token = ARGV[2], ARGV[3]
local key = K.job(id)
local h = redis.call('HMGET', key, 'js_token', 'origin', 'js_priority', 'js_attempts', 'js_started_ms', 'js_group')
local rejected = fence(key, h[1], token)
if rejected then return rejected end
local queue = h[2]
drop_lease(id)
hset_unleased(key, {'js_attempts', math.max(0, (tonumber(h[4]) or 1) - 1)})
add_run(id, {attempt = tonumber(h[4]), worker = ARGV[4], started_ms = tonumber(h[5]),
  ended_ms = now_ms(), outcome = 'handed_back'})
make_ready(id, queue, h[3], true, ARGV[5])
gauge(h[6], 'running', 'queued')
wake_workers(queue, 1, tonumber(ARGV[6]))
return {OK}
