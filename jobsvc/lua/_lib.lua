-- _lib.lua: helpers prepended to every script at load time (not a transition of its own). jobsvc/engine/scripts.py puts
-- the shared constants before it: the reply codes of jobsvc/engine/replies.py (OK, NOT_FOUND, LEASE_LOST, WRONG_STATE,
-- CONFLICT, EXISTS: a script replies {NOT_FOUND}, never {-1}) and defaults.py's values.

-- Key names: a script writes K.<family> (K.leases) or K.<family>(names) (K.job(id), K.lane(queue, priority)),
-- for the families of jobsvc/engine/keys.py; the loader replaces each with the name, read from KEYS
-- (jobsvc/engine/script_keys.py). No script spells a key.

-- Redis time in ms, read once per script call (one TIME command, however many helpers ask): a script is one
-- instant anyway, and a batch of jobs is stamped alike.
local NOW_MS = nil
local function now_ms()
  if not NOW_MS then
    local t = redis.call('TIME')
    NOW_MS = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return NOW_MS
end

-- Counters (gauges, metric tallies, minute counters, histograms) are summed over the whole script call and
-- written once per field when it returns: jobsvc/engine/scripts.py runs every script's body as a function and calls
-- flush_counters after it. So a batch of 50 jobs of one group moves its gauge with two HINCRBY, not 100, and
-- no script folds counts by hand. A key listed in COUNTER_TTL gets that expiry when a flush creates one of its
-- fields (the minute counters: only the first write of a minute pays the EXPIRE).
-- A counter is write-only within a script: nothing reads one back in the call that moves it.
-- What waits for the flush, per key, and the keys in the order first written (the flush keeps that order).
local COUNTERS, WRITES, COUNTER_TTL = {map = {}, keys = {}}, {map = {}, keys = {}}, {}
local function pending(p, key)
  local entry = p.map[key]
  if not entry then
    entry = {}
    p.map[key] = entry
    p.keys[#p.keys + 1] = key
  end
  return entry
end

local function add_counter(key, field, n)
  local fields = pending(COUNTERS, key)
  fields[field] = (fields[field] or 0) + n
end

-- Index writes of the hot path (a lease leaving the lease index, an ended job entering its registry, new jobs
-- entering their lanes and the created index) are queued the same way and sent with the counters: one command
-- per key and run of the same command (ZADD, ZREM, RPUSH, SADD), in the order they were asked. A batch of 50
-- completions leaves the lease index with one ZREM, 1,000 new jobs enter their lane with one RPUSH. Like
-- counters, a key written this way is not read back by the script that writes it.
local function write_later(cmd, key, a, b)
  local runs = pending(WRITES, key)
  local last = runs[#runs]
  if not last or last.cmd ~= cmd then
    last = {cmd = cmd, args = {}}
    runs[#runs + 1] = last
  end
  last.args[#last.args + 1] = a
  if b ~= nil then last.args[#last.args + 1] = b end
end
local function zadd_later(key, score, member) write_later('ZADD', key, score, member) end
local function zrem_later(key, member) write_later('ZREM', key, member) end

local function flush_counters()
  for _, key in ipairs(WRITES.keys) do
    for _, run in ipairs(WRITES.map[key]) do
      for i = 1, #run.args, 4000 do  -- an even slice (ZADD's score, member pairs), within unpack's limit
        redis.call(run.cmd, key, unpack(run.args, i, math.min(i + 3999, #run.args)))
      end
    end
  end
  for _, key in ipairs(COUNTERS.keys) do
    for field, n in pairs(COUNTERS.map[key]) do
      if n ~= 0 and redis.call('HINCRBY', key, field, n) == n and COUNTER_TTL[key] then
        redis.call('EXPIRE', key, COUNTER_TTL[key])
      end
    end
  end
  COUNTERS, WRITES = {map = {}, keys = {}}, {map = {}, keys = {}}
end

local function lane_key(queue, priority)
  priority = tonumber(priority) or 5
  if priority == 5 then return K.rq_queue(queue) end
  return K.lane(queue, priority)
end

-- Push onto a lane; a queue's non-default lanes are remembered so claim.lua pops only lanes in use.
local function push_lane(queue, priority, id, front)
  priority = tonumber(priority) or 5
  if priority ~= 5 then redis.call('SADD', K.lanes(queue), priority) end
  redis.call(front and 'LPUSH' or 'RPUSH', lane_key(queue, priority), id)
end

-- Wake up to n idle workers of a queue; the list is capped so a busy queue cannot grow it.
local function wake_workers(queue, n, cap)
  if n <= 0 then return end
  local key = K.wake(queue)
  local tokens = {}
  for i = 1, math.min(n, cap) do tokens[i] = '1' end
  redis.call('RPUSH', key, unpack(tokens))
  redis.call('LTRIM', key, -cap, -1)
end

-- Put a job in its ready lane and mark it queued. js_ready_ms (now: Redis ms, read here when not given)
-- is when it became ready: claim.lua measures the enqueue-to-start wait from it.
local function make_ready(id, queue, priority, front, enqueued_at, now)
  push_lane(queue, priority, id, front)
  redis.call('HSET', K.job(id), 'status', 'queued', 'js_state', 'queued', 'enqueued_at', enqueued_at,
    'js_due', '', 'js_ready_ms', now or now_ms())
end

-- Wake the sleeping scheduler when `id` just became the earliest entry of its timeline `zkey`
-- (one token at most: the scheduler recomputes its sleep on any wake-up).
local function wake_scheduler_if_first(zkey, id)
  local first = redis.call('ZRANGE', zkey, 0, 0)
  if first[1] == id then
    redis.call('RPUSH', K.scheduler_wake, '1')
    redis.call('LTRIM', K.scheduler_wake, -1, -1)
  end
end

-- Put a job on the scheduler's timeline (and its queue's, for listing); wake the scheduler when it
-- is now the earliest.
local function make_scheduled(id, due_ms, queue)
  local zkey = K.scheduled
  redis.call('ZADD', zkey, due_ms, id)
  redis.call('ZADD', K.scheduled_in(queue), due_ms, id)
  redis.call('HSET', K.job(id), 'status', 'scheduled', 'js_state', 'scheduled', 'js_due', due_ms)
  wake_scheduler_if_first(zkey, id)
end

-- Leave the lease index (with the call's other removals: zrem_later); callers blank js_token and js_lease_exp in
-- their own HSET (one call fewer).
local function drop_lease(id)
  zrem_later(K.leases, id)
end
local LEASE_CLEARED = {'js_token', '', 'js_lease_exp', ''}

-- HSET key with the given field/value list plus the blanked lease fields.
local function hset_unleased(key, fields)
  for _, v in ipairs(LEASE_CLEARED) do fields[#fields + 1] = v end
  redis.call('HSET', key, unpack(fields))
end

-- Append to a job's run history; js_runs marks that it has one, so complete.lua knows to give the history
-- key the job's lifetime (a successful first run writes none, the hot path).
local function add_run(id, entry)
  redis.call('RPUSH', K.runs(id), cjson.encode(entry))
  redis.call('HSET', K.job(id), 'js_runs', '1')
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
local function notify_end(id, url, now, fields)
  if not url or url == '' then return end
  local nkey = K.notify_entry(id)
  redis.call('DEL', nkey)
  local ns = redis.call('HGET', K.job(id), 'js_ns') or 'default'
  redis.call('HSET', nkey, 'url', url, 'ended_ms', now, 'attempts', 0, 'ns', ns, unpack(fields))
  redis.call('ZADD', K.notify, now, id)
end

-- A job enqueued by plain RQ has no group until jobsvc first moves it: give it one (its function read off
-- RQ's description) and index it for listing. Returns the group and the fields the caller writes with its
-- own HSET; the job was never counted in a gauge, so the caller's gauge move starts from nil. The two index
-- writes go with the call's others (write_later): a claimed batch of plain-RQ jobs adds its groups with one SADD.
local function adopt_rq_job(id, queue, description, now)
  local group = queue .. '|default|' .. (string.match(description or '', '^([^(]+)') or 'unknown')
  write_later('SADD', K.groups, group)
  zadd_later(K.created(queue), now, id)
  return group, {'js_group', group, 'js_created_ms', tostring(now)}
end

-- Names (counter keys, counter fields), each built once per script call: a batch of jobs of one group and queue names
-- the same few keys and fields again and again, and a Lua string concatenation costs more than a lookup.
local NAMES = {}
local function name_of(a, b, c)
  local by_a = NAMES[a]
  if not by_a then by_a = {}; NAMES[a] = by_a end
  local by_b = by_a[b]
  if not by_b then by_b = {}; by_a[b] = by_b end
  local s = by_b[c]
  if not s then s = a .. b .. c; by_b[c] = s end
  return s
end

-- Gauges: jobs per state of one group (queue|namespace|function), so stats are O(1) per group.
-- Every transition moves its job from one state of its group to another (nil: not counted).
-- n: how many jobs move (1 when nil).
local function gauge(group, from, to, n)
  if not group or group == '' then return end
  local key = K.count(group)
  n = n or 1
  if from then add_counter(key, from, -n) end
  if to then add_counter(key, to, n) end
end

local function stat(queue, field, n)
  add_counter(K.stats(queue), field, n or 1)
end

-- Metrics (jobsvc/admin/metrics.py, jobsvc/admin/timeseries.py): one event of jobs of `queue` and `group` (nil: the
-- caller counts its groups itself, as enqueue.lua does once per batch), counted in the group's tally (GET
-- /metrics; a queue's totals are the sum of its groups', Client.stats) and, for the charted events, in the
-- minute's counters. now: Redis ms.
local MINUTE_EVENTS = {enqueued = true, completed = true, failed = true, retried = true}
local function count_event(now, queue, group, event, n)
  n = n or 1
  if group and group ~= '' then add_counter(K.tally(group), event, n) end
  if MINUTE_EVENTS[event] then
    local key = K.minute(math.floor(now / 60000))
    COUNTER_TTL[key] = MINUTE_COUNTERS_TTL
    add_counter(key, name_of(queue, '|', event), n)
  end
end

-- One observation of `ms` in histogram `name` ('run': run duration, 'wait': enqueue-to-start) of a group:
-- field <name>_b<i> counts the observations in bucket i (HIST_BOUNDS[i-1], HIST_BOUNDS[i]], the last one
-- past every bound; not cumulative, so one HINCRBY each: the reader sums), <name>_sum_ms their sum.
-- HIST_BOUNDS is injected from defaults.HISTOGRAM_BUCKETS_MS.
local function observe(group, name, ms)
  if not group or group == '' or not ms then return end
  ms = math.max(0, math.floor(ms))
  local i = #HIST_BOUNDS + 1
  for b = 1, #HIST_BOUNDS do
    if ms <= HIST_BOUNDS[b] then i = b; break end
  end
  local key = K.tally(group)
  add_counter(key, name_of(name, '_b', i), 1)
  add_counter(key, name_of(name, '_sum_ms', ''), ms)
end

-- The sorted set that holds a queue's jobs of an ended state (and RQ's deferred registry), nil for the states
-- kept elsewhere: the one map in Lua (jobsvc/engine/keys.py Keys.registry is Python's; test_keys checks they agree).
local function registry_of(state, queue)
  if state == 'completed' then return K.finished(queue) end
  if state == 'failed' then return K.failed(queue) end
  if state == 'cancelled' then return K.canceled(queue) end
  if state == 'quarantined' then return K.quarantined(queue) end
  if state == 'deferred' then return K.deferred(queue) end
  return nil
end

-- Take ids (a list) out of every ended registry of their queue (the ended states are PRUNABLE's, injected from
-- jobsvc/engine/states.py): a job sits in one, and one ZREM per registry costs four calls for a whole chunk, not
-- four per job.
local function leave_ended_registries(queue, ids)
  for s in pairs(PRUNABLE) do redis.call('ZREM', registry_of(s, queue), unpack(ids)) end
end

-- The registry a job of `state` sits in when an operator may requeue it (RETRYABLE, injected from
-- jobsvc/engine/states.py), else nil.
local function terminal_registry(state, queue)
  if RETRYABLE[state] then return registry_of(state, queue) end
  return nil
end

-- Give a finished job (and its run history) a lifetime: -1 keeps it, 0 deletes it now. A TTL (> 0) writes
-- nothing here: the job's registry scores it with the TTL's end and the TTL sweep (sweep_ttl.lua) deletes it
-- then, uncounting its gauge; the integrity sweep puts back a registry entry something else removed (an RQ
-- worker's registry cleanup). No EXPIRE per job on the hot path, and no key that vanishes behind its gauge.
-- has_runs=false skips the run history key (only failures and lost leases write one). extra: more keys
-- that live and die with the job (its dependency sets, dependency_keys below), nil for none.
local function set_lifetime(id, queue, ttl, has_runs, extra)
  if ttl > 0 then return end
  local keys = {K.job(id), K.results(id)}
  if has_runs ~= false then keys[3] = K.runs(id) end
  for _, k in ipairs(extra or {}) do keys[#keys + 1] = k end
  if ttl == 0 then
    redis.call('DEL', unpack(keys))
    zrem_later(K.created(queue), id)  -- in order with adopt_rq_job's zadd_later
  else
    for _, k in ipairs(keys) do redis.call('PERSIST', k) end
  end
end

-- A job that ended for good (-> completed | failed | cancelled | quarantined), filed where its state keeps it:
-- its state's registry (registry_of), scored as RQ scores it with the epoch second its TTL ends ('+inf': kept)
-- so the TTL sweep finds the due ones by a score range; its gauge moved from `from`; its lifetime set
-- (set_lifetime: has_runs, extra). TTL 0 deletes it at once, as RQ does, except a cancelled one: it stays until
-- the next sweep, so the operator's cancel still answers with it. A quarantined job is scored with its end in ms
-- and kept until an operator decides.
local function file_ended(now, id, queue, group, from, state, ttl, has_runs, extra)
  local score = ttl < 0 and '+inf' or (math.floor(now / 1000) + ttl)
  if state == 'quarantined' then score, ttl = now, -1 end
  if state == 'cancelled' and ttl == 0 then ttl = 1 end
  if ttl ~= 0 then zadd_later(registry_of(state, queue), score, id) end
  set_lifetime(id, queue, ttl, has_runs, extra)
  gauge(group, from, ttl ~= 0 and state or nil)
end

-- A run's time in ms: as its worker measured it (started_ts, ended_ts: epoch seconds on the worker's clock; a
-- job of a batch waits in its worker after its claim), else since its claim (started_ms, js_started_ms), else nil.
local function run_ms(now, started_ts, ended_ts, started_ms)
  local s, e = tonumber(started_ts), tonumber(ended_ts)
  if s and e and s > 0 and e >= s then return (e - s) * 1000 end
  if started_ms then return now - tonumber(started_ms) end
  return nil
end

-- The two steps every end of a run takes besides its own writes (complete.lua, fail.lua, reap_expired.lua,
-- terminate.lua; cancel.lua for a job that never ran), positional rather than in tables: they run per job of a batch.
-- run_counted: the event counted (count_event: 'completed', 'failed', 'retried', 'cancelled', 'quarantined',
-- 'lease_lost') and the run's time observed (ms; nil: not observed).
local function run_counted(now, queue, group, event, ms)
  count_event(now, queue, group, event)
  if ms then observe(group, 'run', ms) end
end

-- job_told: a job that ended for good (event: its state) is charged to its schedule (nil: none) and its
-- callback_url (nil: none) is told, with the notification's field `what` ('result_b64' or 'error') = value.
local function job_told(now, id, schedule, callback, event, what, value)
  if schedule then
    add_counter(K.schedule_stats(schedule), event == 'completed' and 'completed' or 'failed', 1)
  end
  if callback and callback ~= '' then notify_end(id, callback, now, {'state', event, what, value}) end
end

-- The integer value of a hash field, or a default.
local function hnum(key, field, default)
  local v = redis.call('HGET', key, field)
  if v then return tonumber(v) end
  return default
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

-- RQ's own code (an RQ worker of a mixed fleet, `rq requeue`, RQ's Job.cancel, StartedJobRegistry.cleanup)
-- changes only RQ's `status` of a job jobsvc counts, never js_state. rq_agrees: the status is the one jobsvc
-- writes with that state. moved_by_rq: the state such a job is really in (nil: none jobsvc takes over): back on
-- its queue, or ended by an RQ worker or tool ('stopped' is RQ's stop: FailedJobRegistry, so failed). A
-- running job is its jobsvc worker's, and one RQ is running or has delayed is RQ's until it ends or comes back.
-- The integrity sweep acts on it (sweep_orphans.lua follows RQ, sweep_index.lua leaves RQ's structures be); a
-- claim that pops a job RQ put back first counts it the same way (claim.lua).
local RQ_STATUS_OF = {queued = 'queued', scheduled = 'scheduled', deferred = 'deferred', running = 'started',
  completed = 'finished', failed = 'failed', quarantined = 'failed', cancelled = 'canceled'}
local RQ_MOVES = {queued = 'queued', finished = 'completed', failed = 'failed', stopped = 'failed',
  canceled = 'cancelled'}
local function rq_agrees(state, status)
  return not state or not status or state == 'running' or RQ_STATUS_OF[state] == status
    or RQ_MOVES[status] == state
end
local function moved_by_rq(state, status)
  if rq_agrees(state, status) then return nil end
  return RQ_MOVES[status]
end

-- The reply for a caller whose lease token is not the job's (nil when it is): the job is gone (NOT_FOUND),
-- or its lease was reaped, revoked or finished by someone else (LEASE_LOST, with the state it is in now).
local function fence(key, current_token, token)
  if current_token == token then return nil end
  if redis.call('EXISTS', key) == 0 then return {NOT_FOUND} end
  return {LEASE_LOST, state_of(key)}
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

-- One chunk of a bulk operation (bulk_requeue.lua, prune.lua). ARGV[first .. first + 6] hold its filter and sample
-- size: until_ms (jobs that ended later entered the state after the operation began: left alone), namespace,
-- function, error_lower, older_than_ms, newer_than_ms ('' = no such filter), nsample; the chunk's ids follow.
-- Each job still in `state` on `queue` that matches is handed to act(id, key, h) unless dry (h: the job's
-- BULK_FIELDS), so a job that moved on since the caller read its id is skipped, never damaged.
-- Returns the reply {matched, changed, skipped, kept, sample_id1 ..} (skipped: ids whose job is gone or no longer
-- in the state; kept: ids of the chunk still in the state's registry afterwards, so the caller pages on) and the
-- ids acted on.
local BULK_FIELDS = {'js_state', 'status', 'origin', 'js_group', 'js_ns', 'js_error', 'js_ended_ms', 'js_created_ms',
  'js_priority', 'js_inc'}
local function bulk_chunk(state, queue, registry, first, dry, act)
  local filter = {until_ms = tonumber(ARGV[first]), ns = ARGV[first + 1], func = ARGV[first + 2],
    err = ARGV[first + 3], older = tonumber(ARGV[first + 4]), newer = tonumber(ARGV[first + 5])}
  local nsample, now = tonumber(ARGV[first + 6]), now_ms()
  local matched, skipped, kept, sample, done = 0, 0, 0, {}, {}
  for i = first + 7, #ARGV do
    local id = ARGV[i]
    local key = K.job(id)
    local h = redis.call('HMGET', key, unpack(BULK_FIELDS))
    local st = h[1] or (h[2] and (rq_to_state[h[2]] or 'queued'))
    if st ~= state or h[3] ~= queue then
      skipped = skipped + 1
      if redis.call('ZSCORE', registry, id) then kept = kept + 1 end
    elseif bulk_match(filter, now, key, h[5], h[4], h[6], h[7], h[8]) then
      matched = matched + 1
      if #sample < nsample then sample[#sample + 1] = id end
      if dry then kept = kept + 1 else act(id, key, h); done[#done + 1] = id end
    else
      kept = kept + 1  -- still in the state and queue, so in the registry (the integrity sweep sees to that)
    end
  end
  local out = {matched, #done, skipped, kept}
  for _, id in ipairs(sample) do out[#out + 1] = id end
  return out, done
end

-- The keys that deleting a job removes: its hash, result stream, run history and RQ's dependency sets, as RQ's
-- Job.delete takes them.
local function job_keys(id)
  return {K.job(id), K.results(id), K.runs(id), K.dependents(id), K.dependencies(id)}
end

-- Collect what deleting an ended job of `state` removes (job_keys) into dels and count it off its group's
-- gauge; the caller deletes the chunk with one DEL.
-- The idempotency key stays: it keeps answering with this job's id (created=False) for its own TTL
-- (idempotency_ttl), so a client retrying after the job expired or was pruned does not create it again.
-- Only an operator's delete of the one job (delete.lua) frees the key.
local function collect_deletion(id, group, state, dels)
  for _, k in ipairs(job_keys(id)) do dels[#dels + 1] = k end
  gauge(group, state, nil)
end

-- Before its first write, a script that writes keys named after user input checks each key holds the type
-- the layout gives it (jobsvc/engine/keys.py TYPES) or does not exist: a WRONGTYPE half-way through would leave
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

-- The versioned store of registry functions and schedules (function_save.lua, schedule_save.lua): may `mode`
-- (create | update | upsert) write `key`, whose stored `version` field (tonumber'ed, nil when absent) is there,
-- given the caller's `expected` version (nil for any)? Returns nil when it may, else the reply to return
-- (nothing written): a stored record without a numeric version is damage, not a conflict.
local function version_refusal(key, version, mode, expected)
  if not version and redis.call('EXISTS', key) == 1 then
    return redis.error_reply(key .. ' has no numeric version: nothing changed')
  end
  if mode == 'create' and version then return {EXISTS, version} end
  if mode == 'update' and not version then return {NOT_FOUND} end
  if expected and (version or 0) ~= expected then return {CONFLICT, version or 0} end
  return nil
end

-- Jobs enqueued with RQ's own API follow RQ's rules (retries, dependents), jobs enqueued with jobsvc's API follow
-- jobsvc's: this is how a script tells them apart, here only. jobsvc's enqueue writes js_max_attempts on every
-- job (enqueueing.job_fields); RQ never writes it, and adopting a plain-RQ job (adopt_rq_job) does not either.
-- max_attempts: the job's js_max_attempts field as HMGET returns it (false when absent).
local function follows_rq(max_attempts)
  return not max_attempts or max_attempts == ''
end

-- What a failed attempt leads to: the one place that decides which retry rule applies (follows_rq).
-- * jobsvc's API: another attempt while js_attempts < js_max_attempts and the worker calls the error
--   retryable, scheduled after the backoff the caller computed (delay_ms);
-- * RQ's API: RQ's Retry, as rq/job.py retry() and get_retry_interval() define it. No retries_left (no
--   retry=) means one attempt. Each retry spends one of retries_left and waits
--   retry_intervals[max(#intervals - retries_left, 0)] seconds (RQ's indexing, 0-based: with more retries
--   than intervals the first one repeats); no wait puts it straight back on its queue (at the front with
--   Retry(enqueue_at_front=True)). RQ retries whatever the error, so `retryable` is not read.
-- f = {max_attempts, attempts, retries_left, retry_intervals, at_front}: the job's js_max_attempts,
-- js_attempts, retries_left, retry_intervals and enqueue_at_front_on_retry fields.
-- Returns nil (no retry: the job fails for good) or {delay_ms, now (true: back on its queue now, no
-- scheduling), front, fields (to write with the retry)}.
local function retry_plan(f, retryable, delay_ms)
  if not follows_rq(f.max_attempts) then
    if retryable and (tonumber(f.attempts) or 1) < tonumber(f.max_attempts) then
      return {delay_ms = delay_ms, now = false, front = false, fields = {}}
    end
    return nil
  end
  local left = tonumber(f.retries_left)
  if not left or left <= 0 then return nil end
  local wait_s = 0
  local ok, intervals = pcall(cjson.decode, f.retry_intervals or '')
  if ok and type(intervals) == 'table' and #intervals > 0 then
    wait_s = tonumber(intervals[math.max(#intervals - left, 0) + 1]) or 0
  end
  return {delay_ms = wait_s * 1000, now = wait_s <= 0, front = f.at_front == '1', fields = {'retries_left', left - 1}}
end

-- Whether a dependency whose RQ status is `status` lets its dependent go (rq/job.py dependencies_are_met):
-- finished, or failed when the dependent allows failure. A dependency that is gone (false) counts as done,
-- as in RQ: it finished and its result TTL ran out.
local function dependency_done(status, allow_failure)
  if not status then return true end
  return status == 'finished' or (allow_failure and status == 'failed')
end

-- The dependency sets that live and die with an ended job, as RQ's Job.cleanup gives them its TTL: its own
-- (it has one when its hash has dependency_ids) and the set of dependents still waiting on it.
local function dependency_keys(id, dependency_ids, waiting)
  local keys = {}
  if dependency_ids then keys[#keys + 1] = K.dependencies(id) end
  if waiting > 0 then keys[#keys + 1] = K.dependents(id) end
  return keys
end

-- Put a job that waited outside the lanes on its queue: a dependent whose dependencies are done (release_dependents), a
-- job plain RQ delayed (promote_rq.lua). A job jobsvc counts (it has a group) goes to its lane as make_ready puts any
-- job, its gauge moved from `from`. One not counted yet (enqueued with RQ's own API, never claimed by jobsvc) goes
-- where RQ itself puts it, RQ's list rq:queue:<q>, with RQ's fields only: jobsvc adopts it when it claims it, and an RQ
-- worker of a mixed fleet may take it as well. Returns true when a Python worker is to be woken for it (false for a
-- pull job).
local function ready_again(id, queue, group, priority, front, enqueued_at, now, from)
  if group then
    make_ready(id, queue, priority, front, enqueued_at, now)
    gauge(group, from, 'queued')
  else
    redis.call(front and 'LPUSH' or 'RPUSH', K.rq_queue(queue), id)
    redis.call('HSET', K.job(id), 'status', 'queued', 'enqueued_at', enqueued_at, 'js_ready_ms', now)
  end
  return (tonumber(priority) or 5) <= PULL_LANE_OFFSET
end

-- SREM many members, in slices (Lua's unpack has a limit).
local function srem_all(key, members)
  for i = 1, #members, 1000 do
    redis.call('SREM', key, unpack(members, i, math.min(i + 999, #members)))
  end
end

-- The ids a dependent waits on: RQ writes them twice, as the JSON field dependency_ids (read with the
-- dependent's hash, no extra command) and as the set dependencies_key (read only when the field is missing).
local function dependency_ids_of(dep, field)
  if field then
    local ok, ids = pcall(cjson.decode, field)
    if ok and type(ids) == 'table' then return ids end
  end
  return redis.call('SMEMBERS', K.dependencies(dep))
end

-- Whether dependent `dep` (allow: it allows failed dependencies) has nothing left to wait for once `id`
-- has ended with RQ status `status` (its hash may not say so yet).
local function nothing_left(dep, deps_field, allow, id, status)
  if not dependency_done(status, allow) then return false end
  for _, other in ipairs(dependency_ids_of(dep, deps_field)) do
    if other ~= id and not dependency_done(redis.call('HGET', K.job(other), 'status'), allow) then return false end
  end
  return true
end

-- Move on the jobs waiting on `id`, which has just ended, in the caller's script, with RQ status `status`: 'finished'
-- (complete.lua) or 'failed' (fail.lua, only when it fails for good, never when it is retried), as RQ's worker does
-- (Queue.enqueue_dependents), atomically with that ending. A deferred dependent goes to its queue (its front with
-- enqueue_at_front) once all its dependencies are done (nothing_left); otherwise it stays deferred and in id's
-- dependents set. A dependent that is gone or no longer deferred (cancelled) leaves the set. Cost, inside the finishing
-- script (Redis serves nothing else meanwhile): 2 commands, plus per dependent 1 + one per other dependency, plus 3 per
-- dependent released, plus 2 per group (gauges, flushed with the call) and 2 per queue woken. The number of dependents
-- is the user's: docs/rq.md gives measured times (10,000 dependents of one job: about 40,000 commands). RQ's own worker
-- does the same reads, in round trips. Returns how many dependents still wait on `id`.
local function release_dependents(id, status, enqueued_at, now, wake_cap)
  local dkey = K.dependents(id)
  local ids = redis.call('SMEMBERS', dkey)
  if #ids == 0 then return 0 end
  local leaving, woken = {}, {}
  for _, dep in ipairs(ids) do
    local h = redis.call('HMGET', K.job(dep), 'status', 'js_state', 'origin', 'allow_dependency_failures',
      'enqueue_at_front', 'js_group', 'js_priority', 'dependency_ids')
    local st = h[2] or (h[1] and rq_to_state[h[1]])
    if st ~= 'deferred' or not h[3] then
      leaving[#leaving + 1] = dep
    elseif nothing_left(dep, h[8], h[4] == '1', id, status) then
      redis.call('ZREM', K.deferred(h[3]), dep)
      if ready_again(dep, h[3], h[6], h[7], h[5] == '1', enqueued_at, now, 'deferred') then
        woken[h[3]] = (woken[h[3]] or 0) + 1
      end
      leaving[#leaving + 1] = dep
    end
  end
  for queue, n in pairs(woken) do wake_workers(queue, n, wake_cap) end
  if #leaving == #ids then redis.call('DEL', dkey) else srem_all(dkey, leaving) end
  return #ids - #leaving
end

-- On a Redis Cluster, a job that ends with dependents in other queues (its js_dependents is 'r': depend_register.lua
-- wrote it with them) notes its RQ status in its queue's release outbox, in the step that ends it; the outbox is
-- carried to their queues, other slots no script here can reach (jobsvc/engine/depends.py: ReleaseDrain). Called
-- where release_dependents is, with the js_dependents field read already: a single Redis never writes 'r', so it
-- never gets past the test (nor receives the key: keys.py CLUSTER_ONLY).
local function note_release(id, queue, marker, status)
  if marker == 'r' then redis.call('HSET', K.release(queue), id, status) end
end
