-- claim.lua: queued -> running under a lease. Atomic over all the worker's queues and priorities,
-- so there is no window in which a popped job belongs to nobody.
-- KEYS: none (names built from the prefix)
-- ARGV: prefix, lease_ms, token, worker_name, started_at, nq, queue1 .. queueN
-- Returns: {} when nothing is ready, else {id, queue, lease_expiry_ms, field1, value1, ...}
local prefix, lease_ms, token, worker, started_at = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local nq = tonumber(ARGV[6])
local paused = prefix .. 'paused'
local skipped = 0
for qi = 1, nq do
  local queue = ARGV[6 + qi]
  if redis.call('SISMEMBER', paused, queue) == 0 then
    for priority = 1, 10 do
      local lane = lane_key(prefix, queue, priority)
      local id = redis.call('LPOP', lane)
      while id do
        local key = job_key(id)
        local status = redis.call('HGET', key, 'status')
        -- A cancelled or deleted job may still have its id in a lane: drop it and go on.
        if status == 'queued' then
          local now = now_ms()
          local exp = now + lease_ms
          local attempt = redis.call('HINCRBY', key, 'js_attempts', 1)
          redis.call('HSET', key, 'status', 'started', 'js_state', 'running', 'js_token', token,
            'js_lease_exp', exp, 'js_started_ms', now, 'worker_name', worker, 'started_at', started_at)
          redis.call('ZADD', prefix .. 'leases', exp, id)
          redis.call('ZADD', prefix .. 'running:' .. queue, now, id)
          local out = {id, queue, exp}
          local h = redis.call('HGETALL', key)
          for k = 1, #h do out[#out + 1] = h[k] end
          return out
        end
        skipped = skipped + 1
        if skipped >= 1000 then return {} end
        id = redis.call('LPOP', lane)
      end
    end
  end
end
return {}
