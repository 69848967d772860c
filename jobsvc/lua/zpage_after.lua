-- zpage_after.lua: the next page of a sorted set after a listing cursor (score, member), read-only, in
-- O(log N + page) however many members share the cursor's score (jobsvc/admin/listing.py, jobsvc/admin/bulk/): a
-- queue's timeline can hold thousands of jobs due at the same millisecond.
-- The order is ZRANGE's, (score, member) ascending, or with desc exactly its reverse (ZREVRANGE's). If the
-- cursor's member still has the cursor's score, the page starts right after its rank. If it left or moved
-- meanwhile, the members with the cursor's score are a rank range (two ZCOUNTs) in member order, and a binary
-- search over it (one single-rank ZRANGE per step) finds the first one past the cursor: O(log N * log ties).
-- Members are compared byte by byte, as Redis orders them (Lua's string < follows the server's locale).
-- One script, so the rank it finds cannot be shifted by a write before the page is read.
-- KEYS: [1] the sorted set
-- ARGV: desc (1|0), score (as Redis parses one: '1.5', 'inf', '-inf'), member, n (page size)
-- Returns: flat member1, score1, member2, score2 ... (up to n entries, as ZRANGE ... WITHSCORES gives them)
local key, desc, score_arg, member, n = KEYS[1], ARGV[1] == '1', ARGV[2], ARGV[3], tonumber(ARGV[4])
local score = tonumber(score_arg)
local rank_cmd, range_cmd = 'ZRANK', 'ZRANGE'
if desc then rank_cmd, range_cmd = 'ZREVRANK', 'ZREVRANGE' end

-- a sorts before b in Redis' member order (memcmp, then the shorter first)
local function before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local start
local own = redis.call('ZSCORE', key, member)
if own and tonumber(own) == score then
  start = redis.call(rank_cmd, key, member) + 1
else
  local first
  if desc then first = redis.call('ZCOUNT', key, '(' .. score_arg, '+inf')
  else first = redis.call('ZCOUNT', key, '-inf', '(' .. score_arg) end
  local lo, hi = first, first + redis.call('ZCOUNT', key, score_arg, score_arg)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local m = redis.call(range_cmd, key, mid, mid)[1]
    local past
    if desc then past = before(m, member) else past = before(member, m) end
    if past then hi = mid else lo = mid + 1 end
  end
  start = lo
end
return redis.call(range_cmd, key, start, start + n - 1, 'WITHSCORES')
