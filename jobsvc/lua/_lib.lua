-- _lib.lua: helpers prepended to every script at load time (not a transition of its own).
-- Key names here must match jobsvc/keys.py.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function job_key(id) return 'rq:job:' .. id end

local function lane_key(prefix, queue, priority)
  priority = tonumber(priority) or 5
  if priority == 5 then return 'rq:queue:' .. queue end
  return prefix .. 'lane:' .. queue .. ':' .. priority
end

-- Push onto a lane; a queue's non-default lanes are remembered so claim.lua pops only lanes in use.
local function push_lane(prefix, queue, priority, id, front)
  priority = tonumber(priority) or 5
  if priority ~= 5 then redis.call('SADD', prefix .. 'lanes:' .. queue, priority) end
  redis.call(front and 'LPUSH' or 'RPUSH', lane_key(prefix, queue, priority), id)
end

-- Wake up to n idle workers of a queue; the list is capped so a busy queue cannot grow it.
local function wake_workers(prefix, queue, n, cap)
  if n <= 0 then return end
  local key = prefix .. 'wake:' .. queue
  for _ = 1, math.min(n, cap) do redis.call('RPUSH', key, '1') end
  redis.call('LTRIM', key, -cap, -1)
end

-- Put a job in its ready lane and mark it queued. js_ready_ms (now: Redis ms, read here when not given)
-- is when it became ready: claim.lua measures the enqueue-to-start wait from it.
local function make_ready(prefix, id, queue, priority, front, enqueued_at, now)
  push_lane(prefix, queue, priority, id, front)
  redis.call('HSET', job_key(id), 'status', 'queued', 'js_state', 'queued', 'enqueued_at', enqueued_at,
    'js_due', '', 'js_ready_ms', now or now_ms())
end

-- Wake the sleeping scheduler when `id` just became the earliest entry of its timeline `zkey`
-- (one token at most: the scheduler recomputes its sleep on any wake-up).
local function wake_scheduler_if_first(prefix, zkey, id)
  local first = redis.call('ZRANGE', zkey, 0, 0)
  if first[1] == id then
    redis.call('RPUSH', prefix .. 'scheduler:wake', '1')
    redis.call('LTRIM', prefix .. 'scheduler:wake', -1, -1)
  end
end

-- Put a job on the scheduler's timeline (and its queue's, for listing); wake the scheduler when it
-- is now the earliest.
local function make_scheduled(prefix, id, due_ms, queue)
  local zkey = prefix .. 'scheduled'
  redis.call('ZADD', zkey, due_ms, id)
  redis.call('ZADD', prefix .. 'scheduled:' .. queue, due_ms, id)
  redis.call('HSET', job_key(id), 'status', 'scheduled', 'js_state', 'scheduled', 'js_due', due_ms)
  wake_scheduler_if_first(prefix, zkey, id)
end

-- Leave the lease index; callers blank js_token and js_lease_exp in their own HSET (one call fewer).
local function drop_lease(prefix, id)
  redis.call('ZREM', prefix .. 'leases', id)
end
local LEASE_CLEARED = {'js_token', '', 'js_lease_exp', ''}

-- HSET key with the given field/value list plus the blanked lease fields.
local function hset_unleased(key, fields)
  for _, v in ipairs(LEASE_CLEARED) do fields[#fields + 1] = v end
  redis.call('HSET', key, unpack(fields))
end

-- Append to a job's run history; js_runs marks that it has one, so complete.lua knows to give the history
-- key the job's lifetime (a successful first run writes none, the hot path).
local function add_run(prefix, id, entry)
  redis.call('RPUSH', prefix .. 'runs:' .. id, cjson.encode(entry))
  redis.call('HSET', job_key(id), 'js_runs', '1')
end

-- Merge a caller's extra run facts (JSON object text, '' for none: an HTTP handler's status and duration)
-- into a run-history entry.
local function with_extras(entry, extras_json)
  if extras_json and extras_json ~= '' then
    for k, v in pairs(cjson.decode(extras_json)) do entry[k] = v end
  end
  return entry
end

-- A job that ended and has a callback_url: keep what its notification says (it must survive the job's
-- own deletion by result_ttl 0 or a prune) and put it on the outbox that workers/callbacks.py drains.
-- fields: state, and result_b64 or error.
local function notify_end(prefix, id, url, now, fields)
  if not url or url == '' then return end
  local nkey = prefix .. 'notify:' .. id
  redis.call('DEL', nkey)
  local ns = redis.call('HGET', job_key(id), 'js_ns') or 'default'
  redis.call('HSET', nkey, 'url', url, 'ended_ms', now, 'attempts', 0, 'ns', ns, unpack(fields))
  redis.call('ZADD', prefix .. 'notify', now, id)
