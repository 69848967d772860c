-- reap_expired.lua: running -> queued | failed | quarantined for every job whose lease expired
-- (its worker died, hung or was cut off). The attempt counts; so does the lease loss, and a job
-- that loses max_lease_losses leases is quarantined instead of killing more workers.
-- Clearing the token fences the old worker: its late outcome is rejected.
-- KEYS: none
-- ARGV: prefix, max_lease_losses, limit, default_max_attempts, enqueued_at, default_failure_ttl, wake_cap
-- Returns: {requeued, failed, quarantined, next_expiry_ms (-1 if none), now_ms}
local prefix, max_losses, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local leases = prefix .. 'leases'
local now = now_ms()
local requeued, failed, quarantined = 0, 0, 0
local ids = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  local key = job_key(id)
  redis.call('ZREM', leases, id)
  if redis.call('EXISTS', key) == 1 then
    local h = redis.call('HMGET', key, 'origin', 'js_priority', 'js_attempts', 'js_max_attempts',
      'failure_ttl', 'js_started_ms', 'worker_name', 'js_group', 'js_schedule', 'js_callback')
    local queue = h[1]
    redis.call('HSET', key, unpack(LEASE_CLEARED))
    local losses = redis.call('HINCRBY', key, 'js_lease_losses', 1)
    local attempts = tonumber(h[3]) or 1
    local max_attempts = tonumber(h[4]) or tonumber(ARGV[4])
    local outcome
    if losses >= max_losses then outcome = 'quarantined'
    elseif attempts >= max_attempts then outcome = 'failed'
    else outcome = 'requeued' end
    add_run(prefix, id, {attempt = attempts, worker = h[7], started_ms = tonumber(h[6]), ended_ms = now,
      outcome = 'lease_lost', exc_type = 'LeaseExpired',
      message = 'lease expired (lease loss ' .. losses .. ' of ' .. max_losses .. '): ' .. outcome})
    count_event(prefix, now, queue, h[8], 'lease_lost')
    -- The run lasted until its lease ran out, as far as anyone can tell.
    if h[6] then observe(prefix, h[8], 'run', now - tonumber(h[6])) end
    if outcome == 'requeued' then
      make_ready(prefix, id, queue, h[2], true, ARGV[5], now)
      gauge(prefix, h[8], 'running', 'queued')
      wake_workers(prefix, queue, 1, tonumber(ARGV[7]))
      requeued = requeued + 1
    else
      local reason = 'lease lost ' .. losses .. ' times'
      if outcome == 'failed' then reason = 'attempts used up: lease lost' end
      redis.call('HSET', key, 'status', 'failed', 'js_state', outcome, 'js_error', 'LeaseExpired: ' .. reason,
        'js_ended_ms', now)
      local ttl = tonumber(h[5]) or tonumber(ARGV[6])
      if outcome == 'quarantined' then
        -- Quarantine keeps the job until an operator decides.
        redis.call('ZADD', prefix .. 'quarantined:' .. queue, now, id)
        set_lifetime(prefix, id, queue, -1)
        gauge(prefix, h[8], 'running', 'quarantined')
        quarantined = quarantined + 1
      else
        if ttl ~= 0 then
          redis.call('ZADD', 'rq:failed:' .. queue, (ttl < 0) and '+inf' or (math.floor(now / 1000) + ttl), id)
        end
        set_lifetime(prefix, id, queue, ttl)
        gauge(prefix, h[8], 'running', ttl ~= 0 and 'failed' or nil)
        failed = failed + 1
      end
      count_event(prefix, now, queue, h[8], outcome)
      notify_end(prefix, id, h[10], now, {'state', outcome, 'error', 'LeaseExpired: ' .. reason})
      -- A schedule's job: count the run's outcome on the schedule (jobsvc/schedules.py).
      if h[9] then redis.call('HINCRBY', prefix .. 'schedule:' .. h[9] .. ':stats', 'failed', 1) end
    end
  end
end
local nxt = redis.call('ZRANGE', leases, 0, 0, 'WITHSCORES')
return {requeued, failed, quarantined, nxt[2] and tonumber(nxt[2]) or -1, now}
