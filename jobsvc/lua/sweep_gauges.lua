-- sweep_gauges.lua: set one group's gauge to a recount of its jobs, only if the gauge still holds what the
-- caller read before counting (a transition in between makes the recount stale: nothing is written and
-- the caller reports the group as busy, to be checked again).
-- KEYS: count, groups
-- ARGV: prefix, group, n_expected, (state, count) * n_expected, n_new, (state, count) * n_new
--       (states left out count 0)
-- Returns: 1 set; 0 the gauge moved meanwhile
local group = ARGV[2]
local key = K.count(group)
local expected = {}
local n_expected = tonumber(ARGV[3])
for i = 4, 3 + 2 * n_expected, 2 do expected[ARGV[i]] = tonumber(ARGV[i + 1]) end
local current = redis.call('HGETALL', key)
local seen = {}
for i = 1, #current, 2 do
  local st, n = current[i], tonumber(current[i + 1])
  seen[st] = true
  if n ~= (expected[st] or 0) then return 0 end
end
for st, n in pairs(expected) do
  if not seen[st] and n ~= 0 then return 0 end
end
local base = 4 + 2 * n_expected
local fields = {}
for i = base + 1, base + 2 * tonumber(ARGV[base]), 2 do
  fields[#fields + 1] = ARGV[i]; fields[#fields + 1] = ARGV[i + 1]
end
redis.call('DEL', key)
if #fields > 0 then redis.call('HSET', key, unpack(fields)) end
redis.call('SADD', K.groups, group)
return 1
