-- sweep_orphans.lua: integrity sweep of job hashes (found by SCAN): a job must sit in the structure of its
-- state -- queued: its lane (and a lane claim.lua pops); scheduled: the scheduler's timeline and its queue's;
-- running: the lease index; completed / failed / quarantined / cancelled: its registry -- and in its queue's
-- created index. A missing entry is reported and, with fix, put back: a queued job at the back of its lane,
-- a scheduled one at its due time, a running one in the lease index with its own expiry (the reaper takes it
-- back if its worker is gone), a finished one in its registry with the score its transition would have given.
-- Only jobs jobsvc manages (js_state set) are judged: plain RQ keeps its own structures.
-- KEYS: none
-- ARGV: prefix, fix (1|0), default_result_ttl, default_failure_ttl, wake_cap,
--       then per job: id, lane_checked (1: the caller saw it in its lane, 0: look)
-- Returns: {n_orphan, n_unleased, n_unindexed, orphan ids .., unleased ids .., unindexed ids ..}
local prefix, fix = ARGV[1], ARGV[2] == '1'
local default_result_ttl, default_failure_ttl, cap = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_ms()
local orphan, unleased, unindexed, woken = {}, {}, {}, {}

-- The registry score a finished job gets: its TTL's end in epoch seconds (+inf: kept), or its end in ms.
local function expiry(ended, ttl)
  if ttl < 0 then return '+inf' end
  return math.floor((ended or now) / 1000) + ttl
end

for i = 6, #ARGV, 2 do
  local id, lane_checked = ARGV[i], ARGV[i + 1] == '1'
  local h = redis.call('HMGET', job_key(id), 'js_state', 'origin', 'js_priority', 'js_due', 'js_lease_exp',
    'js_ended_ms', 'js_created_ms', 'result_ttl', 'failure_ttl')
  local st, queue = h[1], h[2]
  if st and queue then
    local ended = tonumber(h[6])
    local reg, score
    if st == 'queued' then
      local prio = tonumber(h[3]) or 5
      local in_lane = lane_checked or redis.call('LPOS', lane_key(prefix, queue, prio), id, 'RANK', -1)
      local poppable = prio == 5 or redis.call('SISMEMBER', prefix .. 'lanes:' .. queue, prio) == 1
      if not in_lane or not poppable then
        orphan[#orphan + 1] = id
        if fix then
          if in_lane then
            redis.call('SADD', prefix .. 'lanes:' .. queue, prio)
          else
            push_lane(prefix, queue, prio, id, false)
          end
          woken[queue] = (woken[queue] or 0) + 1
        end
      end
    elseif st == 'scheduled' then
      if not redis.call('ZSCORE', prefix .. 'scheduled', id)
          or not redis.call('ZSCORE', prefix .. 'scheduled:' .. queue, id) then
        orphan[#orphan + 1] = id
        if fix then make_scheduled(prefix, id, tonumber(h[4]) or now, queue) end
      end
    elseif st == 'running' then
      if not redis.call('ZSCORE', prefix .. 'leases', id) then
        unleased[#unleased + 1] = id
        if fix then redis.call('ZADD', prefix .. 'leases', tonumber(h[5]) or 0, id) end
      end
    elseif st == 'completed' then
      local ttl = tonumber(h[8]) or default_result_ttl
      if ttl ~= 0 then reg, score = 'rq:finished:' .. queue, expiry(ended, ttl) end
    elseif st == 'failed' then
      local ttl = tonumber(h[9]) or default_failure_ttl
      if ttl ~= 0 then reg, score = 'rq:failed:' .. queue, expiry(ended, ttl) end
    elseif st == 'quarantined' then
      reg, score = prefix .. 'quarantined:' .. queue, ended or now
    elseif st == 'cancelled' then  -- kept for its failure TTL, as keep_cancelled scores it (0: due now)
      reg, score = 'rq:canceled:' .. queue, expiry(ended, tonumber(h[9]) or default_failure_ttl)
    end
    if reg and not redis.call('ZSCORE', reg, id) then
      orphan[#orphan + 1] = id
      if fix then redis.call('ZADD', reg, score, id) end
    end
    if not redis.call('ZSCORE', prefix .. 'created:' .. queue, id) then
      unindexed[#unindexed + 1] = id
      if fix then redis.call('ZADD', prefix .. 'created:' .. queue, tonumber(h[7]) or now, id) end
    end
  end
end
for queue, n in pairs(woken) do wake_workers(prefix, queue, n, cap) end
local out = {#orphan, #unleased, #unindexed}
for _, id in ipairs(orphan) do out[#out + 1] = id end
for _, id in ipairs(unleased) do out[#out + 1] = id end
for _, id in ipairs(unindexed) do out[#out + 1] = id end
return out
