-- sweep_recount.lua: integrity sweep of one queue's created index and of its groups' gauges, in one step, for
-- a queue small enough (at most `max` ids indexed) that Redis may serve nothing else meanwhile. Every job the
-- index holds is counted by group and jobsvc state (js_state, what its gauge counts); an id whose job hash is
-- gone is reported missing, one of another queue wrong, and (fix) taken out of the index; every group of the
-- queue whose gauge differs from the recount is reported and (fix) set to it. One step, so no transition can
-- make the recount stale: the chunked recount of a bigger queue (jobsvc/admin/bulk/) compares the gauges before and
-- after instead, and leaves a group that moved meanwhile for the next sweep.
-- Cost: O(ids indexed + groups of every queue) commands: 11 ms for 5,000 ids (2-core machine).
-- KEYS: count, created, groups, job
-- ARGV: prefix, fix (1|0), queue, max, n_extra, then (group, state, n) * n_extra: jobs the caller found that the
--       index lacks (a report-only sweep does not add them), counted as if it held them
-- Returns: {} when the index holds more than max ids (nothing read or written: the caller recounts in chunks); else
--          {removed, n_read, n_missing, n_wrong, n_drift, missing ids .., wrong ids .., drifted groups ..}
local fix, queue, max = ARGV[2] == '1', ARGV[3], tonumber(ARGV[4])
local ckey = K.created(queue)
if redis.call('ZCARD', ckey) > max then return {} end
local ids = redis.call('ZRANGE', ckey, 0, -1)
local counts, missing, wrong, gone = {}, {}, {}, {}

local function add(group, state, n)
  counts[group] = counts[group] or {}
  counts[group][state] = (counts[group][state] or 0) + n
end

for _, id in ipairs(ids) do
  local h = redis.call('HMGET', K.job(id), 'js_state', 'status', 'origin', 'js_group')
  local st = h[1] or (h[2] and (rq_to_state[h[2]] or 'queued'))
  if not st and redis.call('EXISTS', K.job(id)) == 0 then
    missing[#missing + 1] = id
    gone[#gone + 1] = id
  elseif h[3] ~= queue then
    wrong[#wrong + 1] = id
    gone[#gone + 1] = id
  elseif h[4] and st then
    add(h[4], st, 1)
  end
end
local n_extra = tonumber(ARGV[5])
for i = 6, 5 + 3 * n_extra, 3 do add(ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])) end

-- The gauge of `group` as {state = n} without zeros, and whether it equals want.
local function same(group, want)
  local have = {}
  local raw = redis.call('HGETALL', K.count(group))
  for i = 1, #raw, 2 do
    local n = tonumber(raw[i + 1])
    if n ~= 0 then have[raw[i]] = n end
  end
  for st, n in pairs(want) do
    if n ~= 0 and have[st] ~= n then return false end
  end
  for st, n in pairs(have) do
    if (want[st] or 0) ~= n then return false end
  end
  return true
end

local groups, seen = {}, {}
local head = queue .. '|'
for _, g in ipairs(redis.call('SMEMBERS', K.groups)) do
  if string.sub(g, 1, #head) == head then groups[#groups + 1] = g; seen[g] = true end
end
for g in pairs(counts) do
  if not seen[g] then groups[#groups + 1] = g end
end
table.sort(groups)
local drift = {}
for _, g in ipairs(groups) do
  local want = counts[g] or {}
  if not same(g, want) then
    drift[#drift + 1] = g
    if fix then
      local key = K.count(g)
      redis.call('DEL', key)
      local fields = {}
      for st, n in pairs(want) do
        if n ~= 0 then fields[#fields + 1] = st; fields[#fields + 1] = n end
      end
      if #fields > 0 then redis.call('HSET', key, unpack(fields)) end
      redis.call('SADD', K.groups, g)
    end
  end
end
local removed = 0
if fix and #gone > 0 then
  for i = 1, #gone, 1000 do
    removed = removed + redis.call('ZREM', ckey, unpack(gone, i, math.min(i + 999, #gone)))
  end
end
local out = {removed, #ids, #missing, #wrong, #drift}
for _, list in ipairs({missing, wrong, drift}) do
  for _, v in ipairs(list) do out[#out + 1] = v end
end
return out
