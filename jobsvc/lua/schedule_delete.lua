-- schedule_delete.lua: remove a cron schedule with its counts and run history. Jobs it already fired stay;
-- their outcomes are no longer counted anywhere (the run-record pass drops them).
-- KEYS: none
-- ARGV: prefix, id
-- Returns: {0}; {-1} no such schedule
local prefix, id = ARGV[1], ARGV[2]
local key = prefix .. 'schedule:' .. id
if redis.call('DEL', key) == 0 then return {-1} end
redis.call('DEL', key .. ':stats', key .. ':runs', key .. ':run')
redis.call('ZREM', prefix .. 'schedules', id)
redis.call('ZREM', prefix .. 'schedules:due', id)
return {0}
