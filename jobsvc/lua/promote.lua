-- promote.lua: scheduled -> queued for every job whose due time has come (delayed jobs and
-- retries after backoff). Due times are milliseconds of Redis time: never early.
-- KEYS: count, job, lane, lanes, rq_queue, scheduled, scheduled_in, scheduler_stats, wake
-- ARGV: prefix, limit, enqueued_at, wake_cap
-- Returns: {promoted, next_due_ms (-1 if none), now_ms}
-- Also records the scheduler's lag for GET /metrics in <prefix>scheduler:stats: last_pass_ms (this call),
-- lag_ms (how late the most overdue job of the last call that promoted any was) and lag_at_ms (that call).
local limit, cap = tonumber(ARGV[2]), tonumber(ARGV[4])
local zkey = K.scheduled
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', zkey, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
local ids = {}
for k = 1, #due, 2 do ids[#ids + 1] = due[k] end
local woken = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', zkey, id)
  local key = K.job(id)
  local h = redis.call('HMGET', key, 'js_state', 'origin', 'js_priority', 'js_group', 'status')
  if h[2] then redis.call('ZREM', K.scheduled_in(h[2]), id) end
  -- RQ's status must agree: RQ's Job.cancel() (or another tool of RQ's) changes only status, and a job it
  -- cancelled must not run; the integrity sweep makes js_state and the gauge follow RQ's change.
  if h[1] == 'scheduled' and h[5] == 'scheduled' then
    make_ready(id, h[2], h[3], false, ARGV[3], now)
    gauge(h[4], 'scheduled', 'queued')
    woken[h[2]] = (woken[h[2]] or 0) + 1
  end
end
for queue, n in pairs(woken) do wake_workers(queue, n, cap) end
-- Scores ascend, so the first due time is the most overdue: one HSET per call, however many jobs.
local lag = {'last_pass_ms', now}
if #ids > 0 then
  lag[3] = 'lag_ms'; lag[4] = now - tonumber(due[2]); lag[5] = 'lag_at_ms'; lag[6] = now
end
redis.call('HSET', K.scheduler_stats, unpack(lag))
local nxt = redis.call('ZRANGE', zkey, 0, 0, 'WITHSCORES')
return {#ids, nxt[2] and tonumber(nxt[2]) or -1, now}
