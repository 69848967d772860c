-- leader_release.lua: give up the scheduler lock, only if the caller still holds it.
-- KEYS: [1] the lock key
-- ARGV: token
-- Returns: 1 released, 0 not the holder
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
