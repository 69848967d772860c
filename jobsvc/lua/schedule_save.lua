-- schedule_save.lua: create or change a cron schedule (jobsvc/schedules.py); its version goes up on every
-- change of its definition. An enabled schedule with a next fire time sits in the due index the scheduler
-- reads; the scheduler is woken when this schedule is now the earliest.
-- KEYS: none
-- ARGV: prefix, id, def_json (canonical), enabled (1|0), mode (create|update|upsert), expected_version
--       ('' for any), set_next (1: store next_ms; 0: keep the stored one), next_ms ('' for none), now_ms
-- Returns: {0, version, changed (1|0), next_ms ('' for none)}; {-1} no such schedule (update);
--          {-3, version} exists (create); {-4, version} the stored version is not the expected one
local prefix, id, def, enabled, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1', ARGV[5]
local key = prefix .. 'schedule:' .. id
local cur = redis.call('HMGET', key, 'def', 'version', 'next_ms')
local version = tonumber(cur[2])
if mode == 'create' and version then return {-3, version} end
if mode == 'update' and not version then return {-1} end
if ARGV[6] ~= '' and (version or 0) ~= tonumber(ARGV[6]) then return {-4, version or 0} end
local nxt = cur[3] or ''
if ARGV[7] == '1' or not version then nxt = ARGV[8] end
if cur[1] == def and nxt == (cur[3] or '') then return {0, version, 0, nxt} end
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
  redis.call('DEL', key .. ':stats', key .. ':runs', key .. ':run')
end
redis.call('HSET', key, unpack(fields))
redis.call('ZADD', prefix .. 'schedules', 0, id)
local due = prefix .. 'schedules:due'
if enabled and nxt ~= '' then
  redis.call('ZADD', due, nxt, id)
  wake_scheduler_if_first(prefix, due, id)
else
  redis.call('ZREM', due, id)
end
return {0, version, 1, nxt}
