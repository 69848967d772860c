-- claim.lua: queued -> running under a lease, for up to `count` jobs in one call. Atomic over all the worker's
-- queues and priorities, so there is no window in which a popped job belongs to nobody.
-- KEYS: count, created, functions_disabled, groups, job, lane, lanes, leases, paused, pull_workers, results, rq_queue, runs, tally
-- ARGV: prefix, lease_ms, worker_name, started_at, nq, queue1 .. queueN, then 'pull' for a pull worker's claim
--       (jobsvc/http/pull.py) or '' for a Python worker's, then token1 .. tokenN: one fresh token per job it may claim
--       (N is the most it claims)
-- A pull claim pops only the queues' pull lanes (priorities above PULL_LANE_OFFSET: jobs created for pull
-- workers, enqueue.lua), a Python worker's claim only the others: neither ever pops the other's jobs, so
-- a pull worker never sees a Python job's arguments and no job is skipped over to find one.
-- Several jobs: each gets its own lease (the i-th claimed, the i-th token), all with the same expiry; they are
-- taken in priority order, as one claim after another would take them.
-- Per job this costs HMGET and HSET; the lanes, the lease index, gauges, histograms and (pull claims) the
-- pull workers' last-seen index are written once per call
-- (counters: flush_counters), which is what makes a batch cheap for Redis. The job's whole hash is not read
-- here: Lua's cost is per string it handles (a job's hash holds some 40), so the caller reads the claimed hashes
-- with plain HGETALLs in its next round trip (jobsvc/engine/leases.py Leases.parse_claims), at a fraction of the cost.
-- Returns: {} when nothing is ready, else {lease_expiry_ms, job1, job2, ...}, each job {id, queue, token, attempt}
local lease_ms, worker, started_at = tonumber(ARGV[2]), ARGV[3], ARGV[4]
local nq = tonumber(ARGV[5])
local pull = ARGV[6 + nq] == 'pull'
local first_token = 7 + nq
local count = #ARGV - first_token + 1
local paused = K.paused
local disabled_fns = K.functions_disabled
local SKIP_MAX = 1000  -- ids popped and not claimed (gone, held, moved) before the call gives up
local now = now_ms()
local exp = now + lease_ms
local out, leased, skipped, disabled = {exp}, {}, 0, {}

