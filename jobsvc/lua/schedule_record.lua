-- schedule_record.lua: copy the outcome of finished schedule runs (status, times, duration, error) from their
-- jobs into the schedule's run history before result_ttl deletes the jobs, and add their runtime to the
-- schedule's average. Pending runs are visited round-robin, `limit` per call (bounded work).
-- KEYS: none
-- ARGV: prefix, limit, after_score ('-inf' to start over)
-- Returns: {visited, finalized, next_after_score ('-inf' when the end was reached)}
local prefix, limit = ARGV[1], tonumber(ARGV[2])
local pending = prefix .. 'schedules:pending'
local low = ARGV[3] == '-inf' and '-inf' or '(' .. ARGV[3]
local items = redis.call('ZRANGEBYSCORE', pending, low, '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
local ended = {completed = true, failed = true, quarantined = true, cancelled = true}
local finalized = 0
for i = 1, #items, 2 do
  local member = items[i]
  local h = redis.call('HMGET', job_key(member), 'js_state', 'status', 'js_started_ms', 'js_ended_ms', 'js_error')
  local gone = not h[1] and not h[2]
  local state = h[1] or rq_to_state[h[2] or ''] or 'queued'
  if gone or ended[state] then
    redis.call('ZREM', pending, member)
    finalized = finalized + 1
    local skey = prefix .. 'schedule:' .. (string.match(member, '^([^:]+):') or '')
    local rec = redis.call('HGET', skey .. ':run', member)
    if rec then
      local r = cjson.decode(rec)
      if gone then
        r.status = 'unknown'  -- deleted before its outcome was read (result_ttl 0, or an operator)
      else
        r.status = state
        local started, finished = tonumber(h[3]), tonumber(h[4])
        r.started_ms, r.finished_ms = started, finished
        if state ~= 'completed' and h[5] then r.error = h[5] end
        if started and finished and state ~= 'cancelled' and finished >= started then
          r.duration_ms = finished - started
          redis.call('HINCRBY', skey .. ':stats', 'runtime_ms', finished - started)
          redis.call('HINCRBY', skey .. ':stats', 'runtime_n', 1)
        end
      end
      redis.call('HSET', skey .. ':run', member, cjson.encode(r))
    elseif redis.call('EXISTS', skey) == 0 then
      -- The schedule was deleted while this run was in flight: drop the count its job's end wrote.
      redis.call('DEL', skey .. ':stats')
    end
  end
end
local n = #items / 2
if n < limit then return {n, finalized, '-inf'} end
return {n, finalized, items[#items]}
