-- depend_register.lua: on a Redis Cluster, the first step of enqueueing a job that waits on jobs of other queues
-- (jobsvc/engine/depends.py): in the slot of one dependency queue, record the dependent as waiting on each of that
-- queue's jobs it names that is not done for it, and answer each one's RQ status, read in the same step. A
-- dependency that ends after this step notes it in its queue's release outbox (js_dependents 'r', _lib.lua:
-- note_release); one done already is answered so and gets no record, so nothing falls between the two.
-- KEYS: job, remote_dependents
-- ARGV: prefix, then per pair (4 each): dependency id, dependent id, dependent's queue, allow_failure (1|0)
-- Returns: per pair, 1 when the dependent waits on it (recorded), 0 when it is done for the dependent (finished,
--          failed with allow_failure, or gone: as enqueue.lua judges a dependency, dependency_done in _lib.lua)
local checks = {}
for i = 2, #ARGV, 4 do
  checks[#checks + 1] = K.job(ARGV[i]); checks[#checks + 1] = 'hash'
  checks[#checks + 1] = K.remote_dependents(ARGV[i]); checks[#checks + 1] = 'hash'
end
local bad = wrong_type(checks)
if bad then return bad end
local now = now_ms()
local out = {}
for i = 2, #ARGV, 4 do
  local dep = ARGV[i]
  local waits = not dependency_done(redis.call('HGET', K.job(dep), 'status'), ARGV[i + 3] == '1')
  if waits then
    redis.call('HSET', K.remote_dependents(dep), ARGV[i + 1], ARGV[i + 2] .. '|' .. now)
    redis.call('HSET', K.job(dep), 'js_dependents', 'r')
  end
  out[#out + 1] = waits and 1 or 0
end
return out
