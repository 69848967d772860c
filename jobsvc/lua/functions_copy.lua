-- functions_copy.lua: on a Redis Cluster only, make one queue's copy of the disabled functions' set (the set
-- claim.lua reads in the queue's slot) hold exactly the refs given: the registry's set as its caller read it in the
-- registry's own slot (jobsvc/engine/functions/copies.py, which says why the copies end up equal to it). A ref that
-- leaves the copy lets that function's held jobs run again: the queue's workers are woken.
-- Key types are checked before the first write, so an error leaves Redis as it was.
-- KEYS: functions_disabled, wake
-- ARGV: prefix, queue, wake_cap, ref...
-- Returns: how many refs left the copy
local queue, cap = ARGV[2], tonumber(ARGV[3])
if not cap then return redis.error_reply('functions_copy: bad wake_cap: nothing changed') end
local copy = K.functions_disabled
local bad = wrong_type({copy, 'set', K.wake(queue), 'list'})
if bad then return bad end
local wanted = {}
for i = 4, #ARGV do wanted[ARGV[i]] = true end
local left = 0
for _, ref in ipairs(redis.call('SMEMBERS', copy)) do
  if not wanted[ref] then left = left + 1 end
end
redis.call('DEL', copy)
-- In chunks: unpack() of many values can overflow Lua's C stack.
for i = 4, #ARGV, 1000 do
  redis.call('SADD', copy, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if left > 0 then wake_workers(queue, cap, cap) end
return left
