-- promote_rq.lua: scheduled -> queued for jobs delayed by plain RQ (enqueue_in / enqueue_at),
-- which sit in RQ's per-queue ScheduledJobRegistry with whole-second scores.
-- KEYS: none
-- ARGV: prefix, limit, enqueued_at, wake_cap
-- Returns: number of jobs promoted
local prefix, limit, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[4])
local now_s = math.floor(now_ms() / 1000)
local total = 0
for _, qkey in ipairs(redis.call('SMEMBERS', 'rq:queues')) do
  local queue = string.sub(qkey, 10)
  local zkey = 'rq:scheduled:' .. queue
  local ids = redis.call('ZRANGEBYSCORE', zkey, '-inf', now_s, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    redis.call('ZREM', zkey, id)
    if redis.call('EXISTS', job_key(id)) == 1 then
      redis.call('RPUSH', qkey, id)
      -- js_ready_ms: claim.lua measures the job's enqueue-to-start wait from it.
      redis.call('HSET', job_key(id), 'status', 'queued', 'enqueued_at', ARGV[3], 'js_ready_ms', now_ms())
      total = total + 1
    end
  end
  wake_workers(prefix, queue, #ids, cap)
end
return total
