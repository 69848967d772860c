-- promote_rq.lua: scheduled -> queued for jobs delayed by plain RQ (enqueue_in / enqueue_at, an RQ worker's
-- Retry with an interval), which sit in RQ's per-queue ScheduledJobRegistry with whole-second scores, and for
-- rq-scheduler's one-off jobs (Scheduler.enqueue_at / enqueue_in), which sit in its own zset. Each goes where
-- ready_again (_lib.lua) puts a job that waited outside the lanes: RQ's list for a job jobsvc does not count
-- yet, its lane (gauge moved from the state jobsvc last gave it) for one it does.
-- rq-scheduler's zset also holds its recurring jobs; which of its due ids are one-off the caller tells (their
-- meta is a pickle: jobsvc/scheduling/rq_scheduler.py reads it). Each is checked again here: still in the zset
-- and due by this script's clock, so a job is never early and never moved twice. While rq-scheduler's lock
-- exists an `rqscheduler` process is moving jobs itself (enqueue, then ZREM, not atomic): its zset is left
-- alone for that pass, so the two never both enqueue one job.
-- KEYS: count, job, lane, lanes, rq_queue, rq_queues, rq_scheduled, wake
-- ARGV: prefix, limit, enqueued_at, wake_cap, rq-scheduler zset, rq-scheduler lock, the epoch seconds up to
--       which the caller read the zset's due ids, the one-off ones among them...
-- Returns: {number of jobs promoted, next due time in rq-scheduler's zset (ms, -1 for none), now (ms)}
local limit, cap = tonumber(ARGV[2]), tonumber(ARGV[4])
local now = now_ms()
local now_s = math.floor(now / 1000)
local total = 0
local woken = {}

local function promote(id, queue)
  local h = redis.call('HMGET', K.job(id), 'status', 'js_group', 'js_state', 'js_priority')
  if not h[1] then return end
  -- js_ready_ms (written by ready_again): claim.lua measures the job's enqueue-to-start wait from it.
  if ready_again(id, queue, h[2], h[4], false, ARGV[3], now, h[3]) then
    woken[queue] = (woken[queue] or 0) + 1
  end
  total = total + 1
end

for _, qkey in ipairs(redis.call('SMEMBERS', K.rq_queues)) do
  local queue = string.sub(qkey, #K.rq_queue("") + 1)
  local zkey = K.rq_scheduled(queue)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', zkey, '-inf', now_s, 'LIMIT', 0, limit)) do
    redis.call('ZREM', zkey, id)
    promote(id, queue)
  end
end

local szkey = ARGV[5]
-- Scores are epoch seconds, whole ones from rq-scheduler's to_unix; a fraction is honoured to the millisecond.
if #ARGV > 7 and redis.call('EXISTS', ARGV[6]) == 0 then
  for i = 8, #ARGV do
    local id = ARGV[i]
    local score = redis.call('ZSCORE', szkey, id)
    if score and tonumber(score) * 1000 <= now then
      redis.call('ZREM', szkey, id)
      local origin = redis.call('HGET', K.job(id), 'origin')
      if origin then
        -- rq-scheduler's job may name a queue RQ has not registered yet (RQ's enqueue_job adds it).
        redis.call('SADD', K.rq_queues, K.rq_queue(origin))
        promote(id, origin)
      end
    end
  end
end
for queue, n in pairs(woken) do wake_workers(queue, n, cap) end

-- The next entry after what the caller read: one that fell due since is returned (due now, so the caller passes
-- again at once); recurring ones the caller left are not (they would wake it in a loop).
local nxt = redis.call('ZRANGEBYSCORE', szkey, '(' .. ARGV[7], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local next_ms = -1
if nxt[2] then next_ms = math.ceil(tonumber(nxt[2]) * 1000) end
return {total, next_ms, now}