-- The queue's lanes this claim may pop, in priority order: 5 (RQ's list) plus any other priority ever used;
-- for a pull claim, the pull lanes instead.
local function lanes_of(queue)
  local prios = pull and {} or {5}
  for _, p in ipairs(redis.call('SMEMBERS', K.lanes(queue))) do
    p = tonumber(p)
    if (p > PULL_LANE_OFFSET) == pull then prios[#prios + 1] = p end
  end
  table.sort(prios)
  return prios
end

-- Whether registry function `fn` is disabled (jobsvc/engine/functions/), read once per call.
local function is_disabled(fn)
  if disabled[fn] == nil then disabled[fn] = redis.call('SISMEMBER', disabled_fns, fn) == 1 end
  return disabled[fn]
end

-- The fields of a job that claim reads (one HMGET), by position: JOB_FIELDS[i] is f[i] in lease() and take().
-- js_disabled: a job held by job_disable.lua.
local JOB_FIELDS = {'status', 'ttl', 'js_state', 'js_priority', 'js_attempts', 'js_group', 'description', 'js_fn',
  'js_ready_ms', 'js_disabled'}
local EXP, NOW = tostring(exp), tostring(now)

-- Lease job `id` of `queue` (f: its JOB_FIELDS): one HSET, the rest counted or indexed once per call.
local function lease(id, queue, key, f)
  local token = ARGV[first_token + #out - 1]
  -- Put back on its queue by RQ's own tools (rq requeue, FailedJobRegistry.requeue, an RQ worker's
  -- enqueue_dependents) the job still has the jobsvc state it left, and is counted there; one that had
  -- ended starts over with fresh attempts, as an operator's requeue.lua gives it.
  local state = f[3] or nil
  local restarted = PRUNABLE[state] == true
  local attempts = restarted and 1 or (tonumber(f[5]) or 0) + 1
  local set = {'status', 'started', 'js_state', 'running', 'js_token', token, 'js_lease_exp', EXP,
    'js_started_ms', NOW, 'worker_name', worker, 'started_at', started_at, 'js_attempts', attempts}
  if restarted then set[#set + 1] = 'js_lease_losses'; set[#set + 1] = '0' end
  local group, from = f[6] or nil, state or 'queued'
  if not group then
    local adopted
    group, adopted = adopt_rq_job(id, queue, f[7] or '', now)
    for _, v in ipairs(adopted) do set[#set + 1] = v end
    from = nil
  end
  redis.call('HSET', key, unpack(set))
  -- A job enqueued with `ttl` must start within it, then runs to its end (as RQ's Job.perform does):
  -- a hash that expired mid-run would lose the outcome. One command, only for such jobs. A job RQ's
  -- tools put back after it ended still carries the lifetime its end gave it (and its results and
  -- runs): kept for good again, as requeue.lua keeps an operator's requeue.
  if restarted then set_lifetime(id, queue, -1)
  elseif f[2] then redis.call('PERSIST', key) end
  gauge(group, from, 'running')
  -- Enqueue-to-start wait; a job pushed by plain RQ has no ready time and is not observed.
  local ready_ms = tonumber(f[9])
  if ready_ms then observe(group, 'wait', now - ready_ms) end
  leased[#leased + 1] = exp
  leased[#leased + 1] = id
  out[#out + 1] = {id, queue, token, attempts}
end

-- Take what `ids` (popped from lane `lane` of `queue`) holds: lease the queued jobs, set aside disabled ones
-- (job_disable.lua) and those of a disabled function (held: they go back to the lane's end), move misplaced
-- ones, drop stale ids.
local function take(queue, ids, held)
  for _, id in ipairs(ids) do
    local key = K.job(id)
    local f = redis.call('HMGET', key, unpack(JOB_FIELDS))
    local priority = tonumber(f[4])
    if f[1] ~= 'queued' then
      skipped = skipped + 1  -- a cancelled or deleted job may still have its id in a lane: drop it
    elseif f[10] or (f[8] and is_disabled(f[8])) then
      held[#held + 1] = id
      skipped = skipped + 1
    elseif priority and (priority > PULL_LANE_OFFSET) ~= pull then
      -- A pull job put on RQ's list by RQ's own tools (rq requeue of a failed pull job) belongs to its pull
      -- lane: moved there rather than hand a pull worker's arguments to a Python worker.
      push_lane(queue, priority, id, true)
      skipped = skipped + 1
    else
      lease(id, queue, key, f)
    end
  end
end

-- Pop from one lane until the batch is full, the lane is empty or too much was skipped. A disabled job, or one
-- of a disabled function, waits in its lane: it goes to the back, after the lane was read through once.
local function drain(queue, lane)
  local held = {}
  while #out - 1 < count and skipped < SKIP_MAX do
    local ids = redis.call('LPOP', lane, count - (#out - 1))
    if not ids then break end
    take(queue, ids, held)
  end
  if #held > 0 then redis.call('RPUSH', lane, unpack(held)) end
end

-- A pull worker registers nowhere (no RQ worker hash): each claim call says it is alive, one ZADD per call
-- (never per job), read by GET /workers (jobsvc/admin/workers_info.py). A queue name has no '/'.
if pull then
  local seen = {}
  for qi = 1, nq do seen[#seen + 1] = now; seen[#seen + 1] = ARGV[5 + qi] .. '/' .. worker end
  redis.call('ZADD', K.pull_workers, unpack(seen))
end

for qi = 1, nq do
  local queue = ARGV[5 + qi]
  if #out - 1 >= count or skipped >= SKIP_MAX then break end
  if redis.call('SISMEMBER', paused, queue) == 0 then
    for _, priority in ipairs(lanes_of(queue)) do
      drain(queue, lane_key(queue, priority))
      if #out - 1 >= count or skipped >= SKIP_MAX then break end
    end
  end
end
if #out == 1 then return {} end
redis.call('ZADD', K.leases, unpack(leased))
return out
