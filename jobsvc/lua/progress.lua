-- progress.lua: record a running job's progress (0-100 and a message), fenced by its lease token.
-- Not a state change: running stays running.
-- KEYS: job
-- ARGV: prefix, id, token, percent, message
-- Returns: {OK}; {NOT_FOUND} no such job; {LEASE_LOST, state} lease lost
local id, token = ARGV[2], ARGV[3]
local key = K.job(id)
local rejected = fence(key, redis.call('HGET', key, 'js_token'), token)
if rejected then return rejected end
redis.call('HSET', key, 'js_progress', ARGV[4], 'js_progress_msg', ARGV[5])
return {OK}
