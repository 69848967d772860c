-- terminate.lua: running -> cancelled by an operator (mode 'terminate'), or running -> failed by RQ's stop-job
-- command (mode 'stop'). The lease is revoked here (so whatever the worker reports later is rejected) and the
-- worker is told through its terminate list; it stops the job within a heartbeat tick.
-- * terminate (jobsvc terminate, the API, the dashboard): like a cancelled job, kept for its failure TTL in
--   rq:canceled:<q> (file_ended), no result entry.
-- * stop (rq.command.send_stop_job_command, received by the worker running the job): recorded as RQ's worker
--   records it (rq/worker/base.py handle_job_failure with a stopped job): RQ status 'stopped', in
--   FailedJobRegistry (rq:failed:<q>) for its failure TTL, and a failed result entry. jobsvc's state is 'failed',
--   the state of the registry it sits in, so listing, gauges and `rq info` agree. No retry, whatever
--   retries_left says, and its dependents stay deferred (RQ: a stopped dependency is never met).
-- KEYS: canceled, count, created, deferred, failed, finished, job, leases, minute, notify, notify_entry, quarantined, results, runs, schedule_stats, tally, terminate
-- ARGV: prefix, id, ended_at, failure_ttl_default, mode ('terminate' | 'stop'), stop_exc_string_b64z (RQ's
--       result payload of a stop: 'Job stopped by user, work-horse terminated.'; '' with 'terminate')
--       [, tell: '1' on a Redis Cluster only: a single Redis has no id directory; its reply stays as it always was]
-- Returns: {OK, worker} ({OK, worker, js_inc ('' = none)} with `tell` for a stop that deleted the job: failure TTL
-- 0; a cluster's caller removes its id directory entry, jobsvc/engine/directory.py); {NOT_FOUND} no such job; {WRONG_STATE, state} not running; an error reply for an unknown mode
local id, mode = ARGV[2], ARGV[5] or 'terminate'
if mode ~= 'terminate' and mode ~= 'stop' then
  return redis.error_reply('terminate.lua: mode must be terminate or stop, not ' .. mode)
end
local key = K.job(id)
if redis.call('EXISTS', key) == 0 then return {NOT_FOUND} end
local state = state_of(key)
if state ~= 'running' then return {WRONG_STATE, state} end
local h = redis.call('HMGET', key, 'origin', 'js_group', 'worker_name', 'js_attempts', 'js_started_ms',
  'js_callback', 'failure_ttl', 'js_inc')
local queue, worker = h[1], h[3] or ''
local ttl = tonumber(h[7]) or tonumber(ARGV[4])
local now = now_ms()
local stop = mode == 'stop'
local reason = stop and 'JobStopped: by send_stop_job_command' or 'Terminated: by an operator'
drop_lease(id)
hset_unleased(key, {'status', stop and 'stopped' or 'canceled', 'js_state', stop and 'failed' or 'cancelled',
  'ended_at', ARGV[3], 'js_ended_ms', now, 'js_error', reason})
add_run(id, {attempt = tonumber(h[4]), worker = worker, started_ms = tonumber(h[5]), ended_ms = now,
  outcome = stop and 'stopped' or 'terminated', exc_type = stop and 'JobStopped' or 'Terminated',
  message = stop and 'stopped by send_stop_job_command' or 'terminated by an operator'})
local ended = stop and 'failed' or 'cancelled'
if stop then
  redis.call('XADD', K.results(id), 'MAXLEN', 10, '*', 'type', 2, 'worker_name', worker,
    'exc_string', ARGV[6], 'execution_started_at', tostring((tonumber(h[5]) or now) / 1000),
    'execution_ended_at', tostring(now / 1000))
end
-- A stop with failure_ttl 0 is deleted at once, as fail.lua and RQ's FailedJobRegistry.add do; a terminated
-- job is kept until the next TTL sweep (file_ended).
file_ended(now, id, queue, h[2], 'running', ended, ttl)
-- Only a Python worker reads a terminate list: a job held by an HTTP handler service ('callback') or a pull
-- worker just loses its lease (their next heartbeat or ack gets 409).
if worker ~= '' and worker ~= 'callback' and string.sub(worker, 1, 5) ~= 'pull:' then
  local tkey = K.terminate(worker)
  redis.call('RPUSH', tkey, id)
  redis.call('EXPIRE', tkey, 3600)
end
run_counted(now, queue, h[2], ended)
job_told(now, id, nil, h[6], ended, 'error', reason)
if stop and ttl == 0 and ARGV[7] == '1' then return {OK, worker, h[8] or ''} end
return {OK, worker}
