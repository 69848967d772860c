-- complete.lua: running -> completed, fenced by the lease token; releases the job's dependents whose
-- dependencies are now all done (deferred -> queued, release_dependents in _lib.lua), in the same step.
-- KEYS: none
-- ARGV: prefix, id, token, ended_at, return_value_b64 ('' for None), worker, started_ts, ended_ts,
--       default_result_ttl, run_extras (JSON object or '': e.g. an HTTP handler's status and duration),
--       wake_cap (for the queues of released dependents)
-- Returns: {OK} done; {NOT_FOUND} no such job; {LEASE_LOST, state} lease lost (outcome rejected, nothing written)
-- A successful run writes no run-history entry unless it has extras: the hash holds its attempt,
-- worker and times. A job with a callback_url is put on the notification outbox.
local prefix, id, token = ARGV[1], ARGV[2], ARGV[3]
local key = job_key(id)
local h = redis.call('HMGET', key, 'js_token', 'origin', 'result_ttl', 'js_attempts', 'js_runs', 'js_group',
  'js_schedule', 'js_started_ms', 'js_callback', 'js_max_attempts', 'js_dependents', 'dependency_ids')
local rejected = fence(key, h[1], token)
if rejected then return rejected end
local queue = h[2]
local now = now_ms()
local ttl = tonumber(h[3]) or tonumber(ARGV[9])
drop_lease(prefix, id)
hset_unleased(key, {'status', 'finished', 'js_state', 'completed', 'ended_at', ARGV[4], 'js_ended_ms', now})
local res = {'type', 1, 'worker_name', ARGV[6], 'execution_started_at', ARGV[7], 'execution_ended_at', ARGV[8]}
if ARGV[5] ~= '' then res[#res + 1] = 'return_value'; res[#res + 1] = ARGV[5] end
redis.call('XADD', 'rq:results:' .. id, 'MAXLEN', 10, '*', unpack(res))
if ttl ~= 0 then
  local expires = (ttl < 0) and '+inf' or (math.floor(now / 1000) + ttl)
  redis.call('ZADD', 'rq:finished:' .. queue, expires, id)
end
local extras = ARGV[10] or ''
if extras ~= '' then
  add_run(prefix, id, with_extras({attempt = tonumber(h[4]) or 1, worker = ARGV[6], started_ms = tonumber(h[8]),
    ended_ms = now, outcome = 'completed'}, extras))
end
notify_end(prefix, id, h[9], now, {'state', 'completed', 'result_b64', ARGV[5]})
-- Dependents: jobsvc's enqueue marks a job that has some (js_dependents), so a job of jobsvc's API without
-- any costs nothing here; RQ's enqueue marks nothing, so a plain-RQ job's set is read (one command).
local waiting = 0
if h[11] or follows_rq(h[10]) then
  waiting = release_dependents(prefix, id, 'finished', ARGV[4], now, tonumber(ARGV[11]))
end
-- The run history exists only if add_run wrote one (js_runs; attempts > 1 covers jobs stored before it).
set_lifetime(prefix, id, queue, ttl, extras ~= '' or h[5] == '1' or (tonumber(h[4]) or 1) > 1,
  dependency_keys(id, h[12], waiting))
gauge(prefix, h[6], 'running', ttl ~= 0 and 'completed' or nil)
count_event(prefix, now, queue, h[6], 'completed')
if h[8] then observe(prefix, h[6], 'run', now - tonumber(h[8])) end
-- A schedule's job: count the run's outcome on the schedule (jobsvc/schedules.py).
if h[7] then redis.call('HINCRBY', prefix .. 'schedule:' .. h[7] .. ':stats', 'completed', 1) end
return {OK}