end

-- A job enqueued by plain RQ has no group until jobsvc first moves it: give it one (its function read off
-- RQ's description) and index it for listing. Returns the group and the fields the caller writes with its
-- own HSET; the job was never counted in a gauge, so the caller's gauge move starts from nil.
local function adopt_rq_job(prefix, id, queue, description, now)
  local group = queue .. '|default|' .. (string.match(description or '', '^([^(]+)') or 'unknown')
  redis.call('SADD', prefix .. 'groups', group)
  redis.call('ZADD', prefix .. 'created:' .. queue, now, id)
  return group, {'js_group', group, 'js_created_ms', tostring(now)}
end

-- Gauges: jobs per state of one group (queue|namespace|function), so stats are O(1) per group.
-- Every transition moves its job from one state of its group to another (nil: not counted).
local function gauge(prefix, group, from, to)
  if not group or group == '' then return end
  local key = prefix .. 'count:' .. group
  if from then redis.call('HINCRBY', key, from, -1) end
  if to then redis.call('HINCRBY', key, to, 1) end
end

local function stat(prefix, queue, field, n)
  redis.call('HINCRBY', prefix .. 'stats:' .. queue, field, n or 1)
end

-- Metrics (jobsvc/metrics.py, jobsvc/timeseries.py): one event of jobs of `queue` and `group` (nil: the
-- caller counts its groups itself, as enqueue.lua does once per batch), counted in the group's tally (GET
-- /metrics; a queue's totals are the sum of its groups', Client.stats) and, for the charted events, in the
-- minute's counters. now: Redis ms.
local MINUTE_EVENTS = {enqueued = true, completed = true, failed = true, retried = true}
local function count_event(prefix, now, queue, group, event, n)
  n = n or 1
  if group and group ~= '' then redis.call('HINCRBY', prefix .. 'tally:' .. group, event, n) end
  if MINUTE_EVENTS[event] then
    local key = prefix .. 'minute:' .. math.floor(now / 60000)
    -- Only the call that creates the field sets the expiry: one command fewer per job on the hot path.
    if redis.call('HINCRBY', key, queue .. '|' .. event, n) == n then
      redis.call('EXPIRE', key, MINUTE_COUNTERS_TTL)
    end
  end
end

-- One observation of `ms` in histogram `name` ('run': run duration, 'wait': enqueue-to-start) of a group:
-- field <name>_b<i> counts the observations in bucket i (HIST_BOUNDS[i-1], HIST_BOUNDS[i]], the last one
-- past every bound; not cumulative, so one HINCRBY each: the reader sums), <name>_sum_ms their sum.
-- HIST_BOUNDS is injected from defaults.HISTOGRAM_BUCKETS_MS.
local function observe(prefix, group, name, ms)
  if not group or group == '' or not ms then return end
  ms = math.max(0, math.floor(ms))
  local i = #HIST_BOUNDS + 1
  for b = 1, #HIST_BOUNDS do
    if ms <= HIST_BOUNDS[b] then i = b; break end
  end
  local key = prefix .. 'tally:' .. group
  redis.call('HINCRBY', key, name .. '_b' .. i, 1)
  redis.call('HINCRBY', key, name .. '_sum_ms', ms)
end

-- Give a finished job (and its run history) a lifetime: -1 keeps it, 0 deletes it. Keys outlive
-- their registry score by LIFETIME_GRACE (injected from defaults.py) so the TTL sweep can still read
-- a job's group, uncount it and delete it on time; Redis expiry is only the safety net.
-- has_runs=false skips the run history key (only failures and lost leases write one).
local function set_lifetime(prefix, id, queue, ttl, has_runs)
  local keys = {job_key(id), 'rq:results:' .. id}
  if has_runs ~= false then keys[3] = prefix .. 'runs:' .. id end
  for _, k in ipairs(keys) do
    if ttl < 0 then redis.call('PERSIST', k)
    elseif ttl == 0 then redis.call('DEL', k)
    else redis.call('EXPIRE', k, ttl + LIFETIME_GRACE) end
  end
  if ttl == 0 then redis.call('ZREM', prefix .. 'created:' .. queue, id) end
end

