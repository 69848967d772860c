-- heartbeat.lua: renew the leases a worker holds (running stays running, expiry moves on).
-- KEYS: none
-- ARGV: prefix, lease_ms, id1, token1, id2, token2, ...
-- Returns: {lease_expiry_ms, lost_id1, lost_id2, ...}: ids whose lease is no longer the caller's
local prefix, lease_ms = ARGV[1], tonumber(ARGV[2])
local exp = now_ms() + lease_ms
local out = {exp}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local key = job_key(id)
  if redis.call('HGET', key, 'js_token') == token then
    redis.call('HSET', key, 'js_lease_exp', exp)
    redis.call('ZADD', prefix .. 'leases', exp, id)
  else
    out[#out + 1] = id
  end
end
return out
