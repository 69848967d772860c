-- heartbeat.lua: renew the leases a worker holds (running stays running, expiry moves on).
-- KEYS: job, leases
-- ARGV: prefix, lease_ms, holder, id1, token1, id2, token2, ...
--   holder: '' renews whoever holds the token (pull workers, handler services); a worker name renews only
--   while that worker is still the job's holder, so a Python worker's heartbeat racing the hand-over of an
--   HTTP handler job to its service (await_callback.lua: same token, holder 'callback') cannot shorten the
--   service's callback lease back to a worker lease.
-- Returns: {lease_expiry_ms, lost_id1, lost_id2, ...}: ids whose lease is no longer the caller's
local lease_ms, holder = tonumber(ARGV[2]), ARGV[3]
local exp = now_ms() + lease_ms
local out = {exp}
for i = 4, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local key = K.job(id)
  local h = redis.call('HMGET', key, 'js_token', 'worker_name')
  if h[1] == token and (holder == '' or h[2] == holder) then
    redis.call('HSET', key, 'js_lease_exp', exp)
    redis.call('ZADD', K.leases, exp, id)
  else
    out[#out + 1] = id
  end
end
return out
