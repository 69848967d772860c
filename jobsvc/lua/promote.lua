-- promote.lua: scheduled -> queued for every job whose due time has come (delayed jobs and
-- retries after backoff). Due times are milliseconds of Redis time: never early.
-- KEYS: none
-- ARGV: prefix, limit, enqueued_at, wake_cap
-- Returns: {promoted, next_due_ms (-1 if none), now_ms}
local prefix, limit, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[4])
local zkey = prefix .. 'scheduled'
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', zkey, '-inf', now, 'LIMIT', 0, limit)
local woken = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', zkey, id)
  local key = job_key(id)
  local h = redis.call('HMGET', key, 'js_state', 'origin', 'js_priority', 'js_group')
  if h[2] then redis.call('ZREM', prefix .. 'scheduled:' .. h[2], id) end
  if h[1] == 'scheduled' then
    make_ready(prefix, id, h[2], h[3], false, ARGV[3])
    gauge(prefix, h[4], 'scheduled', 'queued')
    woken[h[2]] = (woken[h[2]] or 0) + 1
  end
end
for queue, n in pairs(woken) do wake_workers(prefix, queue, n, cap) end
local nxt = redis.call('ZRANGE', zkey, 0, 0, 'WITHSCORES')
return {#ids, nxt[2] and tonumber(nxt[2]) or -1, now}
