-- schedule_record.lua: copy the outcome of finished schedule runs (status, times, duration, error) from their
-- jobs into the schedule's run history before result_ttl deletes the jobs, and add their runtime to the
-- schedule's average. Pending runs are visited round-robin, `limit` per call (bounded work).
-- The whole batch is read and checked before the first write. A run that cannot be recorded (its job or
-- schedule keys have another type than jobsvc/engine/keys.py gives them, its record is not JSON, its schedule's
-- runtime counters are not integers) only leaves the pending set, and is returned for the caller to log:
-- one damaged entry neither stops the pass nor is retried forever.
-- On a Redis Cluster the runs' jobs are in their queues' slots, not in the schedules': the caller reads the pending
-- runs and their jobs first and gives them ('given'); this script then reads no job (K.job is never called), and
-- takes the given runs that are still pending. A job's fields read a moment ago are an ended job's as now (an ended
-- state is not left but by an operator's retry, which a later fire's record shows).
-- KEYS: job, schedule, schedule_run, schedule_stats, schedules_pending
-- ARGV: prefix, limit, after_score ('-inf' to start over)[, 'given', then per run: member, js_state, status,
--       js_started_ms, js_ended_ms, js_error ('' for a field the job lacks, or all '' for a job that is gone)]
-- Returns: {visited, finalized, next_after_score ('-inf' when the end was reached; 'given': the caller's own read
--          says where the next call starts), {dropped run ids}};
--          an error reply, nothing written: the pending set is not a sorted set
local limit = tonumber(ARGV[2])
local pending = K.schedules_pending
local bad = wrong_type({pending, 'zset'})
if bad then return bad end
local given
local items = {}
if ARGV[4] == 'given' then
  given = {}
  for i = 5, #ARGV, 6 do
    local score = redis.call('ZSCORE', pending, ARGV[i])
    if score then
      items[#items + 1], items[#items + 2] = ARGV[i], score
      local h = {}
      for f = 1, 5 do h[f] = ARGV[i + f] ~= '' and ARGV[i + f] end
      given[ARGV[i]] = h
    end
  end
else
  local low = ARGV[3] == '-inf' and '-inf' or '(' .. ARGV[3]
  items = redis.call('ZRANGEBYSCORE', pending, low, '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
end
local ended = {completed = true, failed = true, quarantined = true, cancelled = true}

local function is_int(v) return not v or string.match(v, '^%-?%d+$') ~= nil end

-- The new run record of an ended run (JSON text), and its duration when it has one; nil if unreadable.
local function outcome(rec, gone, state, h)
  local ok, r = pcall(cjson.decode, rec)
  if not ok or type(r) ~= 'table' then return nil end
  local duration
  if gone then
    r.status = 'unknown'  -- deleted before its outcome was read (result_ttl 0, or an operator)
  else
    r.status = state
    local started, finished = tonumber(h[3]), tonumber(h[4])
    r.started_ms, r.finished_ms = started, finished
    if state ~= 'completed' and h[5] then r.error = h[5] end
    if started and finished and state ~= 'cancelled' and finished >= started then
      duration = finished - started
      r.duration_ms = duration
    end
  end
  return cjson.encode(r), duration
end

-- What to do with one pending run: nil (not ended yet), or {member, run, stats, drop | rec, duration | del_stats}.
local function plan(member)
  local sid = string.match(member, '^([^:]+):') or ''
  local skey = K.schedule(sid)
  local p = {member = member, run = K.schedule_run(sid), stats = K.schedule_stats(sid)}
  local types = given and {p.run, 'hash', p.stats, 'hash'} or {K.job(member), 'hash', p.run, 'hash', p.stats, 'hash'}
  if wrong_type(types) then
    p.drop = true
    return p
  end
  local h = given and given[member]
    or redis.call('HMGET', K.job(member), 'js_state', 'status', 'js_started_ms', 'js_ended_ms', 'js_error')
  local gone = not h[1] and not h[2]
  local state = h[1] or rq_to_state[h[2] or ''] or 'queued'
  if not (gone or ended[state]) then return nil end
  local rec = redis.call('HGET', p.run, member)
  if rec then
    p.rec, p.duration = outcome(rec, gone, state, h)
    local counters = redis.call('HMGET', p.stats, 'runtime_ms', 'runtime_n')
    p.drop = not p.rec or (p.duration and not (is_int(counters[1]) and is_int(counters[2])))
  elseif redis.call('EXISTS', skey) == 0 then
    p.del_stats = true  -- the schedule was deleted while this run was in flight
  end
  return p
end

local plans = {}
for i = 1, #items, 2 do plans[#plans + 1] = plan(items[i]) end
-- Checked: the writes below cannot fail half-way.
local finalized, dropped = 0, {}
for _, p in ipairs(plans) do
  redis.call('ZREM', pending, p.member)
  if p.drop then
    dropped[#dropped + 1] = p.member
  else
    finalized = finalized + 1
    if p.rec then
      redis.call('HSET', p.run, p.member, p.rec)
      if p.duration then
        redis.call('HINCRBY', p.stats, 'runtime_ms', p.duration)
        redis.call('HINCRBY', p.stats, 'runtime_n', 1)
      end
    elseif p.del_stats then
      -- Drop the count its job's end wrote.
      redis.call('DEL', p.stats)
    end
  end
end
local n = #items / 2
if n < limit then return {n, finalized, '-inf', dropped} end
return {n, finalized, items[#items], dropped}
