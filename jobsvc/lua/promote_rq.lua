-- promote_rq.lua: scheduled -> queued for jobs delayed by plain RQ (enqueue_in / enqueue_at, an RQ worker's
-- Retry with an interval), which sit in RQ's per-queue ScheduledJobRegistry with whole-second scores. Each
-- goes where ready_again (_lib.lua) puts a job that waited outside the lanes: RQ's list for a job jobsvc does
-- not count yet, its lane (gauge moved from the state jobsvc last gave it) for one it does.
-- KEYS: none
-- ARGV: prefix, limit, enqueued_at, wake_cap
-- Returns: number of jobs promoted
local prefix, limit, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[4])
local now = now_ms()
local now_s = math.floor(now / 1000)
local total = 0
for _, qkey in ipairs(redis.call('SMEMBERS', 'rq:queues')) do
  local queue = string.sub(qkey, 10)
  local zkey = 'rq:scheduled:' .. queue
  local ids = redis.call('ZRANGEBYSCORE', zkey, '-inf', now_s, 'LIMIT', 0, limit)
  local woken = 0
  for _, id in ipairs(ids) do
    redis.call('ZREM', zkey, id)
    local h = redis.call('HMGET', job_key(id), 'status', 'js_group', 'js_state', 'js_priority')
    if h[1] then
      -- js_ready_ms (written by ready_again): claim.lua measures the job's enqueue-to-start wait from it.
      if ready_again(prefix, id, queue, h[2], h[4], false, ARGV[3], now, h[3]) then woken = woken + 1 end
      total = total + 1
    end
  end
  wake_workers(prefix, queue, woken, cap)
end
return total
