-- schedule_advance.lua: after a scheduler pass fired a schedule (its jobs are enqueued in the same
-- MULTI/EXEC, under WATCH of the schedule), move its next fire time on -- only if it still holds the value
-- the pass read (compare-and-set) -- and record the fires: last job, counts, run history.
-- Also records a run-now (expected '*': the next fire time is neither checked nor changed).
-- KEYS: none
-- ARGV: prefix, id, expected_next ('*': keep), new_next ('' for none), last_job ('' to keep), last_fire_ms,
--       runs_kept, fired, skipped, missed, nrec, then per record: member, scheduled_ms, json, pending (1|0)
-- Returns: {0}; {-1} no such schedule; {-3} the next fire time moved (another pass fired it)
local prefix, id = ARGV[1], ARGV[2]
local key = prefix .. 'schedule:' .. id
local cur = redis.call('HMGET', key, 'next_ms', 'version')
if not cur[2] then return {-1} end
if ARGV[3] ~= '*' then
  if (cur[1] or '') ~= ARGV[3] then return {-3} end
  redis.call('HSET', key, 'next_ms', ARGV[4])
  if ARGV[4] == '' then redis.call('ZREM', prefix .. 'schedules:due', id)
  else redis.call('ZADD', prefix .. 'schedules:due', ARGV[4], id) end
end
if ARGV[5] ~= '' then redis.call('HSET', key, 'last_job', ARGV[5], 'last_fire_ms', ARGV[6]) end
local stats = key .. ':stats'
for i, name in ipairs({'runs', 'skipped', 'missed'}) do
  local n = tonumber(ARGV[7 + i])
  if n > 0 then redis.call('HINCRBY', stats, name, n) end
end
local runs, recs = key .. ':runs', key .. ':run'
local nrec = tonumber(ARGV[11])
for i = 12, 11 + 4 * nrec, 4 do
  redis.call('ZADD', runs, ARGV[i + 1], ARGV[i])
  redis.call('HSET', recs, ARGV[i], ARGV[i + 2])
  if ARGV[i + 3] == '1' then redis.call('ZADD', prefix .. 'schedules:pending', ARGV[i + 1], ARGV[i]) end
end
local kept = tonumber(ARGV[7])
local excess = redis.call('ZCARD', runs) - kept
if excess > 0 then
  local old = redis.call('ZRANGE', runs, 0, excess - 1)
  redis.call('ZREMRANGEBYRANK', runs, 0, excess - 1)
  for s = 1, #old, 1000 do redis.call('HDEL', recs, unpack(old, s, math.min(s + 999, #old))) end
end
return {0}
