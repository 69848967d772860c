-- complete.lua: running -> completed, for one job or a worker's batch, each fenced by its own lease token;
-- releases each job's dependents whose dependencies are now all done (deferred -> queued, release_dependents in
-- _lib.lua), in the same step.
-- KEYS: canceled, count, created, deferred, dependencies, dependents, failed, finished, job, lane, lanes, leases, minute, notify, notify_entry, quarantined, results, rq_queue, runs, schedule_stats, tally, wake, release
-- ARGV: prefix, worker, default_result_ttl, wake_cap (for the queues of released dependents), then per job
--       (7 each): id, token, ended_at, return_value_b64 ('' for None), started_ts, ended_ts (epoch seconds, the
--       worker's clock: the run's time is their difference), run_extras (JSON object or '': e.g. an HTTP
--       handler's status and duration)
-- Returns: one reply per job, in order: {OK} done; {NOT_FOUND} no such job; {LEASE_LOST, state} lease lost
--          (that job's outcome rejected, nothing written for it)
-- Per job: HMGET, HSET and the result entry (XADD); the lease index, the registry, gauges and counters are
-- written once per call (file_ended, run_ended and flush_counters in _lib.lua). A successful run writes no
-- run-history entry unless it has extras: the hash holds its attempt, worker and times. A job with a
-- callback_url is put on the notification outbox.
local worker, default_ttl, wake_cap = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
local DONE = {OK}  -- the reply of every job recorded (one table for all)

local function complete(id, token, ended_at, value, started_ts, ended_ts, extras)
  local key = K.job(id)
  local h = redis.call('HMGET', key, 'js_token', 'origin', 'result_ttl', 'js_attempts', 'js_runs', 'js_group',
    'js_schedule', 'js_callback', 'js_max_attempts', 'js_dependents', 'dependency_ids')
  local rejected = fence(key, h[1], token)
  if rejected then return rejected end
  local queue = h[2]
  local ttl = tonumber(h[3]) or default_ttl
  drop_lease(id)
  -- js_acked: the outcome this token recorded, so that a retried ack of it is answered, not refused
  -- (jobsvc/http/pull.py: replayed); in the HSET that ends the lease, no command of its own.
  hset_unleased(key, {'status', 'finished', 'js_state', 'completed', 'ended_at', ended_at, 'js_ended_ms', now,
    'js_acked', 'completed||' .. token})
  local res = {'type', 1, 'worker_name', worker, 'execution_started_at', started_ts, 'execution_ended_at', ended_ts}
  if value ~= '' then res[#res + 1] = 'return_value'; res[#res + 1] = value end
  redis.call('XADD', K.results(id), 'MAXLEN', 10, '*', unpack(res))
  if extras ~= '' then
    add_run(id, with_extras({attempt = tonumber(h[4]) or 1, worker = worker,
      started_ms = math.floor((tonumber(started_ts) or 0) * 1000), ended_ms = now, outcome = 'completed'}, extras))
  end
  -- Dependents: jobsvc's enqueue marks a job that has some (js_dependents), so a job of jobsvc's API without
  -- any costs nothing here; RQ's enqueue marks nothing, so a plain-RQ job's set is read (one command).
  local waiting = 0
  if h[10] or follows_rq(h[9]) then
    waiting = release_dependents(id, 'finished', ended_at, now, wake_cap)
    note_release(id, queue, h[10], 'finished')  -- a cluster's dependents in other queues
  end
  -- The run history exists only if add_run wrote one (js_runs; attempts > 1 covers jobs stored before it).
  local has_runs = extras ~= '' or h[5] == '1' or (tonumber(h[4]) or 1) > 1
  -- Its dependency sets share its lifetime; a TTL (the usual case) leaves them to the sweep, like the job.
  local extra = ttl <= 0 and dependency_keys(id, h[11], waiting) or nil
  file_ended(now, id, queue, h[6], 'running', 'completed', ttl, has_runs, extra)
  run_counted(now, queue, h[6], 'completed', run_ms(now, started_ts, ended_ts, nil))
  job_told(now, id, h[7] or nil, h[8] or nil, 'completed', 'result_b64', value)
  return DONE
end

local out = {}
for i = 5, #ARGV, 7 do
  out[#out + 1] = complete(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6])
end
return out
