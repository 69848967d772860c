-- schedule_save.lua: create or change a cron schedule (jobsvc/scheduling/schedules/); its version goes up on every
-- change of its definition. An enabled schedule with a next fire time sits in the due index the scheduler
-- reads; the scheduler is woken when this schedule is now the earliest.
-- Everything is checked before the first write (the id, key types, the stored version, the times), so a
-- refusal or an error leaves Redis as it was.
-- KEYS: schedule, schedule_run, schedule_runs, schedule_stats, scheduler_wake, schedules, schedules_due
-- ARGV: prefix, id, def_json (canonical), enabled (1|0), mode (create|update|upsert), expected_version
--       ('' for any), set_next (1: store next_ms; 0: keep the stored one), next_ms ('' for none), now_ms
-- Returns: {OK, version, changed (1|0), next_ms ('' for none)}; {NOT_FOUND} no such schedule (update);
--          {EXISTS, version} exists (create); {CONFLICT, version} the stored version is not the expected one;
--          an error reply, nothing written: an id outside [A-Za-z0-9_.-], a key of another type than
--          jobsvc/engine/keys.py gives it, a stored schedule without a numeric version, or a bad argument
local id, def, enabled, mode = ARGV[2], ARGV[3], ARGV[4] == '1', ARGV[5]
-- The key layout (jobsvc/engine/keys.py) relies on ids without ':' (schedule:<id>:stats...): never write one.
if not string.match(id, '^[%w_.%-]+$') then
  return redis.error_reply('bad schedule id ' .. id .. ': nothing changed')
end
local expected = tonumber(ARGV[6])
if (ARGV[6] ~= '' and not expected) or (ARGV[8] ~= '' and not tonumber(ARGV[8])) or not tonumber(ARGV[9]) then
  return redis.error_reply('schedule_save: bad expected_version, next_ms or now_ms: nothing changed')
end
local key = K.schedule(id)
local index, due = K.schedules, K.schedules_due
-- The run keys (:stats, :runs, :run) are only deleted here, which works on any type: not checked.
local bad = wrong_type({key, 'hash', index, 'zset', due, 'zset', K.scheduler_wake, 'list'})
if bad then return bad end
local cur = redis.call('HMGET', key, 'def', 'version', 'next_ms')
local version = tonumber(cur[2])
local refusal = version_refusal(key, version, mode, expected)
if refusal then return refusal end
local nxt = cur[3] or ''
if ARGV[7] == '1' or not version then nxt = ARGV[8] end
if nxt ~= '' and not tonumber(nxt) then
  return redis.error_reply(key .. ' has a non-numeric next_ms: nothing changed')
end
if cur[1] == def and nxt == (cur[3] or '') then return {OK, version, 0, nxt} end
-- Checked: the writes below cannot fail half-way.
local fields = {'next_ms', nxt}
if cur[1] ~= def then
  version = (version or 0) + 1
  fields[#fields + 1] = 'def'; fields[#fields + 1] = def
  fields[#fields + 1] = 'version'; fields[#fields + 1] = version
  fields[#fields + 1] = 'updated_ms'; fields[#fields + 1] = ARGV[9]
end
if version == 1 and not cur[2] then
  -- A new schedule (perhaps reusing a deleted one's id): counts and run history start empty.
  fields[#fields + 1] = 'created_ms'; fields[#fields + 1] = ARGV[9]
  redis.call('DEL', K.schedule_stats(id), K.schedule_runs(id), K.schedule_run(id))
end
redis.call('HSET', key, unpack(fields))
redis.call('ZADD', index, 0, id)
if enabled and nxt ~= '' then
  redis.call('ZADD', due, nxt, id)
  wake_scheduler_if_first(due, id)
else
  redis.call('ZREM', due, id)
end
return {OK, version, 1, nxt}
