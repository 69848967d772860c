-- job_disable.lua: hold a job that has not started: claim.lua skips it (as it does a job of a disabled registry
-- function: it goes back to its lane's end) until job_enable.lua clears the flag. Not a state change: a queued,
-- scheduled or deferred job keeps its state, its place in the schedule and its dependencies; a scheduled or
-- deferred one becomes queued when due and waits there. The flag is one more field of the HMGET claim.lua
-- makes anyway (js_disabled): holding costs the hot path no command.
-- KEYS: job
-- ARGV: prefix, id
-- Returns: {OK, state}; {NOT_FOUND} no such job; {WRONG_STATE, state} the job has started or ended
local id = ARGV[2]
local key = K.job(id)
local state = state_of(key)
if not state then return {NOT_FOUND} end
if state ~= 'queued' and state ~= 'scheduled' and state ~= 'deferred' then return {WRONG_STATE, state} end
redis.call('HSET', key, 'js_disabled', '1')
return {OK, state}
