-- promote_rq.lua: scheduled -> queued for jobs delayed by plain RQ (enqueue_in / enqueue_at, an RQ worker's
-- Retry with an interval), which sit in RQ's per-queue ScheduledJobRegistry with whole-second scores: each goes
-- where ready_again (_lib.lua) puts a job that waited outside the lanes: RQ's list for a job jobsvc does not
-- count yet, its lane (gauge moved from the state jobsvc last gave it) for one it does.
-- And it adopts rq-scheduler's one-off jobs (Scheduler.enqueue_at / enqueue_in), due or not: each leaves
-- rq-scheduler's zset for jobsvc's timeline of delayed jobs (make_scheduled, _lib.lua), due at its score in ms
-- (rounded up: never early), counted from then on in its group's gauge and its queue's scheduled count, still
-- in state scheduled; promote.lua queues it when that time comes, as it does jobsvc's own delayed jobs.
-- rq-scheduler's zset also holds its recurring jobs; which of the ids the caller read are one-off it tells
-- (their meta is a pickle: jobsvc/scheduling/rq_scheduler.py reads it). Each is checked again here (still in the
-- zset, its score read here), so a job is adopted once. One whose hash is gone is dropped from the zset, as
-- rq-scheduler itself drops it. While rq-scheduler's lock exists an `rqscheduler` process is moving jobs itself
-- (enqueue, then ZREM, not atomic): its zset is left alone for that pass, so the two never both take one job.
-- KEYS: count, created, groups, job, lane, lanes, queues, rq_queue, rq_queues, rq_scheduled, rq_scheduler_jobs, rq_scheduler_lock, scheduled, scheduled_in, scheduler_wake, wake
-- ARGV: prefix, limit, enqueued_at, wake_cap, the one-off ids the caller read from rq-scheduler's zset...
-- Returns: {jobs queued from RQ's registries, one-off jobs adopted, earliest due time among those adopted (ms,
--          -1 for none), now (ms), 1 if rq-scheduler's lock held its zset (nothing adopted) else 0}
local limit, cap = tonumber(ARGV[2]), tonumber(ARGV[4])
local now = now_ms()
local now_s = math.floor(now / 1000)
local total = 0
local woken = {}

for _, qkey in ipairs(redis.call('SMEMBERS', K.rq_queues)) do
  local queue = string.sub(qkey, #K.rq_queue('') + 1)
  local zkey = K.rq_scheduled(queue)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', zkey, '-inf', now_s, 'LIMIT', 0, limit)) do
    redis.call('ZREM', zkey, id)
    local h = redis.call('HMGET', K.job(id), 'status', 'js_group', 'js_state', 'js_priority')
    if h[1] then
      -- js_ready_ms (written by ready_again): claim.lua measures the job's enqueue-to-start wait from it.
      if ready_again(id, queue, h[2], h[4], false, ARGV[3], now, h[3]) then
        woken[queue] = (woken[queue] or 0) + 1
      end
      total = total + 1
    end
  end
end
for queue, n in pairs(woken) do wake_workers(queue, n, cap) end

-- One rq-scheduler one-off job onto jobsvc's timeline; returns its due time (ms), nil when it was not adopted.
local function adopt(id)
  local score = redis.call('ZSCORE', K.rq_scheduler_jobs, id)
  if not score then return nil end  -- moved or cancelled since the caller read it
  redis.call('ZREM', K.rq_scheduler_jobs, id)
  local key = K.job(id)
  local h = redis.call('HMGET', key, 'origin', 'js_group', 'js_state', 'description')
  if not h[1] then return nil end  -- its hash is gone: the entry is dropped
  -- Scores are epoch seconds, whole ones from rq-scheduler's to_unix; a fraction is kept to the millisecond.
  local due = math.ceil(tonumber(score) * 1000)
  local group, from = h[2], h[3]
  if not group then  -- never moved by jobsvc: counted from now on
    local adopted
    group, adopted = adopt_rq_job(id, h[1], h[4], now)
    redis.call('HSET', key, unpack(adopted))
    from = nil
  end
  -- rq-scheduler's job may name a queue RQ has not registered yet (RQ's enqueue_job would add it); jobsvc's
  -- queue set is the one its listings read.
  redis.call('SADD', K.rq_queues, K.rq_queue(h[1]))
  redis.call('SADD', K.queues, h[1])
  make_scheduled(id, due, h[1])  -- js_state: unchanged (scheduled, as RQ's status already says)
  gauge(group, from, 'scheduled')
  return due
end

local adopted, first_due = 0, -1
if redis.call('EXISTS', K.rq_scheduler_lock) == 1 then return {total, 0, -1, now, 1} end
for i = 5, #ARGV do
  local due = adopt(ARGV[i])
  if due then
    adopted = adopted + 1
    if first_due < 0 or due < first_due then first_due = due end
  end
end
return {total, adopted, first_due, now, 0}
