-- bulk_requeue.lua: failed | quarantined | cancelled -> queued for one chunk of jobs that match a filter:
-- what requeue.lua does for one job (attempts and lease losses reset, run history kept), with the lane
-- pushes, gauge moves, wake-ups and counters batched per chunk. Every job's state and the filter are
-- checked here, so a job that moved on since the caller read its id is skipped, never damaged.
-- KEYS: none
-- ARGV: prefix, dry_run (1|0), state, queue, enqueued_at, wake_cap, until_ms (jobs that ended later
--       entered the state after the operation began: left alone), namespace, function, error_lower,
--       older_than_ms, newer_than_ms ('' = no such filter), nsample, id1 .. idN
-- Returns: {matched, changed, skipped, kept, sample_id1 ..}: skipped = ids whose job is gone or no longer
--       in the state; kept = ids of the chunk still in the state's registry afterwards (the caller pages on)
local prefix, dry, state, queue = ARGV[1], ARGV[2] == '1', ARGV[3], ARGV[4]
local enqueued_at, cap, until_ms = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local f_ns, f_func, f_err = ARGV[8], ARGV[9], ARGV[10]
local f_older, f_newer = tonumber(ARGV[11]), tonumber(ARGV[12])
local nsample = tonumber(ARGV[13])
local registry = terminal_registry(prefix, state, queue)
if not registry then return redis.error_reply('bulk_requeue: ' .. tostring(state) .. ' cannot be requeued') end
local now = now_ms()

local filter = {ns = f_ns, func = f_func, err = f_err, older = f_older, newer = f_newer, until_ms = until_ms}

local matched, changed, skipped, kept = 0, 0, 0, 0
local sample, done, by_lane = {}, {}, {}
for i = 14, #ARGV do
  local id = ARGV[i]
  local key = job_key(id)
  local h = redis.call('HMGET', key, 'js_state', 'status', 'origin', 'js_priority', 'js_group', 'js_ns', 'js_error',
    'js_ended_ms', 'js_created_ms')
  local st = h[1] or (h[2] and (rq_to_state[h[2]] or 'queued'))
  local untouched = true
  if st ~= state or h[3] ~= queue then
    skipped = skipped + 1
    if redis.call('ZSCORE', registry, id) then kept = kept + 1 end
    untouched = false
  elseif bulk_match(filter, now, key, h[6], h[5], h[7], h[8], h[9]) then
    matched = matched + 1
    if #sample < nsample then sample[#sample + 1] = id end
    if not dry then
      redis.call('HSET', key, 'js_attempts', 0, 'js_lease_losses', 0, 'status', 'queued', 'js_state', 'queued',
        'enqueued_at', enqueued_at, 'js_due', '', 'js_ready_ms', now)
      redis.call('HDEL', key, 'js_error', 'ended_at', 'js_ended_ms')
      redis.call('PERSIST', key)
      redis.call('PERSIST', 'rq:results:' .. id)
      redis.call('PERSIST', prefix .. 'runs:' .. id)
      redis.call('PERSIST', dependents_key(id))  -- dependents still waiting on it wait for its next end
      local p = tonumber(h[4]) or 5
      by_lane[p] = by_lane[p] or {}
      by_lane[p][#by_lane[p] + 1] = id
      gauge(prefix, h[5], state, 'queued')
      done[#done + 1] = id
      changed = changed + 1
      untouched = false
    end
  end
  -- A job still in the registry's state and queue is in the registry (the integrity sweep sees to that).
  if untouched then kept = kept + 1 end
end
if changed > 0 then
  redis.call('ZREM', registry, unpack(done))
  for p, ids in pairs(by_lane) do
    if p ~= 5 then redis.call('SADD', prefix .. 'lanes:' .. queue, p) end
    redis.call('RPUSH', lane_key(prefix, queue, p), unpack(ids))
  end
  wake_workers(prefix, queue, changed, cap)
  stat(prefix, queue, 'requeued', changed)
end
local out = {matched, changed, skipped, kept}
for _, id in ipairs(sample) do out[#out + 1] = id end
return out
