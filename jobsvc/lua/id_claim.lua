-- id_claim.lua: on a Redis Cluster, claim the id directory entries (jobsvc/engine/directory.py) of job ids given
-- by the caller, before their enqueue script: atomic, so that two enqueues of one id into two queues cannot both
-- write their job. An entry is set to '<queue>|<ms>.<nonce>' (this incarnation; the job hash gets '<ms>.<nonce>'
-- as js_inc) when it is absent, already names this queue, or equals `expected` (a caller that found the job of the
-- queue it names gone); else it is left as it is and returned, with whether it was claimed less than grace_ms ago
-- (its enqueue may be in flight: its job not written yet).
-- KEYS: [1] one directory hash (given whole: its slot is its own)
-- ARGV: grace_ms, then id1, queue1, nonce1, expected1 ('' = none), id2 ...
-- Returns: per id, {1, value written, value replaced or false} or {0, value found, 1 if fresh else 0}, flat
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local grace = tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV, 4 do
  local id, queue, nonce, expected = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local cur = redis.call('HGET', KEYS[1], id)
  local named = cur and (string.match(cur, '^([^|]*)|') or cur)
  if not cur or named == queue or cur == expected then
    local value = queue .. '|' .. now .. '.' .. nonce
    redis.call('HSET', KEYS[1], id, value)
    out[#out + 1] = 1
    out[#out + 1] = value
    out[#out + 1] = cur or false
  else
    local at = tonumber(string.match(cur, '|(%d+)%.'))
    out[#out + 1] = 0
    out[#out + 1] = cur
    out[#out + 1] = (at and now - at < grace) and 1 or 0
  end
end
return out