-- A cancelled job is kept for its failure TTL, as a failed one is: rq:canceled:<q> scores it with the epoch
-- second that TTL ends (RQ's own registry scoring; '+inf' = kept), so the TTL sweep finds it by a score range.
-- failure_ttl 0 keeps it until the next sweep rather than deleting it here: the operator's cancel still
-- answers with the job (its keys expire after LIFETIME_GRACE, the safety net, if no sweep runs).
local function keep_cancelled(prefix, id, queue, ttl, now)
  redis.call('ZADD', 'rq:canceled:' .. queue, ttl < 0 and '+inf' or (math.floor(now / 1000) + ttl), id)
  set_lifetime(prefix, id, queue, ttl == 0 and 1 or ttl)
end

-- The integer value of a hash field, or a default.
local function hnum(key, field, default)
  local v = redis.call('HGET', key, field)
  if v then return tonumber(v) end
  return default
end

-- Which terminal registry a job currently sits in, so a requeue can take it out.
local function terminal_registry(prefix, state, queue)
  if state == 'failed' then return 'rq:failed:' .. queue end
  if state == 'quarantined' then return prefix .. 'quarantined:' .. queue end
  if state == 'cancelled' then return 'rq:canceled:' .. queue end
  return nil
end

-- The jobsvc state of a job hash, also for hashes written by plain RQ.
local rq_to_state = {scheduled='scheduled', queued='queued', started='running', finished='completed',
  failed='failed', canceled='cancelled', stopped='cancelled', deferred='deferred', created='queued'}
local function state_of(key)
  local s = redis.call('HMGET', key, 'js_state', 'status')
  if s[1] then return s[1] end
  if s[2] then return rq_to_state[s[2]] or 'queued' end
  return nil
end

-- The reply for a caller whose lease token is not the job's (nil when it is): the job is gone (-1),
-- or its lease was reaped, revoked or finished by someone else (-2, with the state it is in now).
local function fence(key, current_token, token)
  if current_token == token then return nil end
  if redis.call('EXISTS', key) == 0 then return {-1} end
  return {-2, state_of(key)}
end

-- The filter of a bulk operation (bulk_requeue.lua, prune.lua): f = {ns, func, err (lower case), older,
-- newer (ms, nil for none), until_ms}. The function is js_group's third part; a plain-RQ job has no group,
-- so its function is read off RQ's description, as claim.lua does.
local function bulk_match(f, now, key, ns, group, err, ended, created)
  if f.ns ~= '' and (ns or 'default') ~= f.ns then return false end
  if f.func ~= '' then
    local func
    if group then func = string.match(group, '^[^|]*|[^|]*|(.*)$')
    else func = string.match(redis.call('HGET', key, 'description') or '', '^([^(]+)') end
    if func ~= f.func then return false end
  end
  if f.err ~= '' and not (err and string.find(string.lower(err), f.err, 1, true)) then return false end
  local t = tonumber(ended) or tonumber(created)
  if t and t > f.until_ms then return false end
  if f.older or f.newer then
    if not t then return false end
    if f.older and now - t <= f.older then return false end
    if f.newer and now - t >= f.newer then return false end
  end
  return true
end

-- Collect what deleting an ended job removes (its hash, result stream and run history) into dels, and count
-- it off its group in by_group; the caller deletes the chunk with one DEL and moves the gauges once per group.
-- The idempotency key stays: it keeps answering with this job's id (created=False) for its own TTL
-- (idempotency_ttl), so a client retrying after the job expired or was pruned does not create it again.
-- Only an operator's delete of the one job (delete.lua) frees the key.
local function collect_deletion(prefix, id, group, dels, by_group)
  dels[#dels + 1] = job_key(id)
  dels[#dels + 1] = 'rq:results:' .. id
  dels[#dels + 1] = prefix .. 'runs:' .. id
  if group then by_group[group] = (by_group[group] or 0) + 1 end
end

-- Before its first write, a script that writes keys named after user input checks each key holds the type
-- the layout gives it (jobsvc/keys.py TYPES) or does not exist: a WRONGTYPE half-way through would leave
-- the writes before it behind (Redis does not roll a script back). checks = {key, type, key, type, ...}.
-- Returns nil when all fit, else the error reply for the caller to return (nothing written).
local function wrong_type(checks)
  for i = 1, #checks, 2 do
    local t = redis.call('TYPE', checks[i])['ok']
    if t ~= 'none' and t ~= checks[i + 1] then
      return redis.error_reply('WRONGTYPE ' .. checks[i] .. ' is a ' .. t .. ', not a ' .. checks[i + 1]
        .. ': nothing changed')
    end
  end
  return nil
end
