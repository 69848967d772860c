-- complete.lua: running -> completed, fenced by the lease token.
-- KEYS: none
-- ARGV: prefix, id, token, ended_at, return_value_b64 ('' for None), worker, started_ts, ended_ts,
--       default_result_ttl
-- Returns: {0} done; {-1} no such job; {-2, state} lease lost (outcome rejected, nothing written)
-- A successful run writes no run-history entry: the hash holds its attempt, worker and times.
local prefix, id, token = ARGV[1], ARGV[2], ARGV[3]
local key = job_key(id)
local h = redis.call('HMGET', key, 'js_token', 'origin', 'result_ttl', 'js_attempts', 'js_lease_losses', 'js_group',
  'js_schedule')
local rejected = fence(key, h[1], token)
if rejected then return rejected end
local queue = h[2]
local now = now_ms()
local ttl = tonumber(h[3]) or tonumber(ARGV[9])
drop_lease(prefix, id)
hset_unleased(key, {'status', 'finished', 'js_state', 'completed', 'ended_at', ARGV[4], 'js_ended_ms', now})
local res = {'type', 1, 'worker_name', ARGV[6], 'execution_started_at', ARGV[7], 'execution_ended_at', ARGV[8]}
if ARGV[5] ~= '' then res[#res + 1] = 'return_value'; res[#res + 1] = ARGV[5] end
redis.call('XADD', 'rq:results:' .. id, 'MAXLEN', 10, '*', unpack(res))
if ttl ~= 0 then
  local expires = (ttl < 0) and '+inf' or (math.floor(now / 1000) + ttl)
  redis.call('ZADD', 'rq:finished:' .. queue, expires, id)
end
-- Earlier attempts left a history only if one failed or lost its lease.
set_lifetime(prefix, id, queue, ttl, (tonumber(h[4]) or 1) > 1 or (tonumber(h[5]) or 0) > 0)
gauge(prefix, h[6], 'running', ttl ~= 0 and 'completed' or nil)
stat(prefix, queue, 'completed')
-- A schedule's job: count the run's outcome on the schedule (jobsvc/schedules.py).
if h[7] then redis.call('HINCRBY', prefix .. 'schedule:' .. h[7] .. ':stats', 'completed', 1) end
return {0}
