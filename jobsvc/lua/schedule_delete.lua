-- schedule_delete.lua: remove a cron schedule with its counts and run history. Jobs it already fired stay;
-- their outcomes are no longer counted anywhere (the run-record pass drops them).
-- Key types are checked before the first write, so an error leaves Redis as it was.
-- KEYS: none
-- ARGV: prefix, id
-- Returns: {OK}; {NOT_FOUND} no such schedule; an error reply, nothing written: a key of another type than
--          jobsvc/engine/keys.py gives it
local prefix, id = ARGV[1], ARGV[2]
local key = prefix .. 'schedule:' .. id
local index, due = prefix .. 'schedules', prefix .. 'schedules:due'
-- The run keys (:stats, :runs, :run) are only deleted, which works on any type: not checked.
local bad = wrong_type({key, 'hash', index, 'zset', due, 'zset'})
if bad then return bad end
if redis.call('DEL', key) == 0 then return {NOT_FOUND} end
redis.call('DEL', key .. ':stats', key .. ':runs', key .. ':run')
redis.call('ZREM', index, id)
redis.call('ZREM', due, id)
return {OK}
