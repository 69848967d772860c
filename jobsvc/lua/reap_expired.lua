-- reap_expired.lua: running -> queued | scheduled | failed | quarantined for every job whose lease expired
-- (its worker died, hung or was cut off). Clearing the token fences the old worker: its late outcome is rejected.
-- The lost attempt counts, and retry_plan in _lib.lua decides what follows, as for a failure (fail.lua):
-- * a job of jobsvc's API: requeued at the front of its queue while it has attempts left, else failed; the lease
--   loss counts too, and a job that loses max_lease_losses leases is quarantined instead of killing more workers.
-- * a job enqueued with RQ's own API: as RQ's StartedJobRegistry.cleanup treats a job whose worker died
--   (AbandonedJobError): retried by its Retry (retries_left spent, its interval waited, the front of its queue with
--   enqueue_at_front_on_retry), else failed in FailedJobRegistry with a failed result whose text is RQ's ("Moved to
--   FailedJobRegistry, due to AbandonedJobError, at <time>", worker_name ''). Never quarantined: RQ has no
--   quarantine, and without retry= it fails at its first lost lease anyway. Its lease losses are still counted.
-- A job that fails for good releases its dependents that allow failure (deferred -> queued), in the same step (as
-- fail.lua; RQ's cleanup calls enqueue_dependents too).
-- KEYS: canceled, count, created, deferred, dependencies, dependents, failed, finished, job, lane, lanes, leases, minute, notify, notify_entry, quarantined, results, rq_queue, runs, schedule_stats, scheduled, scheduled_in, scheduler_wake, tally, wake, release
-- ARGV: prefix, max_lease_losses, limit, abandoned_exc_string_b64z (RQ's result payload for an RQ job failed
--       here), enqueued_at, default_failure_ttl, wake_cap[, tell: '1' on a Redis Cluster only]
-- Returns: {requeued (queued or scheduled for a retry), failed, quarantined, next_expiry_ms (-1 if none), now_ms},
--          then, with `tell` and when some failed jobs were deleted at once (failure TTL 0), a list
--          {id1, js_inc1 ('' = none) ..} of them: a cluster's caller removes their id directory entries
--          (jobsvc/engine/directory.py); a single Redis has none, and its reply stays as it always was
local max_losses, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local wake_cap = tonumber(ARGV[7])
local tell = ARGV[8] == '1'
local leases = K.leases
local now = now_ms()
local requeued, failed, quarantined = 0, 0, 0
local deleted = {}

-- Back on its queue now, or scheduled after the plan's wait. jobsvc's own jobs go to the front, as before:
-- the lost attempt was already at the head of the line.
local function retry(id, queue, h, plan, rq)
  local fields = {}
  for _, v in ipairs(plan.fields) do fields[#fields + 1] = v end
  if #fields > 0 then redis.call('HSET', K.job(id), unpack(fields)) end
  if plan.delay_ms > 0 then
    make_scheduled(id, now + plan.delay_ms, queue)
    gauge(h[8], 'running', 'scheduled')
  else
    make_ready(id, queue, h[2], plan.front or not rq, ARGV[5], now)
    gauge(h[8], 'running', 'queued')
    wake_workers(queue, 1, wake_cap)
  end
end

-- Failed for good: FailedJobRegistry for its failure TTL, dependents that allow failure released.
local function fail(id, queue, h, reason, rq)
  local key = K.job(id)
  redis.call('HSET', key, 'status', 'failed', 'js_state', 'failed', 'js_error', reason, 'js_ended_ms', now)
  if rq then
    redis.call('XADD', K.results(id), 'MAXLEN', 10, '*', 'type', 2, 'worker_name', '', 'exc_string', ARGV[4])
  end
  local waiting = 0
  if h[11] or rq then
    waiting = release_dependents(id, 'failed', ARGV[5], now, wake_cap)
    note_release(id, queue, h[11], 'failed')  -- a cluster's dependents in other queues
  end
  local ttl = tonumber(h[5]) or tonumber(ARGV[6])
  file_ended(now, id, queue, h[8], 'running', 'failed', ttl, true, dependency_keys(id, h[12], waiting))
  if ttl == 0 and tell then deleted[#deleted + 1] = id; deleted[#deleted + 1] = h[17] or '' end
end

local ids = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  local key = K.job(id)
  redis.call('ZREM', leases, id)
  local h = redis.call('HMGET', key, 'origin', 'js_priority', 'js_attempts', 'js_max_attempts',
    'failure_ttl', 'js_started_ms', 'worker_name', 'js_group', 'js_schedule', 'js_callback', 'js_dependents',
    'dependency_ids', 'retries_left', 'retry_intervals', 'enqueue_at_front_on_retry', 'js_state', 'js_inc')
  -- Only a running job has a lease to lose: a stale entry (the job gone, or already ended) is just dropped.
  if h[16] == 'running' then
    local queue = h[1]
    local rq = follows_rq(h[4])
    redis.call('HSET', key, unpack(LEASE_CLEARED))
    local losses = redis.call('HINCRBY', key, 'js_lease_losses', 1)
    local attempts = tonumber(h[3]) or 1
    -- retry_plan's delay for jobsvc's own jobs is 0: a lost lease is requeued at once (no backoff), as before.
    local plan = retry_plan({max_attempts = h[4], attempts = attempts, retries_left = h[13], retry_intervals = h[14],
      at_front = h[15]}, true, 0)
    local outcome
    if not rq and losses >= max_losses then outcome = 'quarantined'
    elseif plan then outcome = 'requeued'
    else outcome = 'failed' end
    local lost = rq and 'lease expired (its worker died or hung; RQ: AbandonedJobError)'
      or 'lease expired (lease loss ' .. losses .. ' of ' .. max_losses .. ')'
    add_run(id, {attempt = attempts, worker = h[7], started_ms = tonumber(h[6]), ended_ms = now,
      outcome = 'lease_lost', exc_type = 'LeaseExpired', message = lost .. ': ' .. outcome})
    -- The run lasted until its lease ran out, as far as anyone can tell.
    run_counted(now, queue, h[8], 'lease_lost', run_ms(now, nil, nil, h[6]))
    if outcome == 'requeued' then
      retry(id, queue, h, plan, rq)
      requeued = requeued + 1
    else
      local reason
      if rq then reason = 'AbandonedJobError: lease expired, no retries left'
      elseif outcome == 'failed' then reason = 'LeaseExpired: attempts used up: lease lost'
      else reason = 'LeaseExpired: lease lost ' .. losses .. ' times' end
      if outcome == 'quarantined' then
        -- Quarantine keeps the job until an operator decides.
        redis.call('HSET', key, 'status', 'failed', 'js_state', 'quarantined', 'js_error', reason, 'js_ended_ms', now)
        file_ended(now, id, queue, h[8], 'running', 'quarantined', -1)
        quarantined = quarantined + 1
      else
        fail(id, queue, h, reason, rq)
        failed = failed + 1
      end
      -- Counted, told and charged to its schedule as any end; its run time was observed with the lease loss.
      run_counted(now, queue, h[8], outcome)
      job_told(now, id, h[9], h[10], outcome, 'error', reason)
    end
  end
end
local nxt = redis.call('ZRANGE', leases, 0, 0, 'WITHSCORES')
local out = {requeued, failed, quarantined, nxt[2] and tonumber(nxt[2]) or -1, now}
if #deleted > 0 then out[6] = deleted end
return out
