-- complete.lua: running -> completed, fenced by the lease token.
-- KEYS: none
-- ARGV: prefix, id, token, ended_at, return_value_b64 ('' for None), worker, started_ts, ended_ts,
--       default_result_ttl
-- Returns: {0} done; {-1} no such job; {-2, state} lease lost (outcome rejected, nothing written)
local prefix, id, token = ARGV[1], ARGV[2], ARGV[3]
local key = job_key(id)
if redis.call('EXISTS', key) == 0 then return {-1} end
local h = redis.call('HMGET', key, 'js_token', 'origin', 'result_ttl', 'js_attempts', 'js_started_ms')
if h[1] ~= token then return {-2, state_of(key)} end
local queue = h[2]
local now = now_ms()
local ttl = tonumber(h[3]) or tonumber(ARGV[9])
drop_lease(prefix, id, queue)
redis.call('HSET', key, 'status', 'finished', 'js_state', 'completed', 'ended_at', ARGV[4],
  'js_ended_ms', now)
local res = {'type', 1, 'worker_name', ARGV[6], 'execution_started_at', ARGV[7], 'execution_ended_at', ARGV[8]}
if ARGV[5] ~= '' then res[#res + 1] = 'return_value'; res[#res + 1] = ARGV[5] end
redis.call('XADD', 'rq:results:' .. id, 'MAXLEN', 10, '*', unpack(res))
add_run(prefix, id, {attempt = tonumber(h[4]), worker = ARGV[6], started_ms = tonumber(h[5]),
  ended_ms = now, outcome = 'completed'})
if ttl ~= 0 then
  local expires = (ttl < 0) and '+inf' or (math.floor(now / 1000) + ttl)
  redis.call('ZADD', 'rq:finished:' .. queue, expires, id)
end
set_lifetime(prefix, id, ttl)
stat(prefix, queue, 'completed')
return {0}
