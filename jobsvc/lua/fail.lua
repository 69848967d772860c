-- fail.lua: running -> scheduled (retry after backoff) or failed (attempts used up, or not
-- retryable), fenced by the lease token. Every attempt's error is kept in the run history.
-- KEYS: none
-- ARGV: prefix, id, token, ended_at, retryable (1|0), delay_ms, exc_type, message, traceback,
--       exc_string_b64z (RQ result payload), worker, started_ts, ended_ts, default_failure_ttl,
--       default_max_attempts, run_extras (JSON object or '': an HTTP handler's status and duration)
-- Returns: {0, 'scheduled', due_ms} | {0, 'failed'}; {-1} no such job; {-2, state} lease lost
local prefix, id, token = ARGV[1], ARGV[2], ARGV[3]
local key = job_key(id)
local h = redis.call('HMGET', key, 'js_token', 'origin', 'failure_ttl', 'js_attempts', 'js_max_attempts',
  'js_started_ms', 'js_group', 'js_schedule', 'js_callback')
local rejected = fence(key, h[1], token)
if rejected then return rejected end
local queue = h[2]
local now = now_ms()
local attempts = tonumber(h[4]) or 1
local max_attempts = tonumber(h[5]) or tonumber(ARGV[15])
drop_lease(prefix, id)
local retry = ARGV[5] == '1' and attempts < max_attempts
local outcome = retry and 'retrying' or 'failed'
add_run(prefix, id, with_extras({attempt = attempts, worker = ARGV[11], started_ms = tonumber(h[6]), ended_ms = now,
  outcome = outcome, exc_type = ARGV[7], message = ARGV[8], traceback = ARGV[9]}, ARGV[16]))
hset_unleased(key, {'ended_at', ARGV[4], 'js_ended_ms', now, 'js_error', ARGV[7] .. ': ' .. ARGV[8]})
-- Every attempt's run time is observed, retried or not.
if h[6] then observe(prefix, h[7], 'run', now - tonumber(h[6])) end
redis.call('XADD', 'rq:results:' .. id, 'MAXLEN', 10, '*', 'type', retry and 4 or 2, 'worker_name', ARGV[11],
  'exc_string', ARGV[10], 'execution_started_at', ARGV[12], 'execution_ended_at', ARGV[13])
if retry then
  local due = now + tonumber(ARGV[6])
  make_scheduled(prefix, id, due, queue)
  gauge(prefix, h[7], 'running', 'scheduled')
  count_event(prefix, now, queue, h[7], 'retried')
  return {0, 'scheduled', due}
end
local ttl = tonumber(h[3]) or tonumber(ARGV[14])
redis.call('HSET', key, 'status', 'failed', 'js_state', 'failed')
if ttl ~= 0 then
  redis.call('ZADD', 'rq:failed:' .. queue, (ttl < 0) and '+inf' or (math.floor(now / 1000) + ttl), id)
end
notify_end(prefix, id, h[9], now, {'state', 'failed', 'error', ARGV[7] .. ': ' .. ARGV[8]})
set_lifetime(prefix, id, queue, ttl)
gauge(prefix, h[7], 'running', ttl ~= 0 and 'failed' or nil)
count_event(prefix, now, queue, h[7], 'failed')
-- A schedule's job: count the run's outcome on the schedule (jobsvc/schedules.py).
if h[8] then redis.call('HINCRBY', prefix .. 'schedule:' .. h[8] .. ':stats', 'failed', 1) end
return {0, 'failed'}
