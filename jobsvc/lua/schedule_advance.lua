-- schedule_advance.lua: after a scheduler pass fired a schedule (its jobs are enqueued in the same
-- MULTI/EXEC, under WATCH of the schedule), move its next fire time on -- only if it still holds the value
-- the pass read (compare-and-set) -- and record the fires: last job, counts, run history.
-- Also records a run-now (expected '*': the next fire time is neither checked nor changed).
-- Everything is checked before the first write (arguments, key types), so an error leaves the schedule as
-- it was.
-- KEYS: schedule, schedule_run, schedule_runs, schedule_stats, schedules_due, schedules_pending
-- ARGV: prefix, id, expected_next ('*': keep), new_next ('' for none), last_job ('' to keep), last_fire_ms,
--       runs_kept, fired, skipped, missed, nrec, then per record: member, scheduled_ms, json, pending (1|0)
-- Returns: {OK}; {NOT_FOUND} no such schedule; {CONFLICT} the next fire time moved (another pass fired it);
--          an error reply, nothing written: a bad argument, or a key of another type than jobsvc/engine/keys.py
--          gives it
local id = ARGV[2]
local kept, nrec = tonumber(ARGV[7]), tonumber(ARGV[11])
local COUNTED = {'runs', 'skipped', 'missed'}
local counts = {tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])}
local ok = kept and nrec and counts[1] and counts[2] and counts[3] and #ARGV == 11 + 4 * nrec
  and (ARGV[4] == '' or tonumber(ARGV[4]))
for i = 12, #ARGV, 4 do ok = ok and tonumber(ARGV[i + 1]) end
if not ok then return redis.error_reply('schedule_advance: bad arguments: nothing changed') end
local key = K.schedule(id)
local due, pending = K.schedules_due, K.schedules_pending
local stats, runs, recs = K.schedule_stats(id), K.schedule_runs(id), K.schedule_run(id)
local bad = wrong_type({key, 'hash', due, 'zset', pending, 'zset', stats, 'hash', runs, 'zset', recs, 'hash'})
if bad then return bad end
for i, name in ipairs(COUNTED) do
  local v = counts[i] > 0 and redis.call('HGET', stats, name)
  if v and not string.match(v, '^%-?%d+$') then
    return redis.error_reply(stats .. ' ' .. name .. ' is not an integer: nothing changed')
  end
end
local cur = redis.call('HMGET', key, 'next_ms', 'version')
if not cur[2] then return {NOT_FOUND} end
if ARGV[3] ~= '*' and (cur[1] or '') ~= ARGV[3] then return {CONFLICT} end
-- Checked: the writes below cannot fail half-way.
if ARGV[3] ~= '*' then
  redis.call('HSET', key, 'next_ms', ARGV[4])
  if ARGV[4] == '' then redis.call('ZREM', due, id)
  else redis.call('ZADD', due, ARGV[4], id) end
end
if ARGV[5] ~= '' then redis.call('HSET', key, 'last_job', ARGV[5], 'last_fire_ms', ARGV[6]) end
for i, name in ipairs(COUNTED) do
  if counts[i] > 0 then redis.call('HINCRBY', stats, name, counts[i]) end
end
for i = 12, 11 + 4 * nrec, 4 do
  redis.call('ZADD', runs, ARGV[i + 1], ARGV[i])
  redis.call('HSET', recs, ARGV[i], ARGV[i + 2])
  if ARGV[i + 3] == '1' then redis.call('ZADD', pending, ARGV[i + 1], ARGV[i]) end
end
local excess = redis.call('ZCARD', runs) - kept
if excess > 0 then
  local old = redis.call('ZRANGE', runs, 0, excess - 1)
  redis.call('ZREMRANGEBYRANK', runs, 0, excess - 1)
  for s = 1, #old, 1000 do redis.call('HDEL', recs, unpack(old, s, math.min(s + 999, #old))) end
end
return {OK}
