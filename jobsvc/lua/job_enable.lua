-- job_enable.lua: let claim.lua take a job job_disable.lua held. Not a state change. A queued job's workers
-- are woken: they may have gone idle while the job was all their queue held.
-- KEYS: job, wake
-- ARGV: prefix, id, wake_cap
-- Returns: {OK, state}; {NOT_FOUND} no such job; {WRONG_STATE, state} the job has started or ended
local id = ARGV[2]
local key = K.job(id)
local state = state_of(key)
if not state then return {NOT_FOUND} end
if state ~= 'queued' and state ~= 'scheduled' and state ~= 'deferred' then return {WRONG_STATE, state} end
redis.call('HDEL', key, 'js_disabled')
if state == 'queued' then wake_workers(redis.call('HGET', key, 'origin'), 1, tonumber(ARGV[3])) end
return {OK, state}
