-- bulk_requeue.lua: failed | quarantined | cancelled -> queued for one chunk of jobs that match a filter:
-- what requeue.lua does for one job (attempts and lease losses reset, run history kept), with the lane
-- pushes, gauge moves, wake-ups and counters batched per chunk. Every job's state and the filter are
-- checked here, so a job that moved on since the caller read its id is skipped, never damaged.
-- KEYS: canceled, count, deferred, dependents, failed, finished, job, lane, lanes, quarantined, results, rq_queue, runs, stats, wake
-- ARGV: prefix, dry_run (1|0), state, queue, enqueued_at, wake_cap, until_ms (jobs that ended later
--       entered the state after the operation began: left alone), namespace, function, error_lower,
--       older_than_ms, newer_than_ms ('' = no such filter), nsample, id1 .. idN
-- Returns: {matched, changed, skipped, kept, sample_id1 ..}: skipped = ids whose job is gone or no longer
--       in the state; kept = ids of the chunk still in the state's registry afterwards (the caller pages on)
local dry, state, queue = ARGV[2] == '1', ARGV[3], ARGV[4]
local enqueued_at, cap = ARGV[5], tonumber(ARGV[6])
local registry = terminal_registry(state, queue)
if not registry then return redis.error_reply('bulk_requeue: ' .. tostring(state) .. ' cannot be requeued') end
local now = now_ms()
local by_lane = {}

local function requeue(id, key, h)
  redis.call('HSET', key, 'js_attempts', 0, 'js_lease_losses', 0, 'status', 'queued', 'js_state', 'queued',
    'enqueued_at', enqueued_at, 'js_due', '', 'js_ready_ms', now)
  redis.call('HDEL', key, 'js_error', 'ended_at', 'js_ended_ms')
  redis.call('PERSIST', key)
  redis.call('PERSIST', K.results(id))
  redis.call('PERSIST', K.runs(id))
  redis.call('PERSIST', K.dependents(id))  -- dependents still waiting on it wait for its next end
  local p = tonumber(h[9]) or 5
  by_lane[p] = by_lane[p] or {}
  by_lane[p][#by_lane[p] + 1] = id
  gauge(h[4], state, 'queued')
end

local out, done = bulk_chunk(state, queue, registry, 7, dry, requeue)
if #done > 0 then
  redis.call('ZREM', registry, unpack(done))
  for p, ids in pairs(by_lane) do
    if p ~= 5 then redis.call('SADD', K.lanes(queue), p) end
    redis.call('RPUSH', lane_key(queue, p), unpack(ids))
  end
  wake_workers(queue, #done, cap)
  stat(queue, 'requeued', #done)
end
return out
