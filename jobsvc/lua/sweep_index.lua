-- sweep_index.lua: integrity sweep of one page of a structure that holds job ids (a lane, a registry, the
-- scheduler's timeline, the lease index, a created index). An id whose job hash is gone, or whose job is
-- not in the state the structure stands for, is reported and, with fix, taken out of this structure (the
-- structure that matches the job's state keeps it: a job in two registries keeps the right one).
-- Jobs written by plain RQ (no js_state) are only checked for existence: RQ keeps its own structures. So is a
-- job jobsvc counts whose RQ status RQ's own code changed (rq_agrees in _lib.lua: `rq requeue` put a failed
-- one back on rq:queue, an RQ worker ran one): RQ put it where it is; sweep_orphans.lua makes jobsvc follow.
-- The lease index is judged strictly: an id there must be a running job holding a token. A running job
-- without a token can never finish (its outcome is fenced), so its lease is made due now for the reaper
-- rather than dropped.
-- The page is read here (range mode), or the caller's ids are first checked to still be members (ids mode,
-- sorted sets only), so an id that a transition moved on meanwhile is never reported.
-- KEYS: given, job
-- (given: the structure to check, named by the caller in its call's slot: K.given)
-- ARGV: prefix, fix (1|0), kind ('list' | 'zset'), expect (a state; 'lease' for the lease index;
--       'any' for a created index), queue ('' = any), priority ('' = any), count (1|0: also return
--       per group and state counts of the jobs found, for the gauge recount), mode ('range' | 'ids'),
--       then start, stop (range: ranks / list indexes, as LRANGE and ZRANGE take them) or id1 .. idN (ids)
-- Returns: {removed, n_read, n_missing, n_wrong, n_counts, missing ids .., wrong ids .., (group, state, n) ..}
local fix, kind, key, expect = ARGV[2] == '1', ARGV[3], K.given, ARGV[4]
local queue, priority, count = ARGV[5], tonumber(ARGV[6]), ARGV[7] == '1'
local ids
if ARGV[8] == 'range' then
  ids = redis.call(kind == 'list' and 'LRANGE' or 'ZRANGE', key, ARGV[9], ARGV[10])
else
  ids = {}
  for i = 9, #ARGV do
    if redis.call('ZSCORE', key, ARGV[i]) then ids[#ids + 1] = ARGV[i] end
  end
end
local now = now_ms()
local removed = 0
local missing, wrong, counts, order = {}, {}, {}, {}

local function take_out(id)
  if kind == 'list' then removed = removed + redis.call('LREM', key, 0, id)
  else removed = removed + redis.call('ZREM', key, id) end
end

for _, id in ipairs(ids) do
  local h = redis.call('HMGET', K.job(id), 'js_state', 'status', 'origin', 'js_priority', 'js_token', 'js_group')
  local st = h[1] or (h[2] and (rq_to_state[h[2]] or 'queued'))
  if not st and redis.call('EXISTS', K.job(id)) == 0 then
    missing[#missing + 1] = id
    if fix then take_out(id) end
  else
    -- nil: the id belongs here; 'remove': it does not; 'reap': a running job without a token.
    local verdict = nil
    if queue ~= '' and h[3] ~= queue then verdict = 'remove'
    elseif expect == 'lease' then
      if st ~= 'running' then verdict = 'remove'
      elseif not h[5] or h[5] == '' then
        local score = tonumber(redis.call('ZSCORE', key, id))
        if score and score > now then verdict = 'reap' end
      end
    elseif expect ~= 'any' and h[1] and rq_agrees(h[1], h[2]) then
      if st ~= expect or (priority and (tonumber(h[4]) or 5) ~= priority) then verdict = 'remove' end
    end
    if verdict then
      wrong[#wrong + 1] = id
      if fix then
        if verdict == 'reap' then redis.call('ZADD', key, 0, id) else take_out(id) end
      end
    end
    local ok = verdict == nil
    if count and ok and h[6] and st then
      local c = h[6] .. '\n' .. st
      if not counts[c] then counts[c] = 0; order[#order + 1] = c end
      counts[c] = counts[c] + 1
    end
  end
end
local out = {removed, #ids, #missing, #wrong, #order}
for _, id in ipairs(missing) do out[#out + 1] = id end
for _, id in ipairs(wrong) do out[#out + 1] = id end
for _, c in ipairs(order) do
  local group, st = string.match(c, '^(.*)\n(.*)$')
  out[#out + 1] = group; out[#out + 1] = st; out[#out + 1] = counts[c]
end
return out
