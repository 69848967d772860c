-- await_callback.lua: running stays running, but its lease passes from the worker to the HTTP service that
-- answered 202 Accepted. The token stays the same (the service was sent it with the request) and the
-- expiry moves to the job's callback timeout; the service finishes the job with POST /jobs/{id}/callback
-- (or extends it with /heartbeat), else the reaper takes it back like any lost lease.
-- KEYS: job, leases, runs
-- ARGV: prefix, id, token, worker, run_extras (JSON object: http_status, duration_ms), default_callback_ttl_s
-- Returns: {OK, lease_expiry_ms}; {NOT_FOUND} no such job; {LEASE_LOST, state} lease lost
local id, token = ARGV[2], ARGV[3]
local key = K.job(id)
local h = redis.call('HMGET', key, 'js_token', 'js_attempts', 'js_started_ms', 'js_callback_ttl')
local rejected = fence(key, h[1], token)
if rejected then return rejected end
local now = now_ms()
local exp = now + 1000 * (tonumber(h[4]) or tonumber(ARGV[6]))
add_run(id, with_extras({attempt = tonumber(h[2]) or 1, worker = ARGV[4], started_ms = tonumber(h[3]),
  ended_ms = now, outcome = 'accepted'}, ARGV[5]))
redis.call('HSET', key, 'js_lease_exp', exp, 'worker_name', 'callback')
redis.call('ZADD', K.leases, exp, id)
return {OK, exp}
