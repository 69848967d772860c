-- schedule_delete.lua: remove a cron schedule with its counts and run history. Jobs it already fired stay;
-- their outcomes are no longer counted anywhere (the run-record pass drops them).
-- Key types are checked before the first write, so an error leaves Redis as it was.
-- KEYS: schedule, schedule_run, schedule_runs, schedule_stats, schedules, schedules_due
-- ARGV: prefix, id
-- Returns: {OK}; {NOT_FOUND} no such schedule; an error reply, nothing written: a key of another type than
--          jobsvc/engine/keys.py gives it
local id = ARGV[2]
local key = K.schedule(id)
local index, due = K.schedules, K.schedules_due
-- The run keys (:stats, :runs, :run) are only deleted, which works on any type: not checked.
local bad = wrong_type({key, 'hash', index, 'zset', due, 'zset'})
if bad then return bad end
if redis.call('DEL', key) == 0 then return {NOT_FOUND} end
redis.call('DEL', K.schedule_stats(id), K.schedule_runs(id), K.schedule_run(id))
redis.call('ZREM', index, id)
redis.call('ZREM', due, id)
return {OK}
