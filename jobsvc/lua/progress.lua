-- progress.lua: record a running job's progress (0-100 and a message), fenced by its lease token.
-- Not a state change: running stays running.
-- KEYS: none
-- ARGV: id, token, percent, message
-- Returns: {OK}; {NOT_FOUND} no such job; {LEASE_LOST, state} lease lost
local id, token = ARGV[1], ARGV[2]
local key = job_key(id)
local rejected = fence(key, redis.call('HGET', key, 'js_token'), token)
if rejected then return rejected end
redis.call('HSET', key, 'js_progress', ARGV[3], 'js_progress_msg', ARGV[4])
return {OK}
