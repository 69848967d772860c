-- leader_acquire.lua: take the scheduler lock, or renew it if the caller already holds it.
-- KEYS: [1] the lock key
-- ARGV: token, ttl_ms
-- Returns: 1 if the caller leads (for ttl_ms from now), 0 otherwise
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
