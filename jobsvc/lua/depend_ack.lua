-- depend_ack.lua: on a Redis Cluster, the last step of carrying a queue's release outbox (jobsvc/engine/depends.py:
-- ReleaseDrain), in that queue's slot, once depend_release.lua told the dependents in theirs. Per ended job: its
-- dependents told for good leave its remote_dependents; one that still waits for it (it failed) stays, for as long
-- as the job is kept (as its dependents set does: dependency_keys), and waits no more once it is gone; one not written yet stays until grace_ms after
-- it was registered (its client died between the two steps of its enqueue), and the outbox entry stays with it, to
-- be carried again. The entry goes only if it still says what was carried (the job may have ended again since).
-- KEYS: job, release, remote_dependents
-- ARGV: prefix, queue, grace_ms, then per ended job: id, status carried, n, then n pairs (dependent id, outcome:
--       depend_release.lua's SETTLED 0 | WAITING 1 | MISSING 2)
-- Returns: how many outbox entries went
local queue, grace = ARGV[2], tonumber(ARGV[3])
local now = now_ms()
local outbox = K.release(queue)
local gone = 0
local i = 4
while i <= #ARGV do
  local id, status, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local rkey = K.remote_dependents(id)
  local pending, waiting = false, {}
  for j = i + 3, i + 2 + 2 * n, 2 do
    local dependent, outcome = ARGV[j], tonumber(ARGV[j + 1])
    if outcome == 0 then
      redis.call('HDEL', rkey, dependent)
    elseif outcome == 1 then
      waiting[#waiting + 1] = dependent
    else
      local v = redis.call('HGET', rkey, dependent)
      local at = v and tonumber(string.match(v, '|(%d+)$'))
      if at and now - at > grace then redis.call('HDEL', rkey, dependent) elseif v then pending = true end
    end
  end
  i = i + 3 + 2 * n
  if #waiting > 0 then  -- a job gone cannot end again: nothing left to wait for (they stay deferred, as in RQ)
    local ttl = redis.call('PTTL', K.job(id))
    if ttl == -2 then
      for _, dependent in ipairs(waiting) do redis.call('HDEL', rkey, dependent) end
    elseif ttl > 0 then
      redis.call('PEXPIRE', rkey, ttl)
    end
  end
  if not pending and redis.call('HGET', outbox, id) == status then
    redis.call('HDEL', outbox, id)
    gone = gone + 1
  end
end
return gone
