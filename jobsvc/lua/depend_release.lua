-- depend_release.lua: on a Redis Cluster, tell jobs of this queue that a job of another queue they wait on ended
-- (jobsvc/engine/depends.py: ReleaseDrain carries its queue's release outbox here). deferred -> queued for a job
-- whose last awaited dependency this was, as release_dependents does within one queue. Telling twice changes
-- nothing: the dependency leaves the job's js_waits at the first.
-- KEYS: count, deferred, job, lane, lanes, rq_queue, wake
-- ARGV: prefix, wake_cap, enqueued_at, then per telling (3 each): dependent id, dependency id, the dependency's RQ
--       status when it ended ('finished' | 'failed'; '' when it no longer exists: done, as in RQ)
-- Returns: per telling, SETTLED (released; still waiting on others; not waiting on it: not deferred, or told
--          before), WAITING (it failed and the job does not allow failure: the job waits for it to end again) or
--          MISSING (no such job: its enqueue, the step after depend_register.lua, may not have happened yet)
local SETTLED, WAITING, MISSING = 0, 1, 2
local wake_cap, enqueued_at = tonumber(ARGV[2]), ARGV[3]
local now = now_ms()
local woken = {}

local function tell(id, dep, status)
  local key = K.job(id)
  local h = redis.call('HMGET', key, 'status', 'js_state', 'origin', 'allow_dependency_failures', 'enqueue_at_front',
    'js_group', 'js_priority', 'js_waits')
  if not h[1] and not h[2] then return MISSING end
  local st = h[2] or rq_to_state[h[1]]
  if st ~= 'deferred' or not h[8] or not h[3] then return SETTLED end
  local ok, waits = pcall(cjson.decode, h[8])
  if not ok or type(waits) ~= 'table' then return SETTLED end
  local rest, found = {}, false
  for _, w in ipairs(waits) do
    if w == dep then found = true else rest[#rest + 1] = w end
  end
  if not found then return SETTLED end
  if not dependency_done(status ~= '' and status or false, h[4] == '1') then return WAITING end
  if #rest > 0 then
    redis.call('HSET', key, 'js_waits', cjson.encode(rest))
    return SETTLED
  end
  redis.call('HDEL', key, 'js_waits')
  redis.call('ZREM', K.deferred(h[3]), id)
  if ready_again(id, h[3], h[6], h[7], h[5] == '1', enqueued_at, now, 'deferred') then
    woken[h[3]] = (woken[h[3]] or 0) + 1
  end
  return SETTLED
end

local out = {}
for i = 4, #ARGV, 3 do out[#out + 1] = tell(ARGV[i], ARGV[i + 1], ARGV[i + 2]) end
for queue, n in pairs(woken) do wake_workers(queue, n, wake_cap) end
return out
