-- claim.lua: queued -> running under a lease. Atomic over all the worker's queues and priorities,
-- so there is no window in which a popped job belongs to nobody.
-- KEYS: none (names built from the prefix)
-- ARGV: prefix, lease_ms, token, worker_name, started_at, nq, queue1 .. queueN, then 'pull' for a pull
--       worker's claim (jobsvc/pull.py; nothing for a Python worker's)
-- A pull claim pops only the queues' pull lanes (priorities above PULL_LANE_OFFSET: jobs created for pull
-- workers, enqueue.lua), a Python worker's claim only the others: neither ever pops the other's jobs, so
-- a pull worker never sees a Python job's arguments and no job is skipped over to find one.
-- Returns: {} when nothing is ready, else {id, queue, lease_expiry_ms, field1, value1, ...}
-- (the fields as they stand after the claim)
local prefix, lease_ms, token, worker, started_at = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local nq = tonumber(ARGV[6])
local pull = ARGV[7 + nq] == 'pull'
local paused = prefix .. 'paused'
local disabled_fns = prefix .. 'functions:disabled'
local skipped = 0

-- The queue's lanes this claim may pop, in priority order: 5 (RQ's list) plus any other priority ever used;
-- for a pull claim, the pull lanes instead.
local function lanes_of(queue)
  local prios = pull and {} or {5}
  for _, p in ipairs(redis.call('SMEMBERS', prefix .. 'lanes:' .. queue)) do
    p = tonumber(p)
    if (p > PULL_LANE_OFFSET) == pull then prios[#prios + 1] = p end
  end
  table.sort(prios)
  return prios
end

for qi = 1, nq do
  local queue = ARGV[6 + qi]
  if redis.call('SISMEMBER', paused, queue) == 0 then
    for _, priority in ipairs(lanes_of(queue)) do
      local lane = lane_key(prefix, queue, priority)
      local id = redis.call('LPOP', lane)
      local first_held = nil
      while id do
        local key = job_key(id)
        local h = redis.call('HGETALL', key)
        local status, attempts, group, description, fn, ready_ms = nil, 0, nil, '', nil, nil
        local state, has_ttl, jprio = nil, false, nil
        for k = 1, #h, 2 do
          local f = h[k]
          if f == 'status' then status = h[k + 1]
          elseif f == 'ttl' then has_ttl = true
          elseif f == 'js_state' then state = h[k + 1]
          elseif f == 'js_priority' then jprio = tonumber(h[k + 1])
          elseif f == 'js_attempts' then attempts = tonumber(h[k + 1]) or 0
          elseif f == 'js_group' then group = h[k + 1]
          elseif f == 'description' then description = h[k + 1]
          elseif f == 'js_fn' then fn = h[k + 1]
          elseif f == 'js_ready_ms' then ready_ms = tonumber(h[k + 1]) end
        end
        -- A job of a disabled registry function (jobsvc/functions.py) waits in its lane: it goes to the
        -- back and the lane is left once the first held job comes round again.
        local held = status == 'queued' and fn and redis.call('SISMEMBER', disabled_fns, fn) == 1
        if held then
          if id == first_held then
            redis.call('LPUSH', lane, id)
            break
          end
          first_held = first_held or id
          redis.call('RPUSH', lane, id)
        end
        -- A pull job put on RQ's list by RQ's own tools (rq requeue of a failed pull job) belongs to its
        -- pull lane: move it there rather than hand a pull worker's arguments to a Python worker.
        local misplaced = status == 'queued' and not held and jprio and (jprio > PULL_LANE_OFFSET) ~= pull
        if misplaced then push_lane(prefix, queue, jprio, id, true) end
        -- A cancelled or deleted job may still have its id in a lane: drop it and go on.
        if status == 'queued' and not held and not misplaced then
          -- Put back on its queue by RQ's own tools (rq requeue, FailedJobRegistry.requeue, an RQ worker's
          -- enqueue_dependents) the job still has the jobsvc state it left, and is counted there; one that had
          -- ended starts over with fresh attempts, as an operator's requeue.lua gives it.
          local restarted = state == 'failed' or state == 'quarantined' or state == 'cancelled' or state == 'completed'
          if restarted then attempts = 0 end
          local now = now_ms()
          local exp = now + lease_ms
          local set = {'status', 'started', 'js_state', 'running', 'js_token', token, 'js_lease_exp', tostring(exp),
            'js_started_ms', tostring(now), 'worker_name', worker, 'started_at', started_at,
            'js_attempts', tostring(attempts + 1)}
          if restarted then set[#set + 1] = 'js_lease_losses'; set[#set + 1] = '0' end
          local from = state or 'queued'
          if not group then
            local adopted
            group, adopted = adopt_rq_job(prefix, id, queue, description, now)
            for _, v in ipairs(adopted) do set[#set + 1] = v end
            from = nil
          end
          redis.call('HSET', key, unpack(set))
          -- A job enqueued with `ttl` must start within it, then runs to its end (as RQ's Job.perform does):
          -- a hash that expired mid-run would lose the outcome. One command, only for such jobs. A job RQ's
          -- tools put back after it ended still carries the lifetime its end gave it (and its results and
          -- runs): kept for good again, as requeue.lua keeps an operator's requeue.
          if restarted then set_lifetime(prefix, id, queue, -1)
          elseif has_ttl then redis.call('PERSIST', key) end
          gauge(prefix, group, from, 'running')
          -- Enqueue-to-start wait; a job pushed by plain RQ has no ready time and is not observed.
          if ready_ms then observe(prefix, group, 'wait', now - ready_ms) end
          redis.call('ZADD', prefix .. 'leases', exp, id)
          local out = {id, queue, exp}
          for k = 1, #h do out[#out + 1] = h[k] end
          for k = 1, #set do out[#out + 1] = set[k] end  -- later pairs win when the caller builds a dict
          return out
        end
        skipped = skipped + 1
        if skipped >= 1000 then return {} end
        id = redis.call('LPOP', lane)
      end
    end
  end
end
return {}
