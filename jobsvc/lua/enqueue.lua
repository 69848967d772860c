-- enqueue.lua: (new) -> queued | scheduled | deferred: new jobs, many in one call; queued in a ready lane, scheduled
-- when due later, deferred while a dependency is not done.
-- KEYS: count, created, deferred, dependencies, dependents, groups, idempotency, job, lane, lanes, minute, queues, rq_queue, rq_queues, scheduled, scheduled_in, scheduler_wake, tally, wake
-- ARGV: prefix, wake_cap, idempotency_ttl, n, ncommon, common fields (field1, value1, ...: written
--   on every job of the call), then per job:
--   id, queue, priority, delay_ms, at_ms, idem_key ('' for none), id_given (1: the caller chose the id,
--   so an existing job of that id is returned, never overwritten), nfields, field1, value1, ...
-- Returns: flat list id1, created1, id2, created2 ... (created 0 = idempotency key hit: existing id)
-- An idempotency key answers with its job's id for idempotency_ttl even after the job is gone (its TTL
-- sweep, result_ttl 0, a prune): the caller learns its request was already done, nothing is created again.
-- A pull job (field js_trigger = pull) waits in its queue's pull lanes: js_priority is its priority +
-- PULL_LANE_OFFSET, so every script that puts it back in a lane (promote, requeue, reap...) finds the pull
-- lane from js_priority alone; claim.lua pops pull lanes for pull claims only and wakes no Python worker.
-- A job with dependencies (field dependency_ids, a JSON list of ids, written as RQ writes it; field
-- allow_dependency_failures 1 to go on after a failed one) waits deferred, in RQ's format (rq:deferred:<q>,
-- its dependencies set, the dependents set of each dependency not done, which is marked js_dependents so
-- its complete.lua / fail.lua releases it), unless every dependency is already done (dependency_done): then
-- it is queued at once. Dependency keys are type-checked for every job before the first write.
local cap, idem_ttl, n = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
local out, woken, added, seen_groups = {}, {}, {}, {}
local seq = 0
local ncommon = tonumber(ARGV[5])
local common, common_group, common_pull = {}, nil, false
local common_deps, common_allow = nil, false
for f = 6, 5 + 2 * ncommon, 2 do
  common[#common + 1] = ARGV[f]; common[#common + 1] = ARGV[f + 1]
  if ARGV[f] == 'js_group' then common_group = ARGV[f + 1] end
  if ARGV[f] == 'js_trigger' then common_pull = ARGV[f + 1] == 'pull' end
  if ARGV[f] == 'dependency_ids' then common_deps = ARGV[f + 1] end
  if ARGV[f] == 'allow_dependency_failures' then common_allow = ARGV[f + 1] == '1' end
end
local first = 6 + 2 * ncommon

-- The dependency ids (a list, nil for none) and allow-failure flag of the job whose fields start at fstart.
local function dependencies_of(fstart, nf)
  local deps, allow = common_deps, common_allow
  for f = fstart, fstart + 2 * nf - 1, 2 do
    if ARGV[f] == 'dependency_ids' then deps = ARGV[f + 1] end
    if ARGV[f] == 'allow_dependency_failures' then allow = ARGV[f + 1] == '1' end
  end
  if not deps then return nil, allow end
  return cjson.decode(deps), allow
end

-- Before the first write: every key a dependency touches holds its type (an id may be anything a job id may).
local checks = {}
local i = first
for _ = 1, n do
  local nf = tonumber(ARGV[i + 7])
  local deps = dependencies_of(i + 8, nf)
  if deps then
    checks[#checks + 1] = K.dependencies(ARGV[i]); checks[#checks + 1] = 'set'
    for _, dep in ipairs(deps) do
      checks[#checks + 1] = K.job(dep); checks[#checks + 1] = 'hash'
      checks[#checks + 1] = K.dependents(dep); checks[#checks + 1] = 'set'
    end
  end
  i = i + 8 + 2 * nf
end
local bad = wrong_type(checks)
if bad then return bad end

-- A job's js_waits field (its own, else the call's common one), or nil: on a Redis Cluster, the dependencies of a
-- job that waits across queues (jobsvc/engine/depends.py). Read only for a job with dependencies.
local function waits_of(fstart, nf)
  for f = fstart, fstart + 2 * nf - 1, 2 do
    if ARGV[f] == 'js_waits' then return ARGV[f + 1] end
  end
  for f = 1, #common, 2 do
    if common[f] == 'js_waits' then return common[f + 1] end
  end
  return nil
end

-- Register job `id` of `queue` as waiting on `deps` if one of them is not done; returns whether it waits.
-- A cluster's job with js_waits waits on those: depend_register.lua registered it in each dependency's queue (and
-- learned which are done) before this call, and depend_release.lua releases it, so no dependents set here has it.
local function defer(id, queue, deps, allow, fstart, nf)
  if waits_of(fstart, nf) then
    redis.call('ZADD', K.deferred(queue), math.floor(now / 1000), id)
    redis.call('SADD', K.dependencies(id), unpack(deps))
    return true
  end
  local waits_on = {}
  for _, dep in ipairs(deps) do
    if not dependency_done(redis.call('HGET', K.job(dep), 'status'), allow) then waits_on[#waits_on + 1] = dep end
  end
  if #waits_on == 0 then return false end
  redis.call('ZADD', K.deferred(queue), math.floor(now / 1000), id)
  redis.call('SADD', K.dependencies(id), unpack(deps))
  for _, dep in ipairs(waits_on) do
    redis.call('SADD', K.dependents(dep), id)
    redis.call('HSETNX', K.job(dep), 'js_dependents', '1')  -- not over a cluster's 'r' (_lib.lua: note_release)
  end
  return true
end

i = first
for _ = 1, n do
  local id, queue, priority = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local delay, at, idem, id_given = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]), ARGV[i + 5], ARGV[i + 6]
  local nf = tonumber(ARGV[i + 7])
  local fstart = i + 8
  i = fstart + 2 * nf
  local existing = nil
  if idem ~= '' then
    local ikey = K.idempotency(idem)
    existing = redis.call('GET', ikey)
    if not existing then redis.call('SET', ikey, id, 'EX', idem_ttl) end
  end
  if not existing and id_given == '1' and redis.call('EXISTS', K.job(id)) == 1 then existing = id end
  if existing then
    out[#out + 1] = existing; out[#out + 1] = 0
  else
    local due = 0
    if at > 0 then due = at elseif delay > 0 then due = now + delay end
    local deps, allow = dependencies_of(fstart, nf)
    local deferred = deps ~= nil and defer(id, queue, deps, allow, fstart, nf)
    local ready = due <= now and not deferred
    local group, pull = common_group, common_pull
    for f = fstart, fstart + 2 * nf - 1, 2 do
      if ARGV[f] == 'js_group' then group = ARGV[f + 1] end
      if ARGV[f] == 'js_trigger' then pull = ARGV[f + 1] == 'pull' end
    end
    if pull then priority = tonumber(priority) + PULL_LANE_OFFSET end
    -- The common fields go in as they are (no copy per job: a batch's jobs mostly have no fields of their own).
    local fields = common
    if nf > 0 then
      fields = {unpack(common)}
      for f = fstart, fstart + 2 * nf - 1 do fields[#fields + 1] = ARGV[f] end
    end
    local key = K.job(id)
    if ready then
      redis.call('HSET', key, 'js_created_ms', now, 'js_attempts', 0, 'js_priority', priority, 'status', 'queued',
        'js_state', 'queued', 'js_ready_ms', now, unpack(fields))
    elseif deferred then
      redis.call('HSET', key, 'js_created_ms', now, 'js_attempts', 0, 'js_priority', priority, 'status', 'deferred',
        'js_state', 'deferred', unpack(fields))
    else  -- scheduled: make_scheduled writes its state and due time
      redis.call('HSET', key, 'js_created_ms', now, 'js_attempts', 0, 'js_priority', priority, unpack(fields))
    end
    gauge(group, nil, ready and 'queued' or (deferred and 'deferred' or 'scheduled'))  -- summed per call
    -- A thousandth of a ms per job keeps a batch's creation order (doubles hold it exactly at this scale).
    zadd_later(K.created(queue), now + seq / 1000, id)
    seq = seq + 1
    if group and not seen_groups[group] then
      seen_groups[group] = 0  -- jobs of the group in this call
      redis.call('SADD', K.groups, group)
    end
    if group then seen_groups[group] = seen_groups[group] + 1 end
    if not added[queue] then
      added[queue] = 0
      redis.call('SADD', K.rq_queues, K.rq_queue(queue))
      redis.call('SADD', K.queues, queue)
    end
    added[queue] = added[queue] + 1
    if ready then
      -- As push_lane, with the call's other new jobs of the lane: one RPUSH (and one SADD) per lane.
      if tonumber(priority) ~= 5 then write_later('SADD', K.lanes(queue), priority) end
      write_later('RPUSH', lane_key(queue, priority), id)
      if not pull then woken[queue] = (woken[queue] or 0) + 1 end
    elseif not deferred then
      make_scheduled(id, due, queue)
    end
    out[#out + 1] = id; out[#out + 1] = 1
  end
end
-- Counted once per queue (totals, minutes) and once per group (tally, GET /metrics), not once per job.
for queue, count in pairs(added) do count_event(now, queue, nil, 'enqueued', count) end
for group, count in pairs(seen_groups) do add_counter(K.tally(group), 'enqueued', count) end
for queue, count in pairs(woken) do wake_workers(queue, count, cap) end
return out
