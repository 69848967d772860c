-- fail.lua: running -> scheduled | queued | failed, fenced by the lease token: a retry (after its wait, or at once)
-- or a failure for good. Which retry rule applies, jobsvc's attempts and backoff or RQ's Retry, is decided by
-- retry_plan in _lib.lua. A job that fails for good releases its dependents that allow failure (deferred ->
-- queued, release_dependents), in the same step. Every attempt's error is kept in the run history.
-- KEYS: canceled, count, created, deferred, dependencies, dependents, failed, finished, job, lane, lanes, leases, minute, notify, notify_entry, quarantined, results, rq_queue, runs, schedule_stats, scheduled, scheduled_in, scheduler_wake, tally, wake, release
-- ARGV: prefix, id, token, ended_at, retryable (1|0), delay_ms (jobsvc's backoff for this attempt), exc_type,
--       message, traceback, exc_string_b64z (RQ result payload), worker, started_ts, ended_ts,
--       default_failure_ttl, wake_cap, run_extras (JSON object or '': an HTTP handler's status and duration)
-- Returns: {OK, 'scheduled', due_ms} | {OK, 'queued'} (RQ's Retry without an interval) | {OK, 'failed'};
--          {NOT_FOUND} no such job; {LEASE_LOST, state} lease lost
local id, token = ARGV[2], ARGV[3]
local key = K.job(id)
local h = redis.call('HMGET', key, 'js_token', 'origin', 'failure_ttl', 'js_attempts', 'js_max_attempts',
  'js_started_ms', 'js_group', 'js_schedule', 'js_callback', 'retries_left', 'retry_intervals',
  'enqueue_at_front_on_retry', 'js_priority', 'js_dependents', 'dependency_ids')
local rejected = fence(key, h[1], token)
if rejected then return rejected end
local queue = h[2]
local now = now_ms()
local attempts = tonumber(h[4]) or 1
local wake_cap = tonumber(ARGV[15])
drop_lease(id)
local plan = retry_plan({max_attempts = h[5], attempts = attempts, retries_left = h[10], retry_intervals = h[11],
  at_front = h[12]}, ARGV[5] == '1', tonumber(ARGV[6]))
add_run(id, with_extras({attempt = attempts, worker = ARGV[11], started_ms = tonumber(h[6]), ended_ms = now,
  outcome = plan and 'retrying' or 'failed', exc_type = ARGV[7], message = ARGV[8], traceback = ARGV[9]}, ARGV[16]))
local due = plan and not plan.now and now + plan.delay_ms or nil
-- js_acked: where this token's ack sent the job (state|due|token), so that a retried ack of it is answered,
-- not refused (jobsvc/http/pull.py: replayed); in the HSET that ends the lease, no command of its own.
local acked = (plan and (plan.now and 'queued' or 'scheduled') or 'failed') .. '|' .. (due or '') .. '|' .. token
local fields = {'ended_at', ARGV[4], 'js_ended_ms', now, 'js_error', ARGV[7] .. ': ' .. ARGV[8], 'js_acked', acked}
for _, v in ipairs(plan and plan.fields or {'status', 'failed', 'js_state', 'failed'}) do fields[#fields + 1] = v end
hset_unleased(key, fields)
-- Every attempt's run time is observed, retried or not.
local ms = run_ms(now, ARGV[12], ARGV[13], h[6])
-- RQ writes no result for an attempt it retries; jobsvc's own jobs keep one (type 4, RETRIED) per retry.
if not (plan and follows_rq(h[5])) then
  redis.call('XADD', K.results(id), 'MAXLEN', 10, '*', 'type', plan and 4 or 2, 'worker_name', ARGV[11],
    'exc_string', ARGV[10], 'execution_started_at', ARGV[12], 'execution_ended_at', ARGV[13])
end
if plan then
  run_counted(now, queue, h[7], 'retried', ms)
  if plan.now then
    make_ready(id, queue, h[13], plan.front, ARGV[4], now)
    gauge(h[7], 'running', 'queued')
    wake_workers(queue, 1, wake_cap)
    return {OK, 'queued'}
  end
  make_scheduled(id, due, queue)
  gauge(h[7], 'running', 'scheduled')
  return {OK, 'scheduled', due}
end
local ttl = tonumber(h[3]) or tonumber(ARGV[14])
-- Dependents (see complete.lua): only those that allow failure go on; the others stay deferred.
local waiting = 0
if h[14] or follows_rq(h[5]) then
  waiting = release_dependents(id, 'failed', ARGV[4], now, wake_cap)
  note_release(id, queue, h[14], 'failed')  -- a cluster's dependents in other queues
end
file_ended(now, id, queue, h[7], 'running', 'failed', ttl, true, dependency_keys(id, h[15], waiting))
run_counted(now, queue, h[7], 'failed', ms)
job_told(now, id, h[8], h[9], 'failed', 'error', ARGV[7] .. ': ' .. ARGV[8])
return {OK, 'failed'}
