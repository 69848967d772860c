-- sweep_orphans.lua: integrity sweep of job hashes (found by SCAN): a job must sit in the structure of its
-- state -- queued: its lane (and a lane claim.lua pops); scheduled: the scheduler's timeline and its queue's;
-- running: the lease index; completed / failed / quarantined / cancelled: its registry -- and in its queue's
-- created index. A missing entry is reported and, with fix, put back: a queued job at the back of its lane,
-- a scheduled one at its due time, a running one in the lease index with its own expiry (the reaper takes it
-- back if its worker is gone), a finished one in its registry with the score its transition would have given.
-- Only jobs jobsvc manages (js_state set) are judged: plain RQ keeps its own structures.
-- A job whose RQ status RQ's own code changed (moved_by_rq in _lib.lua: an RQ worker of a mixed fleet ran it,
-- `rq requeue` put it back, RQ's Job.cancel cancelled it) is reported as moved and, with fix, follows RQ: its
-- js_state becomes the state RQ put it in, it leaves jobsvc's structures of the old state (RQ already put it
-- in the new one's) and its gauge moves; one put back on its queue after it had ended starts with fresh
-- attempts, as claim.lua gives one it pops first. A job RQ is running or has delayed (status started or
-- scheduled) is left alone until it comes back: pushing it onto a lane would run it twice.
-- The edges it follows (RQ's moves, jobsvc/engine/states.py): completed | failed | cancelled | deferred -> queued (rq
-- requeue, a registry's requeue, an RQ worker's enqueue_dependents); queued -> completed | failed (an RQ worker
-- ran it); queued | scheduled | deferred -> cancelled (RQ's Job.cancel).
-- KEYS: canceled, count, created, deferred, failed, finished, job, lane, lanes, leases, quarantined, rq_queue, scheduled, scheduled_in, scheduler_wake, wake
-- ARGV: prefix, fix (1|0), default_result_ttl, default_failure_ttl, wake_cap,
--       then per job: id, lane_checked (1: the caller saw it in its lane, or does not ask; 0: look, O(lane))
-- Returns: {n_orphan, n_unleased, n_unindexed, n_moved, orphan ids .., unleased ids .., unindexed ids ..,
--           moved ids ..}
local fix = ARGV[2] == '1'
local default_result_ttl, default_failure_ttl, cap = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_ms()
local orphan, unleased, unindexed, moved, woken = {}, {}, {}, {}, {}

-- The registry score a finished job gets: its TTL's end in epoch seconds (+inf: kept), or its end in ms.
local function expiry(ended, ttl)
  if ttl < 0 then return '+inf' end
  return math.floor((ended or now) / 1000) + ttl
end

-- jobsvc follows what RQ's own code did to job `id` (state st -> to; see the header).
local function follow_rq(id, st, to, queue, prio, group, failure_ttl)
  if st == 'scheduled' then
    redis.call('ZREM', K.scheduled, id)
    redis.call('ZREM', K.scheduled_in(queue), id)
  elseif st == 'queued' and prio ~= 5 then
    redis.call('LREM', lane_key(queue, prio), 0, id)  -- RQ's tools take ids off rq:queue only
  end
  local old = registry_of(st, queue)
  if old and old ~= registry_of(to, queue) then redis.call('ZREM', old, id) end
  local fields = {'js_state', to}  -- js_state: queued | completed | failed | cancelled (RQ_MOVES)
  if to == 'queued' then
    for _, v in ipairs({'js_ready_ms', now, 'js_due', ''}) do fields[#fields + 1] = v end
    if PRUNABLE[st] then
      for _, v in ipairs({'js_attempts', 0, 'js_lease_losses', 0}) do fields[#fields + 1] = v end
    end
    -- RQ put it on rq:queue (priority 5); a job of another lane goes to its own (a pull job must not be
    -- popped by a Python worker).
    if prio ~= 5 and redis.call('LREM', K.rq_queue(queue), 0, id) > 0 then
      push_lane(queue, prio, id, false)
    end
    if prio <= PULL_LANE_OFFSET then woken[queue] = (woken[queue] or 0) + 1 end
  else
    fields[#fields + 1] = 'js_ended_ms'; fields[#fields + 1] = now
  end
  -- RQ scores a cancelled job with the cancel time and never expires it; jobsvc keeps one it counts for its
  -- failure TTL, as file_ended does (else the TTL sweep would delete it at once).
  if to == 'cancelled' then redis.call('ZADD', K.canceled(queue), expiry(now, failure_ttl), id) end
  redis.call('HSET', K.job(id), unpack(fields))
  gauge(group, st, to)
end

for i = 6, #ARGV, 2 do
  local id, lane_checked = ARGV[i], ARGV[i + 1] == '1'
  local h = redis.call('HMGET', K.job(id), 'js_state', 'origin', 'js_priority', 'js_due', 'js_lease_exp',
    'js_ended_ms', 'js_created_ms', 'result_ttl', 'failure_ttl', 'status', 'js_group')
  local st, queue = h[1], h[2]
  if st and queue then
    local ended = tonumber(h[6])
    local prio = tonumber(h[3]) or 5
    local to = moved_by_rq(st, h[10])
    local reg, score
    if to then
      moved[#moved + 1] = id
      if fix then follow_rq(id, st, to, queue, prio, h[11], tonumber(h[9]) or default_failure_ttl) end
    elseif not rq_agrees(st, h[10]) then
      -- RQ is running it or has delayed it: its structures are RQ's until it comes back.
    elseif st == 'queued' then
      local in_lane = lane_checked or redis.call('LPOS', lane_key(queue, prio), id, 'RANK', -1)
      local poppable = prio == 5 or redis.call('SISMEMBER', K.lanes(queue), prio) == 1
      if not in_lane or not poppable then
        orphan[#orphan + 1] = id
        if fix then
          if in_lane then
            redis.call('SADD', K.lanes(queue), prio)
          else
            push_lane(queue, prio, id, false)
          end
          woken[queue] = (woken[queue] or 0) + 1
        end
      end
    elseif st == 'scheduled' then
      if not redis.call('ZSCORE', K.scheduled, id)
          or not redis.call('ZSCORE', K.scheduled_in(queue), id) then
        orphan[#orphan + 1] = id
        if fix then make_scheduled(id, tonumber(h[4]) or now, queue) end  -- js_state: unchanged
      end
    elseif st == 'running' then
      if not redis.call('ZSCORE', K.leases, id) then
        unleased[#unleased + 1] = id
        if fix then redis.call('ZADD', K.leases, tonumber(h[5]) or 0, id) end
      end
    elseif st == 'completed' then
      local ttl = tonumber(h[8]) or default_result_ttl
      if ttl ~= 0 then reg, score = K.finished(queue), expiry(ended, ttl) end
    elseif st == 'failed' then
      local ttl = tonumber(h[9]) or default_failure_ttl
      if ttl ~= 0 then reg, score = K.failed(queue), expiry(ended, ttl) end
    elseif st == 'quarantined' then
      reg, score = K.quarantined(queue), ended or now
    elseif st == 'cancelled' then  -- kept for its failure TTL, as file_ended scores it (0: due now)
      reg, score = K.canceled(queue), expiry(ended, tonumber(h[9]) or default_failure_ttl)
    end
    if reg and not redis.call('ZSCORE', reg, id) then
      orphan[#orphan + 1] = id
      if fix then redis.call('ZADD', reg, score, id) end
    end
    if not redis.call('ZSCORE', K.created(queue), id) then
      unindexed[#unindexed + 1] = id
      if fix then redis.call('ZADD', K.created(queue), tonumber(h[7]) or now, id) end
    end
  end
end
for queue, n in pairs(woken) do wake_workers(queue, n, cap) end
local out = {#orphan, #unleased, #unindexed, #moved}
for _, list in ipairs({orphan, unleased, unindexed, moved}) do
  for _, id in ipairs(list) do out[#out + 1] = id end
end
return out
